"""Parley settings.

Two shapes from one file, chosen by the environment (django-environ; a `.env` file is read too):

* nothing set: the embedded default — SQLite under ``var/``, in-memory channel layer, local-memory
  cache, background tasks run in-process on a thread pool. ``make run`` uses this.
* ``DATABASE_URL`` (PostgreSQL) and ``REDIS_URL`` set: the production shape — PostgreSQL, Redis cache,
  channels-redis, Celery on Redis. It refuses to start (naming the variable) without its own
  ``SECRET_KEY`` (not a placeholder, 50+ characters) and ``PARLEY_ENCRYPTION_KEYS``.

Every tunable is declared here, once, from the environment; the code reads ``settings.NAME`` and
never the environment itself (docs/architecture.md "Settings").
"""

from __future__ import annotations

import ipaddress
import secrets
import sys
from datetime import timedelta
from pathlib import Path

import environ
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists():
    env.read_env(str(BASE_DIR / ".env"))

VAR_DIR = Path(env.str("PARLEY_VAR_DIR", default=str(BASE_DIR / "var")))

DATABASE_URL = env.str("DATABASE_URL", default="")
REDIS_URL = env.str("REDIS_URL", default="")
EMBEDDED = not (DATABASE_URL and REDIS_URL)


def _stdout_is_a_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):  # replaced or closed by the caller
        return False


def _embedded_secret_key() -> str:
    """A random key kept in ``var/`` so the embedded default survives restarts without configuration."""
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


#: Words of the placeholders that example files and tutorials carry (deploy/parley.env.example's
#: among them): a key containing one is public, whatever else it holds.
PLACEHOLDER_SECRET_KEY_WORDS = (
    "change-me",
    "changeme",
    "change_me",
    "django-insecure",
    "your-secret-key",
    "replace-me",
)
#: Shortest production SECRET_KEY (Django's own check --deploy asks for 50 characters, 5 different).
SECRET_KEY_MIN_LENGTH = 50
_NEW_SECRET_KEY = 'python -c "import secrets; print(secrets.token_urlsafe(50))"'
_NEW_FERNET_KEY = 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'


def _production_secret_key() -> str:
    """``SECRET_KEY`` from the environment, refused (naming the variable, never showing the value)
    when it is missing, a known placeholder, or short: it signs sessions, tokens and links."""
    key = env.str("SECRET_KEY", default="").strip()
    if not key:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. The production shape (DATABASE_URL and REDIS_URL set) needs its own "
            f"random key in the environment; make one with: {_NEW_SECRET_KEY}"
        )
    if any(word in key.lower() for word in PLACEHOLDER_SECRET_KEY_WORDS):
        raise ImproperlyConfigured(
            f"SECRET_KEY is a placeholder from an example file, not a secret; make one with: {_NEW_SECRET_KEY}"
        )
    if len(key) < SECRET_KEY_MIN_LENGTH:
        raise ImproperlyConfigured(
            f"SECRET_KEY is too short ({len(key)} characters): production needs at least "
            f"{SECRET_KEY_MIN_LENGTH} random characters; make one with: {_NEW_SECRET_KEY}"
        )
    if len(set(key)) < 5:
        raise ImproperlyConfigured(
            f"SECRET_KEY repeats too few characters to be random; make one with: {_NEW_SECRET_KEY}"
        )
    return key


def _production_encryption_keys() -> list[str]:
    """``PARLEY_ENCRYPTION_KEYS``: required in production (a key derived from SECRET_KEY would tie
    every stored secret to it), each a Fernet key."""
    keys = env.list("PARLEY_ENCRYPTION_KEYS", default=[])
    if not keys:
        raise ImproperlyConfigured(
            "PARLEY_ENCRYPTION_KEYS is not set. The production shape (DATABASE_URL and REDIS_URL set) "
            f"encrypts secrets at rest with its own Fernet keys (comma-separated); make one with: {_NEW_FERNET_KEY}. "
            "Upgrading an install that used the key derived from SECRET_KEY: docs/security.md."
        )
    for number, key in enumerate(keys, 1):
        try:
            Fernet(key.encode())
        except ValueError:
            raise ImproperlyConfigured(
                f"PARLEY_ENCRYPTION_KEYS: key {number} of {len(keys)} is not a Fernet key "
                f"(32 url-safe base64-encoded bytes); make one with: {_NEW_FERNET_KEY}"
            ) from None
    return keys


