"""Settings, read from the environment (documented in the README).

Nothing secret has a default: the app refuses to start without SECRET_KEY, the
field-encryption keys and the keyed-hash key, so it can never fall back to plaintext.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url
from csp.constants import NONCE
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("RR_VAR_DIR", BASE_DIR / "var"))


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None or value == "":
        raise ImproperlyConfigured(f"The environment variable {name} must be set.")
    return value


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, "1" if default else "0").strip().lower() in {
        "1",
        "true",
        "yes",
        "on",
    }


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}.") from exc


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG")
SECRET_KEY = env("SECRET_KEY")

# Field encryption (AES-256-GCM) and the keyed hash used to look up encrypted values.
# Both are separate from SECRET_KEY; see core/crypto.py for the formats.
RR_FIELD_KEYS = env("RR_FIELD_KEYS")
RR_HASH_KEY = env("RR_HASH_KEY")
# Signs the web form's proof-of-work challenges (intake/proof_of_work.py). Separate from the
# other keys for the same reason: a leak of one must not forge or decrypt the others.
RR_ALTCHA_HMAC_KEY = env("RR_ALTCHA_HMAC_KEY")
# Family-support cases: each case's own key lives in this directory, outside the
# database and its backups, so deleting a key crypto-shreds its case (cases/keystore.py).
RR_CASE_KEYSTORE = os.environ.get("RR_CASE_KEYSTORE", str(VAR_DIR / "case-keys"))
# Hash keys being rotated away from (comma-separated, newest first): lookups also try
# them until `manage.py rotate_hash_key` has recomputed the hashes (core/crypto.py).
RR_HASH_KEYS_PREVIOUS = os.environ.get("RR_HASH_KEYS_PREVIOUS", "")
# Where a copy of every audit event goes after it commits (core/audit_sink.py).
RR_AUDIT_SINK = os.environ.get("RR_AUDIT_SINK", "")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# The public base URL that Twilio requests and signs (https://hotline.example.org).
# Webhook signatures are checked against this plus the request path, so they stay
# valid behind a TLS-terminating proxy.
RR_PUBLIC_URL = os.environ.get("RR_PUBLIC_URL", "http://127.0.0.1:8000" if DEBUG else "").rstrip(
    "/"
)

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_tasks",
    "django_tasks_db",
    "template_partials",
    "rules.apps.AutodiscoverRulesConfig",
    "csp",
    # allauth's MFA (TOTP, passkeys, recovery codes); our own login view hands off to
    # it (accounts/mfa.py). allauth.account is required by allauth.mfa.
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "core",
    "accounts",
    "messaging",
    "intake",
    "incidents",
    "dispatch",
    "alerts",
    "calls",
    "cases",
]

MIDDLEWARE = [
    "core.middleware.RequestSizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.middleware.AccessLogMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Idle and absolute session limits; before anything that reads request.user.
    "accounts.sessions.SessionTimeoutMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # Staff pages need a session that completed MFA (accounts/mfa.py).
    "accounts.mfa.MFARequiredMiddleware",
    "core.middleware.LanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "core.middleware.StaffNoStoreMiddleware",
]

ROOT_URLCONF = "rapidresponse.urls"
WSGI_APPLICATION = "rapidresponse.wsgi.application"
ASGI_APPLICATION = "rapidresponse.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",
                "core.context_processors.network",
            ],
        },
    }
]

DATABASES: dict[str, dict[str, Any]] = {
    "default": dict(
        dj_database_url.parse(
            os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'rapidresponse.sqlite3'}"),
            conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
            conn_health_checks=True,
        )
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # WAL lets the console read while intake writes; IMMEDIATE takes the write lock at
    # BEGIN so two writers queue on busy_timeout instead of failing mid-transaction.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Under ASGI every request runs in a fresh thread, so per-thread persistent
    # connections would be opened and dropped per request; a process-wide pool reuses them.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": env_int("RR_DB_POOL_SIZE", 10),
        # How long a request waits for a connection. While the database is down a text
        # waits this long before it is spooled instead; Twilio gives up after 15 s.
        "timeout": env_int("RR_DB_POOL_TIMEOUT", 5),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL and not DEBUG:
    # A Redis reachable from other hosts must ask for a password (docs/SECURITY.md).
    from core.redis_url import require_password

    require_password(REDIS_URL)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "rr",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        "QUEUES": ["default"],
    }
}

AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"
AUTHENTICATION_BACKENDS = [
    "rules.permissions.ObjectPermissionBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Staff sessions (accounts/sessions.py): a new key at login, at most
# RR_SESSION_MAX_AGE_SECONDS after it (absolute) and RR_SESSION_IDLE_SECONDS after the
# last request the person made (polls and the console's stream do not count). The
# database engine is required: disabling an account deletes its rows.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_AGE = env_int("RR_SESSION_MAX_AGE_SECONDS", 12 * 60 * 60)
RR_SESSION_IDLE_SECONDS = env_int("RR_SESSION_IDLE_SECONDS", 30 * 60)
# Failed logins (accounts/throttle.py), per client and typed username, and per client,
# in windows of RR_LOGIN_THROTTLE_SECONDS; never per account alone (no lockout).
RR_LOGIN_THROTTLE_SECONDS = env_int("RR_LOGIN_THROTTLE_SECONDS", 15 * 60)
RR_LOGIN_FAILURES_PER_ACCOUNT = env_int("RR_LOGIN_FAILURES_PER_ACCOUNT", 5)
RR_LOGIN_FAILURES_PER_CLIENT = env_int("RR_LOGIN_FAILURES_PER_CLIENT", 30)
# Wrong second-factor codes per account in a window, from every client together: only
# someone with the password reaches the code, so this cannot lock out a stranger's
# target, and passkeys are never refused by it.
RR_MFA_CODE_FAILURES_PER_ACCOUNT = env_int("RR_MFA_CODE_FAILURES_PER_ACCOUNT", 10)
# MFA for every staff account (accounts/mfa.py, accounts/reauth.py). No SMS codes.
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes", "webauthn"]
MFA_PASSKEY_LOGIN_ENABLED = False
MFA_ADAPTER = "accounts.adapters.MFAAdapter"
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
MFA_FORMS = {"activate_totp": "accounts.forms.ActivateTOTPForm"}
MFA_TOTP_ISSUER = os.environ.get("RR_NETWORK_NAME", "Rapid Response")
# Passkeys need https, except on localhost in development.
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = DEBUG
# allauth's limits count per account (a lockout, R10) and key on the address; ours
# (accounts/throttle.py) count per client and account, under keyed hashes.
ACCOUNT_RATE_LIMITS: dict[str, str] | bool = False
# Seconds within which a password + MFA proof counts as recent (accounts/reauth.py).
ACCOUNT_REAUTHENTICATION_TIMEOUT = env_int("RR_REAUTH_SECONDS", 300)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_HTTPONLY = True
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("RR_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = 0 if DEBUG else 31536000
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
# The preload directive only allows a submission to the browsers' list, which is a
# separate, deliberate step (hstspreload.org); set RR_HSTS_PRELOAD=0 to leave it out.
SECURE_HSTS_PRELOAD = env_bool("RR_HSTS_PRELOAD", default=not DEBUG)
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Request bodies: Twilio's largest webhook is a few kilobytes; the web form may carry
# one photo. Anything larger is refused with 413 before it is read.
RR_MAX_BODY_BYTES = env_int("RR_MAX_BODY_BYTES", 12 * 1024 * 1024)
RR_MAX_WEBHOOK_BODY_BYTES = env_int("RR_MAX_WEBHOOK_BODY_BYTES", 64 * 1024)
RR_MAX_PHOTO_BYTES = env_int("RR_MAX_PHOTO_BYTES", 10 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 200

# Languages: the network's languages, the first being the default. Messages, pages and
# language detection are limited to these.
LANGUAGES_ALL = {"en": _("English"), "es": _("Spanish")}
RR_LANGUAGES = env_list("RR_LANGUAGES", "en,es")
for _code in RR_LANGUAGES:
    if _code not in LANGUAGES_ALL:
        raise ImproperlyConfigured(f"RR_LANGUAGES names {_code!r}, which has no translation.")
LANGUAGES = [(code, LANGUAGES_ALL[code]) for code in RR_LANGUAGES]
LANGUAGE_CODE = RR_LANGUAGES[0]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = os.environ.get("RR_TIME_ZONE", "America/Los_Angeles")

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(VAR_DIR / "private-media")},
    },
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "core.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG
# Uploaded files are personal data: they are never served as static media, only by a
# view that checks the staff member's role.
MEDIA_URL = None

# Content Security Policy: everything is vendored, so only our own origin is allowed.
# An optional tile server for the map is the single configurable exception.
RR_MAP_TILE_URL = os.environ.get("RR_MAP_TILE_URL", "")
RR_MAP_TILE_ATTRIBUTION = os.environ.get("RR_MAP_TILE_ATTRIBUTION", "")
_tile_origin: list[str] = []
if RR_MAP_TILE_URL:
    from urllib.parse import urlsplit

    _parts = urlsplit(RR_MAP_TILE_URL.replace("{s}", "a"))
    _tile_origin = [f"{_parts.scheme}://{_parts.netloc}"]
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", NONCE],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:", *_tile_origin],
        "connect-src": ["'self'"],
        # The proof-of-work widget solves in workers loaded from our static files; no
        # blob: or data: workers (the widget's default bundle builds those).
        "worker-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# The network this deployment serves.
RR_NETWORK_NAME = os.environ.get("RR_NETWORK_NAME", "Rapid Response")
RR_HOTLINE_NUMBER = os.environ.get("RR_HOTLINE_NUMBER", "")
RR_PHONE_REGION = os.environ.get("RR_PHONE_REGION", "US")
RR_KNOW_YOUR_RIGHTS_URL = os.environ.get("RR_KNOW_YOUR_RIGHTS_URL", "")

# Matching reports into incidents.
RR_MATCH_DISTANCE_METERS = env_int("RR_MATCH_DISTANCE_METERS", 500)
RR_MATCH_WINDOW_MINUTES = env_int("RR_MATCH_WINDOW_MINUTES", 60)
RR_H3_RESOLUTION = env_int("RR_H3_RESOLUTION", 8)

# Dispatch and verification.
RR_VERIFIERS_NEEDED = env_int("RR_VERIFIERS_NEEDED", 2)
RR_CONFIRMATIONS_REQUIRED = env_int("RR_CONFIRMATIONS_REQUIRED", 1)
RR_OFFER_ESCALATE_MINUTES = env_int("RR_OFFER_ESCALATE_MINUTES", 10)
RR_INCIDENT_IDLE_CLOSE_HOURS = env_int("RR_INCIDENT_IDLE_CLOSE_HOURS", 12)
RR_FIELD_LINK_HOURS = env_int("RR_FIELD_LINK_HOURS", 12)
RR_RESPONDER_LINK_HOURS = env_int("RR_RESPONDER_LINK_HOURS", 24)
RR_MAX_UPLOAD_BYTES = env_int("RR_MAX_UPLOAD_BYTES", 60 * 1024 * 1024)

# The voice hotline.
# How long each dispatcher's phone rings for a call.
RR_CALL_RING_SECONDS = env_int("RR_CALL_RING_SECONDS", 25)
# The longest a caller waits on hold for a dispatcher before leaving a message.
RR_CALL_WAIT_SECONDS = env_int("RR_CALL_WAIT_SECONDS", 90)
RR_VOICEMAIL_MAX_SECONDS = env_int("RR_VOICEMAIL_MAX_SECONDS", 120)
# Beyond this many calls from one number in RR_CALLER_WINDOW_SECONDS, further calls
# ring no dispatcher: the caller leaves a message, which joins their latest report
# (calls/limits.py). Hidden numbers, dispatchers and responders are never limited.
RR_CALLS_PER_CALLER = env_int("RR_CALLS_PER_CALLER", 5)
RR_CALLER_WINDOW_SECONDS = env_int("RR_CALLER_WINDOW_SECONDS", 15 * 60)
if RR_CALLS_PER_CALLER < 1 or RR_CALLER_WINDOW_SECONDS < 1:
    # Zero would send every caller with a number straight to voicemail.
    raise ImproperlyConfigured("RR_CALLS_PER_CALLER and RR_CALLER_WINDOW_SECONDS must be >= 1.")
# A dotted path to a transcription engine (calls.transcription); none by default.
RR_TRANSCRIPTION_ENGINE = os.environ.get("RR_TRANSCRIPTION_ENGINE", "")

# Alerts to subscribers.
RR_ALERT_SECOND_APPROVAL = env_bool("RR_ALERT_SECOND_APPROVAL", default=True)
RR_ALERTS_PER_AREA_PER_HOUR = env_int("RR_ALERTS_PER_AREA_PER_HOUR", 3)
RR_ALERT_VALIDITY_MINUTES = env_int("RR_ALERT_VALIDITY_MINUTES", 60)
RR_SUBSCRIBE_PER_HOUR = env_int("RR_SUBSCRIBE_PER_HOUR", 10)
# Codes the public sign-up page may text in an hour, all numbers together.
RR_SIGNUP_CODES_PER_HOUR = env_int("RR_SIGNUP_CODES_PER_HOUR", 200)

# Messaging provider: "console" (offline, with the test phone page) or "twilio".
# Development defaults to the console provider; a deployment must say which it uses, so
# a production server never runs the test phone by accident.
RR_SMS_PROVIDER = env("RR_SMS_PROVIDER", "console" if DEBUG else None)
if RR_SMS_PROVIDER not in {"console", "twilio"}:
    raise ImproperlyConfigured("RR_SMS_PROVIDER must be 'console' or 'twilio'.")
TWILIO_ACCOUNT_SID = os.environ.get("TWILIO_ACCOUNT_SID", "")
TWILIO_AUTH_TOKEN = os.environ.get("TWILIO_AUTH_TOKEN", "")
# Where outbound SMS come from: a phone number (+1...) or a Messaging Service SID (MG...).
RR_SMS_FROM = os.environ.get("RR_SMS_FROM", os.environ.get("RR_HOTLINE_NUMBER", ""))
# Tests and benchmarks point the real twilio client at a local stand-in of its API.
TWILIO_API_BASE = os.environ.get("TWILIO_API_BASE", "")
# Messages per second the sending number or service is provisioned for.
RR_SMS_RATE_PER_SECOND = float(os.environ.get("RR_SMS_RATE_PER_SECOND", "1"))
# Sends waiting on the provider at once; Twilio answers 429 above its concurrency limit.
RR_SMS_MAX_IN_FLIGHT = env_int("RR_SMS_MAX_IN_FLIGHT", 32)
if RR_SMS_PROVIDER == "twilio" and not (TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN and RR_PUBLIC_URL):
    raise ImproperlyConfigured(
        "The twilio provider needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and RR_PUBLIC_URL "
        "(the https address Twilio calls, which its signatures cover)."
    )

# Inbound SMS that arrive while the database is unreachable are kept here (encrypted,
# one file each) and stored in arrival order once it is back (messaging/spool.py). Past
# RR_SPOOL_MAX_MESSAGES files the webhook answers 503 and the provider retries.
RR_SPOOL_DIR = Path(os.environ.get("RR_SPOOL_DIR", VAR_DIR / "spool"))
RR_SPOOL_MAX_MESSAGES = env_int("RR_SPOOL_MAX_MESSAGES", 20000)
# SMS webhooks waiting in one web process beyond which new texts go to the spool and are
# stored behind it, so a surge is answered at once (0: always store first).
RR_SMS_WEBHOOK_BACKLOG = env_int("RR_SMS_WEBHOOK_BACKLOG", 16)
# Accept first: the SMS webhook writes each text in one INSERT and answers with nothing;
# the task workers (`manage.py run_worker`) store and route it and send the reply through
# the outbox (messaging/accepted.py). Off: the webhook stores, routes and answers inline.
RR_SMS_ACCEPT_FIRST = env_bool("RR_SMS_ACCEPT_FIRST")
# How long a sender owns the messages it claimed; a dead sender's rows are settled after.
RR_SMS_LEASE_SECONDS = env_int("RR_SMS_LEASE_SECONDS", 60)
# How often the worker settles dead senders' leases and wakes the sender for due rows.
RR_OUTBOX_SWEEP_SECONDS = env_int("RR_OUTBOX_SWEEP_SECONDS", 15)

# Public web form: reports per client per hour, counted under a keyed hash of the
# client address that lives only in the cache, with the window as its lifetime.
RR_WEB_REPORTS_PER_HOUR = env_int("RR_WEB_REPORTS_PER_HOUR", 20)
# Proof-of-work on the public form (ALTCHA, PBKDF2/SHA-256): the solver tries counters
# up to a random one in [max/2, max], each costing RR_ALTCHA_COST iterations, so a
# phone spends about a second and a flood of posts costs that much per report.
# A challenge expires after RR_ALTCHA_EXPIRY_SECONDS; a solved one is accepted once.
RR_ALTCHA_COST = env_int("RR_ALTCHA_COST", 1000)
RR_ALTCHA_MAX_COUNTER = env_int("RR_ALTCHA_MAX_COUNTER", 4000)
RR_ALTCHA_EXPIRY_SECONDS = env_int("RR_ALTCHA_EXPIRY_SECONDS", 20 * 60)
# Texts: beyond this many new reports from one sender in RR_SMS_REPORT_WINDOW_SECONDS,
# further texts are kept and added to that sender's latest report instead of opening
# new ones (intake/throttle.py). Keywords and responders are never throttled.
RR_SMS_REPORTS_PER_SENDER = env_int("RR_SMS_REPORTS_PER_SENDER", 5)
RR_SMS_REPORT_WINDOW_SECONDS = env_int("RR_SMS_REPORT_WINDOW_SECONDS", 10 * 60)
# Surge: more reports than this in one H3 cell (resolution RR_SURGE_RESOLUTION, about
# 2.8 km across at 7) and its six neighbours within RR_SURGE_WINDOW_MINUTES flags their
# incident as a possible flood (incidents/surge.py). The flag informs dispatchers;
# alerts still need field verification.
RR_SURGE_REPORTS = env_int("RR_SURGE_REPORTS", 25)
RR_SURGE_WINDOW_MINUTES = env_int("RR_SURGE_WINDOW_MINUTES", 15)
RR_SURGE_RESOLUTION = env_int("RR_SURGE_RESOLUTION", 7)
# How many proxies in front of the app append to X-Forwarded-For (0: none).
RR_TRUSTED_PROXY_COUNT = env_int("RR_TRUSTED_PROXY_COUNT", 0)

# Live console: how often a web process looks for new console events when it has no
# faster wake-up (another process on SQLite; a lost LISTEN connection on PostgreSQL).
# One indexed read per process each time, so a short interval costs little; the
# console target is an update within 250 ms (bench B7).
RR_CONSOLE_POLL_SECONDS = float(os.environ.get("RR_CONSOLE_POLL_SECONDS", "0.1"))
# A console stream ends after this long and the browser reconnects, which re-checks the
# session: a logged-out or disabled dispatcher stops receiving within this time.
RR_CONSOLE_STREAM_SECONDS = env_int("RR_CONSOLE_STREAM_SECONDS", 120)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"scrub": {"()": "core.logging.ScrubFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["scrub"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("RR_LOG_LEVEL", "INFO")},
    "loggers": {
        # SQL parameters carry report text and ciphertext: never log them.
        "django.db.backends": {"level": "WARNING"},
        # The twilio client logs request parameters (numbers, bodies) at INFO.
        "twilio": {"level": "WARNING"},
        # Client addresses must not reach the logs; our own access log omits them.
        "uvicorn.access": {"handlers": [], "propagate": False, "level": "CRITICAL"},
        "django.server": {"handlers": [], "propagate": False, "level": "CRITICAL"},
    },
}
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
