"""Omnihub settings: the only module that reads the environment."""

from datetime import timedelta
from pathlib import Path

import django_stubs_ext
import environ

# Lets classes be written generic for type checkers (ModelAdmin[Model], TextField[...]), which
# Django's own classes do not allow at run time.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# Real environment variables win over the file; the tests point this at an empty file.
environ.Env.read_env(env.str("OMNIHUB_ENV_FILE", default=str(BASE_DIR / ".env")), overwrite=False)

SECRET_KEY = env.str("SECRET_KEY")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "axes",
    # Its Swagger UI is then served from its static files, not a CDN: the docs work offline.
    "ninja",
    "omnihub",
    "instances",
    "webhooks",
]

MIDDLEWARE = [
    # First: every later get_host() can then trust the Host header.
    "omnihub.middleware.AllowedHostsMiddleware",
    "omnihub.middleware.NulInUrlMiddleware",
    "omnihub.middleware.SecurityMiddleware",
    "omnihub.middleware.StaticFilesMiddleware",
    # Webhooks leave the chain here: what follows is for people's browsers.
    "omnihub.middleware.WebhooksMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "omnihub.middleware.JsonApiErrorsMiddleware",
    # Last, as django-axes asks: it turns a locked-out admin login into its 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "omnihub.urls"
ASGI_APPLICATION = "omnihub.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Before the apps' own: omnihub's admin/base_site.html overrides the admin's.
        "DIRS": [BASE_DIR / "omnihub" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# SQLite is the zero-setup default (a file beside the code, WAL mode so the web process and
# the workers read while one writes); PostgreSQL via DATABASE_URL in production.
DATABASE_URL = env.str("DATABASE_URL", default="") or f"sqlite:///{BASE_DIR / 'omnihub.db'}"
DATABASES = {"default": env.db_url_config(DATABASE_URL)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        }
    )
    # Opening an SQLite connection costs more than most webhooks; threads that live long (the
    # web's database threads, the worker loops) keep theirs. Nothing limits SQLite connections.
    DATABASES["default"]["CONN_MAX_AGE"] = None
else:
    # No ASGI lifespan in Django and a thread per request: persistent connections would pile up
    # (one per thread, "too many clients"). A per-process pool hands them out instead.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    options = DATABASES["default"].setdefault("OPTIONS", {})
    # Values travel apart from the SQL instead of being quoted into it by psycopg in Python.
    options["server_side_binding"] = True
    # A statement run 5 times on a connection is prepared there, so PostgreSQL stops parsing
    # and planning it. Django leaves it off for PgBouncer in transaction mode, which needs
    # 1.21+ with max_prepared_statements set: turn it off there.
    if env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
        options.setdefault("prepare_threshold", 5)
    options["pool"] = {
        "min_size": 1,
        # Only the few database threads of a process (DB_THREADS) and the worker's wake-up
        # listener hold connections, however many chats are in flight.
        "max_size": int(env.str("DATABASE_POOL_SIZE", default="") or 20),
        "timeout": 30,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# django-axes first: it refuses a locked-out address before a password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Wrong admin passwords and REST API keys (omnihub.auth_failures) from one client address
# (REMOTE_ADDR: behind a proxy, uvicorn sets it from X-Forwarded-For when FORWARDED_ALLOW_IPS
# names the proxy) lock that address out for AXES_COOLOFF_TIME; the count is kept in the
# database, so every process sees it.
AXES_FAILURE_LIMIT = env.int("AUTH_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("AUTH_LOCKOUT_MINUTES", default=15.0))
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "omnihub.auth_failures.lockout_response"
# No banner on every command's start; failures still log their address and path.
AXES_VERBOSE = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Webhooks carry base64 media; Evolution's own limit is well under this.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
# A page of the message log: larger requests get 422, not a query the database cannot run.
NINJA_PAGINATION_MAX_LIMIT = 1000

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # On stderr, so a command's output (stdout) is its own; the instance_* commands show only
    # warnings there unless -v 2 asks for more (instances/management/commands/_instance_cli).
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # Django's own loggers default to INFO and would bypass LOG_LEVEL (a line per task state).
    "loggers": {
        "django": {"level": LOG_LEVEL},
        "django.db.backends": {"level": "INFO"},
        # The outbound client's DEBUG lines print aiohttp errors' reprs, which may quote a URL
        # (query string included) or a proxy's credentials.
        "aiohttp": {"level": "WARNING"},
    },
}

# --- Omnihub ---------------------------------------------------------------------------------
OMNIHUB_API_KEY = env.str("OMNIHUB_API_KEY", default="")
OMNIHUB_ENCRYPTION_KEYS = env.list("OMNIHUB_ENCRYPTION_KEYS", default=[])
OMNIHUB_ADMIN_USER = env.str("OMNIHUB_ADMIN_USER", default="")
OMNIHUB_ADMIN_PASSWORD = env.str("OMNIHUB_ADMIN_PASSWORD", default="")
OMNIHUB_PUBLIC_URL = env.str("OMNIHUB_PUBLIC_URL", default="")
API_HOST = env.str("API_HOST", default="127.0.0.1")
API_PORT = env.int("API_PORT", default=8000)

# The default tenant, seeded from these after `migrate` when no tenant exists yet.
DEFAULT_INSTANCE = {
    "name": env.str("WHATSAPP_INSTANCE", default="") or "default",
    "whatsapp_instance": env.str("WHATSAPP_INSTANCE", default="") or "default",
    "session_id_prefix": env.str("SESSION_ID_PREFIX", default=""),
    "agent_api_url": env.str("AGENT_API_URL", default=""),
    "agent_api_key": env.str("AGENT_API_KEY", default=""),
    "default_agent": env.str("DEFAULT_AGENT_NAME", default=""),
    "agent_timeout": env.int("AGENT_API_TIMEOUT", default=60),
    "evolution_url": env.str("EVOLUTION_API_URL", default=""),
    "evolution_key": env.str("EVOLUTION_API_KEY", default=""),
    # When set, the default tenant requires its webhooks to prove they know it.
    "webhook_secret": env.str("WEBHOOK_SECRET", default=""),
}
# After a tenant's webhook secret is rotated, the previous one still verifies this long, so
# Evolution can be given the new one without a webhook being refused meanwhile.
WEBHOOK_SECRET_GRACE_SECONDS = env.int("WEBHOOK_SECRET_GRACE_SECONDS", default=3600)

# Legacy settings of the single-tenant service, kept so old .env files stay valid.
EVOLUTION_TRANSCRIPT_API = env.str("EVOLUTION_TRANSCRIPT_API", default="")
EVOLUTION_TRANSCRIPT_API_KEY = env.str("EVOLUTION_TRANSCRIPT_API_KEY", default="")
EVOLUTION_MINIO_URL = env.str("EVOLUTION_MINIO_URL", default="")

if not DEBUG:
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)

# --- The message pipeline ---------------------------------------------------------------------
# A message that keeps failing for a reason that may pass (timeouts, 5xx, 408/425/429) is tried
# again with exponential backoff (base * 2^(attempt-1), jittered, capped) for this many seconds
# after it arrived, so that an outage of a few minutes loses nothing; then it is failed.
RETRY_WINDOW_SECONDS = env.float("RETRY_WINDOW_SECONDS", default=1800.0)
RETRY_BASE_DELAY = env.float("RETRY_BASE_DELAY", default=2.0)
RETRY_MAX_DELAY = env.float("RETRY_MAX_DELAY", default=120.0)
# Origins (scheme://host[:port], comma-separated) the default tenant without an Evolution URL
# may reply through when a webhook names them as its server_url. Empty: only the first origin
# that tenant saw, pinned.
EVOLUTION_TRUSTED_SERVERS = env.list("EVOLUTION_TRUSTED_SERVERS", default=[])
# Seconds Evolution has to accept a reply (its own `delay`, when asked for, comes on top).
EVOLUTION_TIMEOUT = env.float("EVOLUTION_TIMEOUT", default=15.0)
# WhatsApp shows "typing…" for about 25 s after each presence update: while the agent thinks,
# Omnihub renews it this often (a constant; tests make it short).
TYPING_REFRESH_SECONDS = 20.0
# ... from this long after the agent was asked: an answer that comes sooner needs no "typing…",
# and each presence call costs Evolution a number lookup and a WhatsApp update.
TYPING_AFTER_SECONDS = 1.0
# A worker's hold on a chat lasts this long and is renewed while the worker lives, so the chats
# of a worker that died are taken up by another within about this many seconds.
LEASE_SECONDS = env.float("LEASE_SECONDS", default=60.0)
# Conversations one worker process answers at once (each a coroutine waiting on HTTP), how often
# an idle worker looks for retries that came due, and how long SIGTERM lets in-flight work end.
WORKER_CONCURRENCY = env.int("WORKER_CONCURRENCY", default=1000)
WORKER_POLL_INTERVAL = env.float("WORKER_POLL_INTERVAL", default=1.0)
WORKER_GRACE_SECONDS = env.float("WORKER_GRACE_SECONDS", default=20.0)

# Threads of each process (web and worker) that run database work, each with its own
# connection. SQLite takes one writer at a time, so more than one thread would only wait on it.
DB_THREADS = env.int(
    "DB_THREADS",
    default=env.int(
        "WEB_DB_THREADS", default=1 if DATABASES["default"]["ENGINE"].endswith("sqlite3") else 4
    ),
)

# Requests a web process lets into Django at once (each holds a thread); the rest queue.
WEB_MAX_REQUESTS = env.int("WEB_MAX_REQUESTS", default=32)
# Seconds a request's whole body has to arrive in (else 408), before it takes one of those
# places; connections a web process keeps open at once (beyond: 503), and seconds an idle
# keep-alive connection stays open: a stalled client costs a connection, never the server.
WEB_BODY_TIMEOUT = env.float("WEB_BODY_TIMEOUT", default=10.0)
WEB_MAX_CONNECTIONS = env.int("WEB_MAX_CONNECTIONS", default=1000)
WEB_KEEP_ALIVE_SECONDS = env.int("WEB_KEEP_ALIVE_SECONDS", default=5)

# Per-process memory by default; set CACHE_URL (e.g. redis://127.0.0.1:6379/1) to share it, so a
# tenant changed through one process is seen at once by all.
CACHES = {
    "default": env.cache_url("CACHE_URL", default="locmemcache://"),
    # Never shared, whatever CACHE_URL says: what only this process may keep (decrypted
    # webhook secrets, for a few seconds).
    "process": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "omnihub-process",
        "OPTIONS": {"MAX_ENTRIES": 10_000},
    },
}
if CACHES["default"]["BACKEND"].endswith("LocMemCache"):
    # Django's default of 300 entries is fewer than the chats of a busy tenant: the cached
    # conversation ids would keep pushing each other out.
    CACHES["default"].setdefault("OPTIONS", {}).setdefault("MAX_ENTRIES", 10_000)
# How long a process may keep using a cached tenant lookup that another process changed.
TENANT_CACHE_SECONDS = env.int("TENANT_CACHE_SECONDS", default=30)