SECRET_KEY = (env.str("SECRET_KEY", default="") or _embedded_secret_key()) if EMBEDDED else _production_secret_key()
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Absolute base URL used in links Parley sends out (feedback links, webhook URLs shown in the admin).
# Unset, `manage.py run` uses the address it serves on (e.g. http://127.0.0.1:8100 after
# PORT=8100 make run); set it whenever people reach Parley at another address (a proxy, a domain).
PUBLIC_BASE_URL_SET = bool(env.str("PUBLIC_BASE_URL", default=""))
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

# Secrets at rest: comma-separated Fernet keys (first encrypts, all decrypt — for rotation).
# Required in production; on the embedded default a key is derived from SECRET_KEY when none is set.
PARLEY_ENCRYPTION_KEYS = env.list("PARLEY_ENCRYPTION_KEYS", default=[]) if EMBEDDED else _production_encryption_keys()

INSTALLED_APPS = [
    # The admin theme (docs/console.md): before django.contrib.admin so its templates win.
    "unfold",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_prometheus",
    "rest_framework",
    "rest_framework_simplejwt",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc files, served by Parley (no CDN)
    "channels",
    "apps.core",
    "apps.accounts",
    "apps.tenants",
    "apps.llm",
    "apps.bots",
    "apps.channels",
    "apps.knowledge",
    "apps.conversations",
    "apps.workflows",
    "apps.inbox",
    "apps.configio",
    "apps.setup",
    "apps.runtime",
    "apps.console",
]

MIDDLEWARE = [
    # Bad input at the edge (docs/security.md): a URL no route can hold is refused before anything
    # (sessions, the setup redirect, a view) touches the database.
    "apps.core.edge.EdgeMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # A Content-Security-Policy on every page (docs/security.md; the admin's differs, and why).
    "apps.core.csp.ContentSecurityPolicyMiddleware",
    "apps.core.staticfiles.StaticFilesMiddleware",  # WhiteNoise, without a warning under ASGI
    "apps.core.middleware.RequestIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The page's language: the browser's (Accept-Language) or the language cookie, then (below,
    # once the user is known) a signed-in staff user's stored choice (docs/i18n.md).
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "apps.accounts.middleware.StaffLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "apps.setup.middleware.SetupRedirectMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
            ],
        },
    },
]

if DATABASE_URL:
    DATABASES = {"default": env.db_url_config(DATABASE_URL)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's backend, plus a bounded wait for a connection where the webhook path asks for one.
        DATABASES["default"]["ENGINE"] = "apps.core.postgres"
    # PostgreSQL connections come from a per-process pool (psycopg_pool): under ASGI each request
    # runs on a new thread, so per-thread persistent connections would pile up until PostgreSQL
    # refuses new ones. DB_POOL_MAX_SIZE=0 turns the pool off (then DB_CONN_MAX_AGE applies).
    _pool_max = env.int("DB_POOL_MAX_SIZE", default=20)
    if _pool_max > 0 and DATABASES["default"]["ENGINE"] == "apps.core.postgres":
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        # A pooled connection is checked (one empty round trip) as it leaves the pool, so after a
        # database restart or failover the pool hands out live connections, not dead ones.
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": env.int("DB_POOL_MIN_SIZE", default=2),
            "max_size": _pool_max,
            "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
        }
    else:
        DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "parley.sqlite3"),
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"},
            # Tests use a file too, never Django's shared-cache in-memory database: its table locks
            # ("database table is locked") fail concurrent writers at once, where the product's WAL
            # file makes them wait up to the busy timeout. Threads in tests meet what users meet.
            "TEST": {"NAME": str(VAR_DIR / "test_parley.sqlite3")},
        }
    }

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "apps.core.cache.RedisCache",
            "LOCATION": REDIS_URL,
            # One pool per process, not per thread (ASGI runs each request on a new thread). A Redis
            # that does not answer fails a cache call within a second instead of hanging the request
            # (its commands take well under a millisecond); the webhook path then stops asking it
            # for a few seconds (apps/core/breaker.py, docs/reliability.md).
            "OPTIONS": {
                "pool_class": "apps.core.cache.SharedConnectionPool",
                "socket_connect_timeout": env.float("REDIS_CONNECT_TIMEOUT", default=1.0),
                "socket_timeout": env.float("REDIS_SOCKET_TIMEOUT", default=1.0),
            },
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": env.str("CHANNEL_LAYER_PREFIX", default="parley")},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "parley"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
FORMS_URLFIELD_ASSUME_HTTPS = True
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
# Each language named in itself (the switch shows them so). Catalogues: locale/ (docs/i18n.md).
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_COOKIE_NAME = "parley_language"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# Largest request body a webhook or form may send (bytes). Larger bodies get 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("MAX_REQUEST_BYTES", default=1024 * 1024)

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if not DEBUG and env.bool("SECURE_COOKIES", default=False):
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
# Behind a TLS proxy (uvicorn trusts its X-Forwarded-Proto from FORWARDED_ALLOW_IPS): send plain
# HTTP to HTTPS, except the probes and the scrape, and tell browsers to stay on HTTPS.
SECURE_SSL_REDIRECT = not DEBUG and env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = 0 if DEBUG else env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)

