"""Ingest settings: the shared ones, with this service's port."""

from pydantic import Field

from shared.settings import ServiceSettings


class IngestSettings(ServiceSettings):
    port: int = 8001
    # P1: a superseded or deleted document version keeps its content this many days.
    personal_data_retention_days: int = Field(default=30, ge=0)
