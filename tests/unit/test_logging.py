"""JSON logs: one object per line, the correlation id of the work in hand, extras kept."""

from __future__ import annotations

import json
import logging

from shared.logging import JsonFormatter, correlation_id_var


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
