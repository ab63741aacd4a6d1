"""Bearer tokens, scopes and koulutustoimija scoping (architecture.md, "Auth")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.auth import DEV_TOKEN_SHA256, ApiClients, audit, hash_token
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
    client = ApiClients.from_file(path).authenticate("s3cret")
    assert client.client == "oph"
    assert client.scopes == {"palaute:read"}
    assert client.may_see("1.2.246.562.10.1")
    assert not client.may_see("1.2.246.562.10.2")
    assert not client.may_see(None)


@pytest.mark.parametrize("token", [None, "", "wrong", "S3CRET"])
def test_anything_but_a_known_token_is_401(tmp_path: Path, token: str | None) -> None:
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
        ApiClients.from_file(path).authenticate(token)
    assert raised.value.status == 401


def test_wildcard_sees_every_koulutustoimija() -> None:
    clients = ApiClients.from_file(DEV_API_CLIENTS_FILE)
    admin = clients.authenticate("dev-admin-token")
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
    client = ApiClients.from_file(DEV_API_CLIENTS_FILE).authenticate("dev-reader-token")
    with caplog.at_level("INFO", logger="audit"):
        audit(client, "read jaksot", "hoks/12")
    [record] = caplog.records
    assert (record.client, record.action, record.resource) == (  # type: ignore[attr-defined]
        "dev-reader",
        "read jaksot",
        "hoks/12",
    )


def test_the_development_tokens_are_known_by_their_hashes(tmp_path: Path) -> None:
    """Fail closed: any clients file holding a published token is recognised as such."""
    published = {entry["token_sha256"] for entry in json.loads(DEV_API_CLIENTS_FILE.read_text())}
    assert published == DEV_TOKEN_SHA256
    assert ApiClients.from_file(DEV_API_CLIENTS_FILE).holds_development_tokens
    [admin] = [e for e in json.loads(DEV_API_CLIENTS_FILE.read_text()) if "admin" in e["scopes"]]
    mixed = clients_file(
        tmp_path,
        [admin, {"client": "own", "token_sha256": hash_token("t"), "scopes": ["admin"]}],
    )
    assert ApiClients.from_file(mixed).holds_development_tokens
    own = clients_file(
        tmp_path, [{"client": "own", "token_sha256": hash_token("t"), "scopes": ["admin"]}]
    )
    assert not ApiClients.from_file(own).holds_development_tokens