LOGIN_URL = "/admin/login/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # DRF's user / anon throttles, letting requests through (with a warning) when Redis is away.
    "DEFAULT_THROTTLE_CLASSES": ["apps.core.throttling.UserThrottle", "apps.core.throttling.AnonThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": env.str("API_RATE_USER", default="600/min"),
        "anon": env.str("API_RATE_ANON", default="30/min"),
    },
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=7)),
    "UPDATE_LAST_LOGIN": True,
}
# The schema lists every endpoint and field: for signed-in people only (session or token).
SPECTACULAR_SETTINGS = {
    "TITLE": "Parley API",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # /api/docs/ (Swagger UI) and /api/redoc/ from drf-spectacular-sidecar's static files.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Default AI model: used by bots that have no model configured in the database -------------
AI_PROVIDER = env.str("AI_PROVIDER", default="builtin")  # openai | generic | anthropic | builtin
AI_ENDPOINT = env.str("AI_ENDPOINT", default="")
API_KEY = env.str("API_KEY", default="")
MODEL_NAME = env.str("MODEL_NAME", default="")
MAX_TOKENS = env.int("MAX_TOKENS", default=2048)
AI_FALLBACK_TIMEOUT = env.float("AI_FALLBACK_TIMEOUT", default=3.0)
# Circuit breaker per model config: open after this many failures in a row, probe after the cool-down.
LLM_BREAKER_FAILURES = env.int("LLM_BREAKER_FAILURES", default=5)
LLM_BREAKER_COOLDOWN = env.float("LLM_BREAKER_COOLDOWN", default=30.0)
# After the first token: longest pause between streamed pieces, and longest whole answer (seconds).
LLM_STREAM_IDLE_TIMEOUT = env.float("LLM_STREAM_IDLE_TIMEOUT", default=30.0)
LLM_MAX_ANSWER_SECONDS = env.float("LLM_MAX_ANSWER_SECONDS", default=120.0)
# How long a feedback (rating) link in an answer stays valid, in seconds (default 30 days).
FEEDBACK_LINK_MAX_AGE = env.int("FEEDBACK_LINK_MAX_AGE", default=30 * 24 * 3600)

# --- Background work -----------------------------------------------------------------------------
# Embedded default: tasks run in-process on a small thread pool after the transaction commits.
# Production: Celery on Redis. PARLEY_TASKS_INLINE forces the in-process runner (tests of pure logic).
TASKS_MODE = env.str("PARLEY_TASKS_MODE", default="inprocess" if EMBEDDED else "celery")
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = None
# Nothing reads task results; ignoring them also spares every publish a result-backend lookup.
CELERY_TASK_IGNORE_RESULT = True
# Results are disabled and the disabled backend holds no state: build it once per process, not once
# per thread (Celery otherwise resolves it again in every new thread by reading every installed
# package's entry points — and ASGI runs each request on a new thread).
CELERY_RESULT_BACKEND_THREAD_SAFE = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# A broker that does not answer fails a publish in seconds rather than never (kombu's default has no
# socket timeout): the webhook then leaves the message to the sweeper (docs/reliability.md). The
# timeout stays above the workers' 1 s BRPOP poll. One quick retry covers a connection the broker
# dropped (a Redis restart).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=900),
    "socket_timeout": env.float("CELERY_BROKER_SOCKET_TIMEOUT", default=2.0),
    "socket_connect_timeout": env.float("REDIS_CONNECT_TIMEOUT", default=1.0),
}
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = TIME_ZONE
# Periodic work, every this many seconds (config/celery.py's beat schedule; on the embedded default
# `manage.py run` runs it in-process): re-driving stuck messages, lost workflow calls, retention.
PARLEY_SWEEP_INTERVAL = env.float("PARLEY_SWEEP_INTERVAL", default=5.0)
PARLEY_WORKFLOW_SWEEP_INTERVAL = env.float("PARLEY_WORKFLOW_SWEEP_INTERVAL", default=60.0)
PARLEY_RETENTION_INTERVAL = env.float("PARLEY_RETENTION_INTERVAL", default=3600.0)
# Human handoff (docs/handoff.md): how often silent handoffs are handed back to the bot.
PARLEY_HANDOFF_SWEEP_INTERVAL = env.float("PARLEY_HANDOFF_SWEEP_INTERVAL", default=60.0)
# A claimed message whose worker stops renewing its lease this long is re-driven by the sweeper
# (every PARLEY_SWEEP_INTERVAL). A live worker renews its claims every third of the lease
# (apps/conversations/pipeline/heartbeat.py), so a dead worker's message is retried within about
# lease + sweep interval (docs/reliability.md).
PARLEY_INBOUND_LEASE_SECONDS = env.float("PARLEY_INBOUND_LEASE_SECONDS", default=15.0)
# A stored message no task has claimed after this long is queued again (its task was lost between
# the commit and the publish). Keep it above the longest merge window. Messages whose publish
# failed (the task queue unreachable) are queued again at the next sweep, without waiting for it.
PARLEY_RECEIVED_GRACE_SECONDS = env.float("PARLEY_RECEIVED_GRACE_SECONDS", default=30.0)
# Replies the platform did not take at once (docs/reliability.md): retried apart from the message's
# claims, first after PARLEY_DELIVERY_BACKOFF_SECONDS, doubling up to ..._MAX_SECONDS, for
# PARLEY_DELIVERY_RETRY_HOURS after the reply was made; due retries are looked for every
# PARLEY_DELIVERY_SWEEP_INTERVAL seconds.
PARLEY_DELIVERY_RETRY_HOURS = env.float("PARLEY_DELIVERY_RETRY_HOURS", default=6.0)
PARLEY_DELIVERY_BACKOFF_SECONDS = env.float("PARLEY_DELIVERY_BACKOFF_SECONDS", default=5.0)
PARLEY_DELIVERY_BACKOFF_MAX_SECONDS = env.float("PARLEY_DELIVERY_BACKOFF_MAX_SECONDS", default=300.0)
PARLEY_DELIVERY_SWEEP_INTERVAL = env.float("PARLEY_DELIVERY_SWEEP_INTERVAL", default=5.0)
# How long a webhook waits for a database connection before it answers 503 (the platform retries);
# see apps/core/postgres/base.py. The database's own pool timeout (DB_POOL_TIMEOUT) applies elsewhere.
PARLEY_WEBHOOK_DB_WAIT = env.float("PARLEY_WEBHOOK_DB_WAIT", default=0.8)
# Webhooks under ASGI run on this many long-lived threads per web process (apps/channels/asgi.py).
PARLEY_WEBHOOK_THREADS = env.int("PARLEY_WEBHOOK_THREADS", default=8)
# Seconds a web process reuses a channel lookup (webhooks, web-chat handshakes and pages); a channel
# disabled (or re-keyed) in another process is refused within this time. 0: look up every time.
PARLEY_CHANNEL_CACHE_SECONDS = env.float("PARLEY_CHANNEL_CACHE_SECONDS", default=5.0)
# Web-chat sockets: threads per web process for their database work.
WEBCHAT_DB_THREADS = env.int("WEBCHAT_DB_THREADS", default=4)
# Web chat (docs/webchat.md): visitor token and refresh lifetimes (seconds), longest message
# (characters) and frame (bytes), frames per second a socket may send (and its burst), refused frames
# before the socket is closed, and tokens one address may fetch per minute.
WEBCHAT_TOKEN_SECONDS = env.int("WEBCHAT_TOKEN_SECONDS", default=12 * 3600)
WEBCHAT_REFRESH_SECONDS = env.int("WEBCHAT_REFRESH_SECONDS", default=30 * 24 * 3600)
WEBCHAT_MAX_MESSAGE_CHARS = env.int("WEBCHAT_MAX_MESSAGE_CHARS", default=4000)
WEBCHAT_MAX_FRAME_BYTES = env.int("WEBCHAT_MAX_FRAME_BYTES", default=16 * 1024)
WEBCHAT_FRAMES_PER_SECOND = env.float("WEBCHAT_FRAMES_PER_SECOND", default=2.0)
WEBCHAT_FRAME_BURST = env.int("WEBCHAT_FRAME_BURST", default=8)
WEBCHAT_FLOOD_STRIKES = env.int("WEBCHAT_FLOOD_STRIKES", default=20)
WEBCHAT_TOKENS_PER_MINUTE = env.int("WEBCHAT_TOKENS_PER_MINUTE", default=60)
# Seconds any call to a platform's API (sends, tokens, long-connection endpoints) may take
# (apps/channels/platforms/http.py); past it a Slack send's outcome counts as unknown
# (docs/platforms.md). SLACK_SEND_TIMEOUT, its earlier name, is still read when this one is unset.
PLATFORM_API_TIMEOUT = env.float("PLATFORM_API_TIMEOUT", default=env.float("SLACK_SEND_TIMEOUT", default=10.0))

