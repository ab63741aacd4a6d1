"""`python -m services.ingest`: migrate the schema, then serve until SIGTERM."""

from services.ingest.app import create_service

create_service().run("services.ingest.app:create_app")
