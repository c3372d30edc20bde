"""Production settings refuse a Redis other hosts can use without a password."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from core.redis_url import require_password

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/3",
        "redis://localhost:6379/0",
        "redis://[::1]:6379/0",
        "redis://:s3cret@10.0.0.5:6379/0",
        "rediss://rr:s3cret@cache.internal:6380/0",
        "redis://cache.internal:6379/0?password=s3cret",
        "unix:///run/redis/redis.sock?db=0",
    ],
)
def test_loopback_sockets_and_passwords_are_accepted(url: str) -> None:
    require_password(url)


@pytest.mark.parametrize(
    "url",
    [
        "redis://10.0.0.5:6379/0",
        "redis://cache.internal:6379/0",
        "rediss://rr@cache.internal:6380/0",  # a user name is not a password
        "redis://0.0.0.0:6379/0",
        "http://127.0.0.1:6379/0",
    ],
)
def test_other_hosts_without_a_password_are_refused(url: str) -> None:
    with pytest.raises(ImproperlyConfigured):
        require_password(url)


def _load_settings(**extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DJANGO_SETTINGS_MODULE": "rapidresponse.settings",
        "SECRET_KEY": "production-settings-test-secret-0123456789abcdef",
        "RR_FIELD_KEYS": "p1:" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        "RR_HASH_KEY": "aGFzaC1rZXktZm9yLXRlc3RzLW9ubHktMDEyMzQ1Njc=",
        "RR_ALTCHA_HMAC_KEY": "YWx0Y2hhLWtleS1mb3ItdGVzdHMtb25seS0wMTIzNDU=",
        "RR_PUBLIC_URL": "https://hotline.example.org",
        "ALLOWED_HOSTS": "hotline.example.org",
        "RR_SMS_PROVIDER": "console",
        "DEBUG": "0",
        **extra,
    }
    code = "from django.conf import settings; print(settings.CACHES['default']['BACKEND'])"
    # Our own interpreter and a fixed snippet; a fresh process loads the settings module anew.
    return subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )


def test_production_settings_refuse_a_remote_redis_without_a_password() -> None:
    refused = _load_settings(REDIS_URL="redis://10.0.0.5:6379/0")
    assert refused.returncode != 0
    assert "REDIS_URL points to another host without a password" in refused.stderr

    accepted = _load_settings(REDIS_URL="redis://:s3cret@10.0.0.5:6379/0")
    assert accepted.returncode == 0, accepted.stderr
    assert "RedisCache" in accepted.stdout


def test_debug_settings_leave_the_url_alone() -> None:
    # Development machines often point at a Redis container on another address.
    assert _load_settings(REDIS_URL="redis://10.0.0.5:6379/0", DEBUG="1").returncode == 0