# --- The outbound guard (docs/security.md "Outbound calls") ------------------------------------------
# Networks that server-side calls a tenant admin can point somewhere (workflows, model endpoints,
# channel API bases, the Test buttons) may never reach, and the operator's exceptions to them.
# Production refuses loopback, private, shared, link-local (cloud metadata) and other special
# ranges; the embedded default only link-local and metadata addresses (a model server on the same
# machine or network just works). Empty: no check. PARLEY_WORKFLOW_BLOCKED_NETWORKS, the earlier
# workflows-only name, is still read when the new one is not set.
OUTBOUND_BLOCKED_PRODUCTION = (
    "0.0.0.0/8,10.0.0.0/8,100.64.0.0/10,127.0.0.0/8,169.254.0.0/16,172.16.0.0/12,192.0.0.0/24,"
    "192.0.2.0/24,192.88.99.0/24,192.168.0.0/16,198.18.0.0/15,198.51.100.0/24,203.0.113.0/24,224.0.0.0/4,"
    "240.0.0.0/4,::/128,::1/128,100::/64,2001:db8::/32,fc00::/7,fe80::/10,fec0::/10,ff00::/8"
)
OUTBOUND_BLOCKED_EMBEDDED = "169.254.0.0/16,fe80::/10,100.100.100.200/32,fd00:ec2::254/128"
PARLEY_OUTBOUND_BLOCKED_NETWORKS = env.str(
    "PARLEY_OUTBOUND_BLOCKED_NETWORKS",
    default=env.str(
        "PARLEY_WORKFLOW_BLOCKED_NETWORKS",
        default=OUTBOUND_BLOCKED_EMBEDDED if EMBEDDED or DEBUG else OUTBOUND_BLOCKED_PRODUCTION,
    ),
)
PARLEY_OUTBOUND_ALLOWED_NETWORKS = env.str("PARLEY_OUTBOUND_ALLOWED_NETWORKS", default="")
for _name, _value in (
    ("PARLEY_OUTBOUND_BLOCKED_NETWORKS", PARLEY_OUTBOUND_BLOCKED_NETWORKS),
    ("PARLEY_OUTBOUND_ALLOWED_NETWORKS", PARLEY_OUTBOUND_ALLOWED_NETWORKS),
):
    for _part in filter(None, (p.strip() for p in _value.split(","))):
        try:
            ipaddress.ip_network(_part, strict=False)
        except ValueError:
            raise ImproperlyConfigured(f"{_name}: {_part!r} is not a network (e.g. 10.0.0.0/8)") from None

