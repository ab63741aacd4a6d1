"""`python -m services.sender`: migrate the schema, then serve until SIGTERM."""

from services.sender.app import create_service

create_service().run("services.sender.app:create_app")
