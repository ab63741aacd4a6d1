"""bundler settings: the shared ones, with this service's port."""

from shared.settings import ServiceSettings


class BundlerSettings(ServiceSettings):
    port: int = 8002
