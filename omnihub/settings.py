"""Omnihub settings: the only module that reads the environment."""

from pathlib import Path

import environ

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
    "django_tasks_db",
    "omnihub",
    "instances",
    "webhooks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "omnihub.middleware.StaticFilesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "omnihub.middleware.JsonApiErrorsMiddleware",
]

ROOT_URLCONF = "omnihub.urls"
ASGI_APPLICATION = "omnihub.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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
    # Values travel apart from the SQL instead of being quoted into it by psycopg in Python:
    # about 0.1 ms less CPU per webhook.
    options["server_side_binding"] = True
    # A statement run 5 times on a connection is prepared there, so PostgreSQL stops parsing
    # and planning it: about 0.25 ms less wait per webhook. Django leaves it off for PgBouncer
    # in transaction mode, which needs 1.21+ with max_prepared_statements set: turn it off there.
    if env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
        options.setdefault("prepare_threshold", 5)
    options["pool"] = {
        "min_size": 1,
        # Worker loops hold a connection only while they touch the database, not while they
        # wait on an agent or for work, so a pool much smaller than WORKER_CONCURRENCY serves.
        "max_size": int(env.str("DATABASE_POOL_SIZE", default="") or 20),
        "timeout": 30,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

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

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # Django's own loggers default to INFO and would bypass LOG_LEVEL (a line per task state).
    "loggers": {"django": {"level": LOG_LEVEL}, "django.db.backends": {"level": "INFO"}},
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
}

# Legacy settings of the single-tenant service, kept so old .env files stay valid.
EVOLUTION_TRANSCRIPT_API = env.str("EVOLUTION_TRANSCRIPT_API", default="")
EVOLUTION_TRANSCRIPT_API_KEY = env.str("EVOLUTION_TRANSCRIPT_API_KEY", default="")
EVOLUTION_MINIO_URL = env.str("EVOLUTION_MINIO_URL", default="")

if not DEBUG:
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)

# --- The message pipeline ---------------------------------------------------------------------
# Tries per message (agent calls and sends together) before it is marked failed.
MESSAGE_MAX_ATTEMPTS = env.int("MESSAGE_MAX_ATTEMPTS", default=6)
# Exponential backoff between tries, in seconds: base * 2^(attempt-1), jittered, capped.
RETRY_BASE_DELAY = env.float("RETRY_BASE_DELAY", default=2.0)
RETRY_MAX_DELAY = env.float("RETRY_MAX_DELAY", default=300.0)
# Seconds to wait for Evolution to accept a reply.
EVOLUTION_TIMEOUT = env.float("EVOLUTION_TIMEOUT", default=15.0)
# A worker's claim on a conversation lasts the agent timeout + the Evolution timeout + this.
LEASE_MARGIN = env.float("LEASE_MARGIN", default=30.0)
# Conversations one worker process answers at once, and how often idle workers look for work.
# A loop is a thread that mostly waits on an agent (seconds each): 50 answer 200 chats whose
# agent takes 2 s in about 8 s.
WORKER_CONCURRENCY = env.int("WORKER_CONCURRENCY", default=50)
WORKER_POLL_INTERVAL = env.float("WORKER_POLL_INTERVAL", default=1.0)
# Workers delete finished tasks after this many hours: they are the queue's plumbing, and each
# message keeps its own history. Without this the task table grows by a row per message.
TASK_RESULTS_KEEP_HOURS = env.float("TASK_RESULTS_KEEP_HOURS", default=24.0)

# Threads of a web process that run webhooks' database work, each with its own connection.
# SQLite takes one writer at a time, so more than one thread would only wait on its lock.
WEB_DB_THREADS = env.int(
    "WEB_DB_THREADS", default=1 if DATABASES["default"]["ENGINE"].endswith("sqlite3") else 4
)

# Requests a web process lets into Django at once (each holds a thread); the rest queue.
WEB_MAX_REQUESTS = env.int("WEB_MAX_REQUESTS", default=32)

# Per-process memory by default; set CACHE_URL (e.g. redis://127.0.0.1:6379/1) to share it, so a
# tenant changed through one process is seen at once by all.
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}
# How long a process may keep using a cached tenant lookup that another process changed.
TENANT_CACHE_SECONDS = env.int("TENANT_CACHE_SECONDS", default=30)
