"""`python -m services.arvo_adapter`: migrate the schema, then serve until SIGTERM."""

from services.arvo_adapter.app import create_app, create_service

service = create_service()
service.run(create_app(service))