# --- Workflows (docs/workflows.md) ----------------------------------------------------------------
# The first retry's wait (seconds, doubling), how long a confirmation waits, when a lost call is
# re-queued and how often, and how long a process remembers a bot's enabled workflows (0: read them
# for every message). Where calls may go: the outbound guard above.
PARLEY_WORKFLOW_RETRY_BACKOFF = env.float("PARLEY_WORKFLOW_RETRY_BACKOFF", default=1.0)
# Long connections (run_connectors, and `manage.py run`'s supervisor): seconds, as text so that a
# malformed value is refused by the supervisor with the variable's name (docs/connectors.md; empty:
# the default of each).
PARLEY_CONNECTORS_POLL_SECONDS = env.str("PARLEY_CONNECTORS_POLL_SECONDS", default="")
PARLEY_CONNECTORS_LOCK_TTL = env.str("PARLEY_CONNECTORS_LOCK_TTL", default="")
PARLEY_CONNECTORS_BACKOFF_BASE = env.str("PARLEY_CONNECTORS_BACKOFF_BASE", default="")
PARLEY_CONNECTORS_BACKOFF_MAX = env.str("PARLEY_CONNECTORS_BACKOFF_MAX", default="")
PARLEY_WORKFLOW_CONFIRM_SECONDS = env.int("PARLEY_WORKFLOW_CONFIRM_SECONDS", default=600)
PARLEY_WORKFLOW_REQUEUE_SECONDS = env.float("PARLEY_WORKFLOW_REQUEUE_SECONDS", default=120.0)
PARLEY_WORKFLOW_MAX_REQUEUES = env.int("PARLEY_WORKFLOW_MAX_REQUEUES", default=3)
PARLEY_WORKFLOW_CACHE_SECONDS = env.float("PARLEY_WORKFLOW_CACHE_SECONDS", default=5.0)

