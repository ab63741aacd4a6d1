"""The arvo_adapter's read-through of a bundle's survey status (api.md: `GET
/api/v1/links/{tunniste}/status` → `{"vastattu": bool, "voimassa_loppupvm": "YYYY-MM-DD"}`),
asked before a reminder (S3).

Tolerant of what it reads: extra fields are ignored, `voimassa_loppupvm` may be missing
or null, `vastattu` may come as a JSON boolean or the strings "true"/"false". Anything
else (no connection, a timeout, a non-200 answer, a body without `vastattu`) is
:class:`SurveyStatusUnavailable`: the reminder run tries the bundle again on its next pass.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from services.sender.settings import SenderSettings


class SurveyStatusUnavailable(Exception):
    """The adapter did not say; the message names why (no personal data: a tunniste)."""


@dataclass(frozen=True)
class SurveyStatus:
    vastattu: bool
    voimassa_loppupvm: dt.date | None


class SurveyStatusClient:
    """One pooled HTTP client per process; close it with ``aclose()``."""

    def __init__(
        self, *, base_url: str, token: SecretStr | None = None, timeout: float = 10.0
    ) -> None:
        headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}
        self._http = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout)

    @classmethod
    def from_settings(cls, settings: SenderSettings) -> SurveyStatusClient:
        return cls(
            base_url=settings.arvo_adapter_url,
            token=settings.arvo_adapter_token,
            timeout=settings.arvo_adapter_timeout_seconds,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def status(self, tunniste: str) -> SurveyStatus:
        path = f"/api/v1/links/{quote(tunniste, safe='')}/status"
        try:
            response = await self._http.get(path)
        except httpx.HTTPError as exc:
            raise SurveyStatusUnavailable(f"{type(exc).__name__} asking {path}") from exc
        if response.status_code != 200:
            raise SurveyStatusUnavailable(f"{response.status_code} from {path}")
        try:
            return parse_status(response.json())
        except ValueError as exc:
            raise SurveyStatusUnavailable(f"unreadable answer from {path}: {exc}") from exc


def parse_status(body: Any) -> SurveyStatus:
    """The answer's two fields, read leniently; ValueError when `vastattu` is not there."""
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    raw = body.get("vastattu")
    if isinstance(raw, str) and raw.lower() in ("true", "false"):
        raw = raw.lower() == "true"
    if not isinstance(raw, bool):
        raise ValueError("vastattu missing or not a boolean")
    loppu = body.get("voimassa_loppupvm")
    day: dt.date | None = None
    if isinstance(loppu, str) and loppu:
        day = dt.date.fromisoformat(loppu[:10])
    return SurveyStatus(vastattu=raw, voimassa_loppupvm=day)
