"""`python -m services.arvo_adapter`: migrate the schema, then serve until SIGTERM."""

from services.arvo_adapter.app import create_service

create_service().run("services.arvo_adapter.app:create_app")
