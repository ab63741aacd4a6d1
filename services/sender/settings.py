"""sender settings: the shared ones, with this service's port."""

from shared.settings import ServiceSettings


class SenderSettings(ServiceSettings):
    port: int = 8004
