"""`python -m services.sender`: migrate the schema, then serve until SIGTERM."""

from services.sender.app import create_app, create_service

service = create_service()
service.run(create_app(service))
