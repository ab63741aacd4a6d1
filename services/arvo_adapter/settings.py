"""arvo_adapter settings: where Arvo is and how to log in (architecture.md)."""

from typing import ClassVar

from shared.settings import ServiceSettings


class ArvoAdapterSettings(ServiceSettings):
    port: int = 8003
    arvo_url: str = "http://127.0.0.1:8090/api/"
    arvo_user: str = "arvo"
    arvo_password: str = "arvo"

    DEVELOPMENT_DEFAULTS: ClassVar[tuple[str, ...]] = ("arvo_user", "arvo_password")