# --- Tool calling (docs/tools.md) -------------------------------------------------------------------
# The loop model → tool calls → results → model: most rounds of tool calls per answer, most calls in
# one answer, and the seconds the whole answer may take (model rounds and calls together); how long
# a process remembers a tool server's tool list, and the seconds one tool-server request may take.
PARLEY_TOOL_MAX_ROUNDS = env.int("PARLEY_TOOL_MAX_ROUNDS", default=4)
PARLEY_TOOL_MAX_CALLS = env.int("PARLEY_TOOL_MAX_CALLS", default=8)
PARLEY_TOOL_DEADLINE_SECONDS = env.float("PARLEY_TOOL_DEADLINE_SECONDS", default=60.0)
PARLEY_TOOL_LIST_CACHE_SECONDS = env.float("PARLEY_TOOL_LIST_CACHE_SECONDS", default=300.0)
PARLEY_TOOL_SERVER_TIMEOUT = env.float("PARLEY_TOOL_SERVER_TIMEOUT", default=15.0)

# --- Knowledge bases (docs/knowledge.md) ------------------------------------------------------------
# Largest document a tenant may upload or a URL may return (bytes); passage size aimed for (estimated
# tokens: one per CJK character, one per four other characters); the share of a prompt the cited
# passages may fill (estimated tokens); passages embedded per /v1/embeddings request; seconds a URL
# fetch or an embeddings request may take; how often (seconds) URL sources due a refresh are looked for.
KNOWLEDGE_MAX_DOCUMENT_BYTES = env.int("KNOWLEDGE_MAX_DOCUMENT_BYTES", default=20 * 1024 * 1024)
KNOWLEDGE_CHUNK_TOKENS = env.int("KNOWLEDGE_CHUNK_TOKENS", default=400)
KNOWLEDGE_PROMPT_TOKENS = env.int("KNOWLEDGE_PROMPT_TOKENS", default=1500)
KNOWLEDGE_EMBED_BATCH = env.int("KNOWLEDGE_EMBED_BATCH", default=64)
KNOWLEDGE_HTTP_TIMEOUT = env.float("KNOWLEDGE_HTTP_TIMEOUT", default=20.0)
KNOWLEDGE_REFRESH_INTERVAL = env.float("KNOWLEDGE_REFRESH_INTERVAL", default=600.0)
# Seconds a process remembers whether a bot has any knowledge base (bots without one then cost no
# query per message); an attachment made in another process applies within this time.
KNOWLEDGE_ATTACHED_CACHE_SECONDS = env.float("KNOWLEDGE_ATTACHED_CACHE_SECONDS", default=5.0)

# --- Metrics (docs/observability.md) ---------------------------------------------------------------
# When set, /metrics asks for "Authorization: Bearer <token>". Without one, production answers 403
# (the page names tenants and bots) unless PARLEY_METRICS_PUBLIC=true says, on purpose, that the
# network keeps it private (the embedded default serves it openly). A Celery worker on a host without a
# web process serves its own metrics on PARLEY_WORKER_METRICS_PORT (unset: it does not).
# PROMETHEUS_MULTIPROC_DIR is read from the environment by prometheus_client itself, before settings.
PARLEY_METRICS_TOKEN = env.str("PARLEY_METRICS_TOKEN", default="")
PARLEY_METRICS_PUBLIC = env.bool("PARLEY_METRICS_PUBLIC", default=EMBEDDED or DEBUG)
PARLEY_WORKER_METRICS_PORT = env.str("PARLEY_WORKER_METRICS_PORT", default="")
PARLEY_WORKER_METRICS_ADDR = env.str("PARLEY_WORKER_METRICS_ADDR", default="0.0.0.0")  # noqa: S104 - scraped by Prometheus

