"""sender settings: the SMTP server, the SMS gateway and the arvo_adapter it asks."""

from typing import ClassVar

from shared.settings import ServiceSettings


class SenderSettings(ServiceSettings):
    port: int = 8004
    arvo_adapter_url: str = "http://127.0.0.1:8003"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_from: str = "noreply@opintopolku.fi"
    sms_gateway_url: str = "http://127.0.0.1:8091"
    sms_gateway_token: str = "sms-token"

    DEVELOPMENT_DEFAULTS: ClassVar[tuple[str, ...]] = ("sms_gateway_token",)
