"""scripts/run_all.py says where to look at what the fakes received."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from shared.settings import REPO_ROOT


def test_the_fakes_views_are_printed_with_their_configured_ports() -> None:
    spec = importlib.util.spec_from_file_location(
        "run_all", Path(REPO_ROOT) / "scripts" / "run_all.py"
    )
    assert spec and spec.loader
    run_all = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = run_all
    spec.loader.exec_module(run_all)
    env = {"FAKE_ARVO_PORT": "9190", "FAKE_SMS_PORT": "9191", "FAKE_SMTP_VIEW_PORT": "9192"}
    lines = run_all.fake_views(env, run_all.plan(env, with_fakes=True), 42)
    text = "\n".join(lines)
    assert lines[0].split()[0] == "fakes" and lines[0].endswith("(pid 42)")
    assert "http://127.0.0.1:9190/_fake/state" in text
    assert "http://127.0.0.1:9191/_fake/messages" in text
    assert "http://127.0.0.1:9192/_fake/messages" in text