# --- Staff sign-in (docs/security.md) -----------------------------------------------------------
# Password sign-in: "all" (default) or "superusers" (everyone else signs in through the identity
# provider below; this also applies to the API's password token endpoint).
PASSWORD_SIGNIN = env.str("PASSWORD_SIGNIN", default="all")
if PASSWORD_SIGNIN not in ("all", "superusers"):
    raise ValueError("PASSWORD_SIGNIN must be 'all' or 'superusers'")
AUTHENTICATION_BACKENDS = [
    "apps.accounts.signin.PasswordSignInBackend",  # the policy above, and the audit trail
    "django.contrib.auth.backends.ModelBackend",
]
# OpenID Connect (authorization code + PKCE). Off unless OIDC_ENABLED; needs the issuer, client id
# and secret. Endpoints come from <issuer>/.well-known/openid-configuration (or OIDC_DISCOVERY_URL)
# unless the authorization, token and JWKS endpoints are all given. The provider's redirect URI
# is PUBLIC_BASE_URL + /auth/oidc/callback/.
OIDC_ENABLED = env.bool("OIDC_ENABLED", default=False)
OIDC_ISSUER = env.str("OIDC_ISSUER", default="")
OIDC_DISCOVERY_URL = env.str("OIDC_DISCOVERY_URL", default="")
OIDC_AUTHORIZATION_ENDPOINT = env.str("OIDC_AUTHORIZATION_ENDPOINT", default="")
OIDC_TOKEN_ENDPOINT = env.str("OIDC_TOKEN_ENDPOINT", default="")
OIDC_USERINFO_ENDPOINT = env.str("OIDC_USERINFO_ENDPOINT", default="")
OIDC_JWKS_URI = env.str("OIDC_JWKS_URI", default="")
OIDC_CLIENT_ID = env.str("OIDC_CLIENT_ID", default="")
OIDC_CLIENT_SECRET = env.str("OIDC_CLIENT_SECRET", default="")
OIDC_TOKEN_AUTH_METHOD = env.str("OIDC_TOKEN_AUTH_METHOD", default="client_secret_basic")  # or client_secret_post
OIDC_SCOPES = env.list("OIDC_SCOPES", default=["openid", "email", "profile"])
OIDC_SIGN_ALGORITHMS = env.list("OIDC_SIGN_ALGORITHMS", default=["RS256"])
OIDC_TIMEOUT = env.float("OIDC_TIMEOUT", default=10.0)
OIDC_BUTTON_LABEL = env.str("OIDC_BUTTON_LABEL", default="single sign-on")  # "Sign in with <label>"
# Who may sign in: a user whose e-mail matches; email_verified=false always refuses, a missing
# claim refuses only with OIDC_REQUIRE_EMAIL_VERIFIED. Unknown addresses in these domains get a new
# staff user without tenant memberships. Superusers keep to passwords unless OIDC_ALLOW_SUPERUSERS.
OIDC_REQUIRE_EMAIL_VERIFIED = env.bool("OIDC_REQUIRE_EMAIL_VERIFIED", default=False)
OIDC_PROVISION_DOMAINS = env.list("OIDC_PROVISION_DOMAINS", default=[])
OIDC_ALLOW_SUPERUSERS = env.bool("OIDC_ALLOW_SUPERUSERS", default=False)
# Sign-ins one client address may start per 10 minutes (each costs a request to the provider).
OIDC_START_LIMIT_PER_IP = env.int("OIDC_START_LIMIT_PER_IP", default=60)
# Signing out of the admin also ends the session at the provider (its end_session_endpoint, from
# discovery or OIDC_END_SESSION_ENDPOINT) for people who signed in through it; off: Parley only.
OIDC_PROVIDER_LOGOUT = env.bool("OIDC_PROVIDER_LOGOUT", default=True)
OIDC_END_SESSION_ENDPOINT = env.str("OIDC_END_SESSION_ENDPOINT", default="")
# Password guessing (admin and API; docs/security.md "Failed password sign-ins"): this many failed
# passwords for one username within the window (counted from the first failure) lock that username
# out from every address for SIGNIN_LOCKOUT_SECONDS; this many from one client address (IPv6: its
# /64) lock that address out for every username. 0 turns a limit off. Counts live in the cache.
SIGNIN_FAILURES_PER_USERNAME = env.int("SIGNIN_FAILURES_PER_USERNAME", default=5)
SIGNIN_FAILURES_PER_ADDRESS = env.int("SIGNIN_FAILURES_PER_ADDRESS", default=30)
SIGNIN_FAILURE_WINDOW_SECONDS = env.int("SIGNIN_FAILURE_WINDOW_SECONDS", default=900)
SIGNIN_LOCKOUT_SECONDS = env.int("SIGNIN_LOCKOUT_SECONDS", default=900)
if SIGNIN_FAILURE_WINDOW_SECONDS < 1 or SIGNIN_LOCKOUT_SECONDS < 1:
    raise ValueError("SIGNIN_FAILURE_WINDOW_SECONDS and SIGNIN_LOCKOUT_SECONDS must be at least 1")

