"""`python -m services.bundler`: migrate the schema, then serve until SIGTERM."""

from services.bundler.app import create_app, create_service

service = create_service()
service.run(create_app(service))
