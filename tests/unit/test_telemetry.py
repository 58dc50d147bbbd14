"""Redaction of secrets in logged URLs and the structured log format."""

from __future__ import annotations

import logging

import orjson
import pytest

from server.kernel.telemetry import (
    ContextFilter,
    JsonFormatter,
    _redact_url_value,
    redact_path_qs,
    redact_query,
    request_id_var,
)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ""),
        ("a=1", "a=1"),
        ("ticket=abc123&channels=a%2Cb", "ticket=REDACTED&channels=a%2Cb"),
        (
            "token=t&access_token=x&Refresh_Token=y",
            "token=REDACTED&access_token=REDACTED&Refresh_Token=REDACTED",
        ),
        ("api_key=k&password=p", "api_key=REDACTED&password=REDACTED"),
        ("%zz=&&&", "REDACTED"),
    ],
)
def test_redact_query(query: str, expected: str) -> None:
    assert redact_query(query) == expected


def test_redact_path_keeps_the_path() -> None:
    assert redact_path_qs("/realtime/ws", "ticket=s3cret") == "/realtime/ws?ticket=REDACTED"
    assert redact_path_qs("/health/live", "") == "/health/live"


def test_span_url_attributes_are_redacted() -> None:
    assert (
        _redact_url_value("http.url", "http://h/x?ticket=abc&a=1")
        == "http://h/x?ticket=REDACTED&a=1"
    )
    assert _redact_url_value("url.query", "token=abc") == "token=REDACTED"


def test_json_lines_carry_the_request_id() -> None:
    record = logging.LogRecord("server", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    token = request_id_var.set("req-42")
    try:
        ContextFilter().filter(record)
    finally:
        request_id_var.reset(token)
    line = orjson.loads(JsonFormatter().format(record))
    assert line["message"] == "hello world"
    assert line["request_id"] == "req-42"
    assert line["level"] == "info"