# --- Logging: one JSON object per line on stdout ----------------------------------------------------
# LOG_FORMAT: "json", "text" (one short line per record, the level in colour) or "auto" (default):
# text in the embedded run attached to a terminal, JSON otherwise. Static files' access lines are
# never logged; in text the background tasks' routine "succeeded" lines are left out too.
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="auto")
if LOG_FORMAT not in ("auto", "json", "text"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be auto, json or text, not {LOG_FORMAT!r}")
LOG_FORMAT_USED = LOG_FORMAT if LOG_FORMAT != "auto" else ("text" if EMBEDDED and _stdout_is_a_terminal() else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "apps.core.logging.ContextFilter"},
        "no_static": {"()": "apps.core.logging.SkipStaticFiles"},
    },
    "formatters": {
        "json": {"()": "apps.core.logging.JsonFormatter"},
        "text": {"()": "apps.core.logging.ConsoleFormatter", "colour": LOG_FORMAT_USED == "text"},
    },
    "handlers": {
        "stdout": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT_USED, "filters": ["context"]},
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # The Markdown renderer logs every block rule it tries at DEBUG; never useful in Parley's logs.
        "markdown_it": {"level": "WARNING"},
        "uvicorn.access": {"filters": ["no_static"]},
        # Each periodic task's "succeeded in 0.002s" (every few seconds): noise on a terminal.
        **({"celery.app.trace": {"level": "WARNING"}} if LOG_FORMAT_USED == "text" else {}),
    },
}

PROMETHEUS_EXPORT_MIGRATIONS = False

# --- Admin console (Unfold theme; docs/console.md) ----------------------------------------------
# Unfold's sign-in form does not post the admin's "next" (the admin index when none is asked for):
# a plain sign-in lands on the admin home page, as with the stock admin.
LOGIN_REDIRECT_URL = "admin:index"
# Signing out (POST, or GET from a bookmarked link) lands on the sign-in page.
LOGOUT_REDIRECT_URL = "admin:login"
UNFOLD = {
    "SITE_TITLE": "Parley",
    "SITE_HEADER": "Parley",
    "SITE_SYMBOL": "forum",
    "SITE_URL": "/admin/",
    "SHOW_HISTORY": False,
    "SHOW_VIEW_ON_SITE": False,
    # The language switch in the user menu; choosing stores the signed-in user's preference.
    "SHOW_LANGUAGES": True,
    "DASHBOARD_CALLBACK": "apps.console.dashboard.dashboard_callback",
    "STYLES": ["apps.console.dashboard.stylesheet"],
    "SIDEBAR": {"show_search": False, "show_all_applications": False, "navigation": "apps.console.navigation.sidebar"},
    "COLORS": {
        "primary": {
            "50": "oklch(97% .014 254.604)",
            "100": "oklch(93.2% .032 255.585)",
            "200": "oklch(88.2% .059 254.128)",
            "300": "oklch(80.9% .105 251.813)",
            "400": "oklch(70.7% .165 254.624)",
            "500": "oklch(62.3% .214 259.815)",
            "600": "oklch(54.6% .245 262.881)",
            "700": "oklch(48.8% .243 264.376)",
            "800": "oklch(42.4% .199 265.638)",
            "900": "oklch(37.9% .146 265.522)",
            "950": "oklch(28.2% .091 267.935)",
        },
    },
}
