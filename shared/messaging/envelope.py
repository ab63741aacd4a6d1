"""The message envelope every event and command carries (api.md, "Events")."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, Field

SCHEMA_VERSION = 1


class Envelope(BaseModel):
    message_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: str
    occurred_at: dt.datetime = Field(default_factory=lambda: dt.datetime.now(dt.UTC))
    correlation_id: str
    schema_version: int = SCHEMA_VERSION
    payload: dict[str, Any]
