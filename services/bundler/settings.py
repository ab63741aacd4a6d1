"""bundler settings: the shared ones, with this service's port."""

from pydantic import Field

from shared.settings import ServiceSettings


class BundlerSettings(ServiceSettings):
    port: int = 8002
    # P1: instructors' names, e-mails and phones are kept this many days after the answer
    # window of their bundle closed (or a jakso never bundled could no longer be sent).
    personal_data_retention_days: int = Field(default=30, ge=0)
