"""Bearer tokens, scopes and koulutustoimija scoping (architecture.md, "Auth")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.auth import ApiClients, audit, hash_token
from shared.errors import ApiError
from shared.settings import DEV_API_CLIENTS_FILE


def clients_file(tmp_path: Path, entries: list[dict[str, object]]) -> Path:
    path = tmp_path / "clients.json"
    path.write_text(json.dumps(entries))
    return path


def test_a_known_token_authenticates_its_client(tmp_path: Path) -> None:
    path = clients_file(
        tmp_path,
        [
            {
                "client": "oph",
                "token_sha256": hash_token("s3cret"),
                "scopes": ["palaute:read"],
                "koulutustoimijat": ["1.2.246.562.10.1"],
            }
        ],
    )
    client = ApiClients.from_file(path).authenticate("Bearer s3cret")
    assert client.client == "oph"
    assert client.scopes == {"palaute:read"}
    assert client.may_see("1.2.246.562.10.1")
    assert not client.may_see("1.2.246.562.10.2")
    assert not client.may_see(None)


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer wrong", "Basic czNjcmV0", "s3cret"],
    ids=["missing", "empty", "no-token", "unknown", "basic", "no-scheme"],
)
def test_anything_but_a_known_bearer_token_is_401(tmp_path: Path, header: str | None) -> None:
    path = clients_file(
        tmp_path,
        [
            {
                "client": "oph",
                "token_sha256": hash_token("s3cret"),
                "scopes": ["admin"],
                "koulutustoimijat": ["*"],
            }
        ],
    )
    with pytest.raises(ApiError) as raised:
        ApiClients.from_file(path).authenticate(header)
    assert raised.value.status == 401


def test_wildcard_sees_every_koulutustoimija() -> None:
    clients = ApiClients.from_file(DEV_API_CLIENTS_FILE)
    admin = clients.authenticate("Bearer dev-admin-token")
    assert admin.may_see("1.2.246.562.10.99")
    assert admin.scopes == {"hoks:write", "palaute:read", "palaute:write", "admin"}


def test_unknown_scope_in_the_file_is_refused_at_start(tmp_path: Path) -> None:
    path = clients_file(
        tmp_path,
        [
            {
                "client": "x",
                "token_sha256": hash_token("t"),
                "scopes": ["everything"],
                "koulutustoimijat": [],
            }
        ],
    )
    with pytest.raises(ValueError, match="everything"):
        ApiClients.from_file(path)


def test_audit_records_who_what_and_which_resource_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = ApiClients.from_file(DEV_API_CLIENTS_FILE).authenticate("Bearer dev-reader-token")
    with caplog.at_level("INFO", logger="audit"):
        audit(client, "read jaksot", "hoks/12")
    [record] = caplog.records
    assert (record.client, record.action, record.resource) == (  # type: ignore[attr-defined]
        "dev-reader",
        "read jaksot",
        "hoks/12",
    )
