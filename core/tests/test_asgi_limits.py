"""Oversized bodies are refused by the ASGI server before Django reads them."""

from __future__ import annotations

import http.client
from collections.abc import Iterator

import pytest

from conftest import LiveServer
from intake.models import Report


def post(server: LiveServer, path: str, body: bytes | Iterator[bytes], **headers: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(
            "POST", path, body=body, headers=headers, encode_chunked="Transfer-Encoding" in headers
        )
        return conn.getresponse().status
    finally:
        conn.close()


def test_a_declared_length_over_the_limit_is_refused_unread(live_asgi: LiveServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", live_asgi.port, timeout=10)
    conn.putrequest("POST", "/report/")
    conn.putheader("Content-Length", str(500 * 1024 * 1024))
    conn.putheader("Content-Type", "application/x-www-form-urlencoded")
    conn.endheaders()  # no body is sent: the answer must not wait for it
    assert conn.getresponse().status == 413
    conn.close()


def test_a_chunked_body_over_the_limit_is_stopped(
    live_asgi: LiveServer, settings: pytest.FixtureRequest
) -> None:
    settings.RR_MAX_WEBHOOK_BODY_BYTES = 10_000  # type: ignore[attr-defined]
    # Slightly over the limit, so the client has sent everything before the answer comes.
    chunks = iter([b"Body=" + b"x" * 4000] * 3)
    status = post(
        live_asgi,
        "/hooks/twilio/sms",
        chunks,
        **{"Transfer-Encoding": "chunked", "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 413


def test_a_broken_length_is_400(live_asgi: LiveServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", live_asgi.port, timeout=10)
    conn.putrequest("POST", "/report/")
    conn.putheader("Content-Length", "12abc")
    conn.endheaders()
    status = conn.getresponse().status
    conn.close()
    assert status == 400
    assert not Report.objects.exists()
