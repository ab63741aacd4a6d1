"""arvo_adapter settings: the shared ones, with this service's port."""

from shared.settings import ServiceSettings


class ArvoAdapterSettings(ServiceSettings):
    port: int = 8003
