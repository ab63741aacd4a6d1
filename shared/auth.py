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
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.errors import ApiError

log = logging.getLogger(__name__)
audit_log = logging.getLogger("audit")

SCOPES = frozenset({"hoks:write", "palaute:read", "palaute:write", "admin"})
ALL_KOULUTUSTOIMIJAT = "*"
# The hashes of deploy/dev-api-clients.json's published tokens: a service outside
# development mode refuses to start with a clients file holding any of them.
DEV_TOKEN_SHA256 = frozenset(
    {
        "a66059f8245e42ac201f54787766324e0035c95b343f57fed67a5c5bc4329322",  # dev-upstream-token
        "47beeb95da92ee9485a13c613b44b1dd7ff064c2c2815902e1c2e6d765b3c8ad",  # dev-reader-token
        "1734d503f6aa6a047c36d113cbad769f719c93784b469b771c4c3e7c63adbefd",  # dev-admin-token
    }
)
# Where the access log finds the caller's name (request.state, i.e. scope["state"]).
CLIENT_NAME_STATE = "client_name"
# Declares the scheme in OpenAPI (the Authorize button of /docs); errors are ours.
_bearer = HTTPBearer(
    auto_error=False, description="A token from API_CLIENTS_FILE; sent as `Bearer <token>`."
)


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

    @property
    def holds_development_tokens(self) -> bool:
        return not DEV_TOKEN_SHA256.isdisjoint(self._by_hash)

    def authenticate(self, token: str | None) -> ApiClient:
        if not token:
            raise ApiError(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
        client = self._by_hash.get(hash_token(token))
        if client is not None:
            return client
        raise ApiError(401, "invalid bearer token", headers={"WWW-Authenticate": "Bearer"})


def require_scope(
    scope: str,
) -> Callable[[Request, HTTPAuthorizationCredentials | None], Awaitable[ApiClient]]:
    """A FastAPI dependency: the authenticated client, which must hold `scope`."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> ApiClient:
        clients: ApiClients = request.app.state.api_clients
        client = clients.authenticate(credentials.credentials if credentials else None)
        setattr(request.state, CLIENT_NAME_STATE, client.client)
        if scope not in client.scopes:
            raise ApiError(403, f"client lacks scope {scope}")
        return client

    return dependency


def audit(client: ApiClient, action: str, resource: str) -> None:
    """Record a read of personal data: who, what, when; never the data itself."""
    audit_log.info(
        "personal data read",
        extra={"client": client.client, "action": action, "resource": resource},
    )
