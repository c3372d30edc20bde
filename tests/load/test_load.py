"""A short load run against the production profile: no request may fail.

It prints what it measured; the figures on a shared two-core machine are noisy, so the
test asserts correctness under load, not speed (bench/ and `make load` are for figures).
"""

from __future__ import annotations

import os

import pytest

from tests.load import run as load


@pytest.fixture
def postgres() -> None:
    import psycopg

    try:
        psycopg.connect(load.ADMIN_URL, connect_timeout=3).close()
    except psycopg.OperationalError:
        if os.environ.get("CI"):
            raise
        pytest.skip("No PostgreSQL on 127.0.0.1:5432 (set RR_TEST_POSTGRES_URL).")


def test_webhooks_form_and_console_under_load_without_a_failure(
    postgres: None, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = load.run(seconds=20, users=12, rate=0, web=2, workers=1)
    with capsys.disabled():
        print("\n" + load.report(rows))
    by_name = {row.name: row for row in rows}
    assert by_name["POST /hooks/twilio/sms"].requests > 0
    assert by_name["GET /console/"].requests > 0
    assert by_name["GET /console/events/ (first bytes)"].requests > 0
    assert by_name["GET /report/"].requests > 0
    assert by_name["Aggregated"].failures == 0, load.report(rows)
