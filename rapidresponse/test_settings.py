"""Settings for the test suite: the real settings with fixed test keys.

The database comes from DATABASE_URL like everywhere else, so CI runs the same suite on
SQLite and on PostgreSQL.
"""

import os
import tempfile

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789")
# Fixed keys so failures are reproducible; they protect nothing.
os.environ.setdefault("RR_FIELD_KEYS", "t1:" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
os.environ.setdefault("RR_HASH_KEY", "aGFzaC1rZXktZm9yLXRlc3RzLW9ubHktMDEyMzQ1Njc=")
os.environ.setdefault("RR_ALTCHA_HMAC_KEY", "YWx0Y2hhLWtleS1mb3ItdGVzdHMtb25seS0wMTIzNDU=")
os.environ.setdefault("RR_VAR_DIR", os.path.join(tempfile.gettempdir(), "rapidresponse-tests"))
os.environ.setdefault("RR_SSL_REDIRECT", "0")
os.environ.setdefault("RR_PUBLIC_URL", "https://hotline.example.org")
os.environ.setdefault("RR_NETWORK_NAME", "Test Rapid Response")
os.environ.setdefault("RR_SMS_PROVIDER", "console")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost,hotline.example.org")

from .settings import *  # noqa: F403
from .settings import DATABASES, VAR_DIR

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not :memory:, so threads and the browser tests' server share one database
    # and WAL locking behaves as in production.
    DATABASES["default"]["TEST"] = {
        "NAME": str(VAR_DIR / f"test-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}.sqlite3")
    }

# Request threads of the browser tests' server must not keep connections open, or the
# test database cannot be dropped at the end.
DATABASES["default"]["CONN_MAX_AGE"] = 0
# The pool keeps connections past the end of a test run, which blocks dropping the test
# database; tests open plain connections (the benchmark runs with the pool).
DATABASES["default"].get("OPTIONS", {}).pop("pool", None)

# Tests only: a fast hasher keeps the suite quick; production keeps Django's default.
# nosemgrep: django-password-hasher-weak
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tasks run when enqueued, after the transaction that queued them commits; a test that
# runs a real worker process beside the server asks for the database queue instead.
TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
if os.environ.get("RR_TEST_TASKS") == "database":
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(VAR_DIR / "private-media")},
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
RR_CONSOLE_POLL_SECONDS = 0.05
# Proof-of-work cheap enough to solve in-process and in the browser tests.
RR_ALTCHA_COST = 10
RR_ALTCHA_MAX_COUNTER = 20
