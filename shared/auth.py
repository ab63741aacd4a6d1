"""Bearer-token auth with scopes and koulutustoimija scoping (architecture.md, "Auth").

Clients are listed in the JSON file named by `API_CLIENTS_FILE`; only SHA-256 hashes of
tokens are stored. A caller sees only the koulutustoimijat it lists: another provider's
data answers 404, so a caller cannot even learn that it exists.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request

from shared.errors import ApiError

log = logging.getLogger(__name__)
audit_log = logging.getLogger("audit")

SCOPES = frozenset({"hoks:write", "palaute:read", "palaute:write", "admin"})
ALL_KOULUTUSTOIMIJAT = "*"


@dataclass(frozen=True)
class ApiClient:
    client: str
    token_sha256: str
    scopes: frozenset[str]
    koulutustoimijat: frozenset[str]

    def may_see(self, koulutustoimija_oid: str | None) -> bool:
        if ALL_KOULUTUSTOIMIJAT in self.koulutustoimijat:
            return True
        return koulutustoimija_oid is not None and koulutustoimija_oid in self.koulutustoimijat


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiClients:
    def __init__(self, clients: list[ApiClient]) -> None:
        self._by_hash = {c.token_sha256.lower(): c for c in clients}

    @classmethod
    def from_file(cls, path: Path) -> ApiClients:
        raw = json.loads(path.read_text(encoding="utf-8"))
        clients = []
        for entry in raw:
            unknown = set(entry["scopes"]) - SCOPES
            if unknown:
                raise ValueError(f"client {entry['client']!r} has unknown scopes {sorted(unknown)}")
            clients.append(
                ApiClient(
                    client=entry["client"],
                    token_sha256=entry["token_sha256"],
                    scopes=frozenset(entry["scopes"]),
                    koulutustoimijat=frozenset(entry.get("koulutustoimijat", [])),
                )
            )
        return cls(clients)

    def authenticate(self, authorization: str | None) -> ApiClient:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise ApiError(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
        client = self._by_hash.get(hash_token(authorization[7:].strip()))
        if client is not None:
            return client
        raise ApiError(401, "invalid bearer token", headers={"WWW-Authenticate": "Bearer"})


def require_scope(scope: str) -> Callable[[Request], Awaitable[ApiClient]]:
    """A FastAPI dependency: the authenticated client, which must hold `scope`."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    async def dependency(request: Request) -> ApiClient:
        clients: ApiClients = request.app.state.api_clients
        client = clients.authenticate(request.headers.get("authorization"))
        if scope not in client.scopes:
            raise ApiError(403, f"client lacks scope {scope}")
        request.state.client = client
        return client

    return dependency


def audit(client: ApiClient, action: str, resource: str) -> None:
    """Record a read of personal data: who, what, when; never the data itself."""
    audit_log.info(
        "personal data read",
        extra={"client": client.client, "action": action, "resource": resource},
    )
