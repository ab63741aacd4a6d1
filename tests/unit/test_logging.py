"""JSON logs: one object per line, the correlation id of the work in hand, extras kept."""

from __future__ import annotations

import json
import logging

from shared.logging import JsonFormatter, configure_logging, correlation_id_var


def test_a_record_is_one_json_object_with_correlation_id_and_extras() -> None:
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "retrying %s", ("q",), None)
    record.attempt = 2
    record.color_message = "\x1b[1mretrying\x1b[0m"
    token = correlation_id_var.set("trace-1")
    try:
        line = JsonFormatter("ingest").format(record)
    finally:
        correlation_id_var.reset(token)
    event = json.loads(line)
    assert "\n" not in line
    assert event["event"] == "retrying q"
    assert event["level"] == "WARNING"
    assert event["service"] == "ingest"
    assert event["correlation_id"] == "trace-1"
    assert event["attempt"] == 2
    assert "color_message" not in event


def test_http_client_libraries_do_not_log_request_urls() -> None:
    """httpx logs every request's full URL, query string included, at INFO."""
    root, httpx_log = logging.getLogger(), logging.getLogger("httpx")
    saved = (root.handlers[:], root.level, httpx_log.level)
    try:
        configure_logging("sender", "INFO")
        assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
        assert logging.getLogger("access").isEnabledFor(logging.INFO)
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        httpx_log.setLevel(saved[2])
