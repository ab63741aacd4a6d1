"""Settings that only a developer's machine may keep (fail closed, issue 11)."""

from __future__ import annotations

import pytest

from services.arvo_adapter.settings import ArvoAdapterSettings
from services.ingest.settings import IngestSettings
from services.sender.settings import SenderSettings


def test_development_mode_is_off_unless_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEVELOPMENT_MODE", raising=False)
    assert IngestSettings().development_mode is False
    monkeypatch.setenv("DEVELOPMENT_MODE", "true")
    assert IngestSettings().development_mode is True


def test_published_credentials_are_named_until_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    names = ("ARVO_USER", "ARVO_PASSWORD", "SMS_GATEWAY_TOKEN", "SMS_CALLBACK_TOKEN")
    for name in (*names, "ARVO_ADAPTER_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert ArvoAdapterSettings().development_defaults_in_use() == ["ARVO_USER", "ARVO_PASSWORD"]
    assert SenderSettings().development_defaults_in_use() == [
        "SMS_GATEWAY_TOKEN",
        "SMS_CALLBACK_TOKEN",
        "ARVO_ADAPTER_TOKEN",
    ]
    assert IngestSettings().development_defaults_in_use() == []
    monkeypatch.setenv("ARVO_USER", "tep")
    monkeypatch.setenv("ARVO_PASSWORD", "a long secret")
    monkeypatch.setenv("SMS_GATEWAY_TOKEN", "another secret")
    monkeypatch.setenv("SMS_CALLBACK_TOKEN", "a third secret")
    monkeypatch.setenv("ARVO_ADAPTER_TOKEN", "a fourth secret")
    assert ArvoAdapterSettings().development_defaults_in_use() == []
    assert SenderSettings().development_defaults_in_use() == []
