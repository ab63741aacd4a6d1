"""Ingest settings: the shared ones, with this service's port."""

from shared.settings import ServiceSettings


class IngestSettings(ServiceSettings):
    port: int = 8001
