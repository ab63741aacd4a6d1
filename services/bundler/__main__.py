"""`python -m services.bundler`: migrate the schema, then serve until SIGTERM."""

from services.bundler.app import create_service

create_service().run("services.bundler.app:create_app")
