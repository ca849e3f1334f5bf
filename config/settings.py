"""Settings for searchsync, read from the environment.

Every default points at the local devstack (see devstack/README.md), so a fresh
checkout runs without any configuration; production sets the variables listed
in README.md.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name, default=None):
    return os.environ.get(name, default)


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name, default):
    return int(os.environ.get(name, default))


def env_float(name, default):
    return float(os.environ.get(name, default))


# --- Secure by default ---------------------------------------------------------
# DEBUG is off unless the environment turns it on (the devstack, the Makefile and the
# test settings do). Without DEBUG the process refuses to start on a missing or
# development secret key or an empty host list, rather than run insecurely.

DEV_SECRET_KEY = "dev-only-insecure-key-change-me"
DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env("DJANGO_SECRET_KEY", DEV_SECRET_KEY if DEBUG else "")
ALLOWED_HOSTS = [h for h in env("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver" if DEBUG else "").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in env("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o]


def _refuse_insecure_production() -> None:
    from django.core.exceptions import ImproperlyConfigured

    problems = []
    if not SECRET_KEY:
        problems.append("DJANGO_SECRET_KEY is not set")
    elif SECRET_KEY == DEV_SECRET_KEY or SECRET_KEY.startswith(("django-insecure", "dev-", "change-me")) \
            or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
        problems.append("DJANGO_SECRET_KEY is a development or weak key (use 50+ random characters)")
    if not ALLOWED_HOSTS:
        problems.append("DJANGO_ALLOWED_HOSTS is empty (comma-separated host names this site answers to)")
    if problems:
        raise ImproperlyConfigured("Refusing to start with DJANGO_DEBUG off: " + "; ".join(problems)
                                   + ". For local development set DJANGO_DEBUG=true.")


if not DEBUG:
    _refuse_insecure_production()

# Behind TLS (directly or through a proxy that sets X-Forwarded-Proto): secure cookies,
# HSTS and a redirect of plain HTTP.
SEARCHSYNC_HTTPS = env_bool("SEARCHSYNC_HTTPS", False)
if SEARCHSYNC_HTTPS:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("SEARCHSYNC_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SEARCHSYNC_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SEARCHSYNC_HSTS_PRELOAD", True)
    # /healthz and /metrics are probed over plain HTTP from inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
SESSION_COOKIE_HTTPONLY = True
# The Content-Security-Policy header (config/csp.py has the default); set to an empty value for none.
SEARCHSYNC_CONTENT_SECURITY_POLICY = env("SEARCHSYNC_CONTENT_SECURITY_POLICY")
# When set, /metrics answers only `Authorization: Bearer <token>` (config/metrics_auth.py); empty: open.
SEARCHSYNC_METRICS_TOKEN = env("SEARCHSYNC_METRICS_TOKEN", "")
X_FRAME_OPTIONS = "DENY"
# A request body larger than this is answered 413 instead of being read into memory.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DJANGO_DATA_UPLOAD_MAX_MEMORY_SIZE", 2_621_440)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "knox",
    "axes",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "audit",
    "accounts",
    "indexing",
    "backfills",
    "catalog",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on every answer: scripts from this site only (config/csp.py).
    "config.csp.ContentSecurityPolicyMiddleware",
    # 413 for an oversized body before any view or parser reads it.
    "config.middleware.RequestBodyLimitMiddleware",
    # Serves static files in every deployment without a separate web server.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # NUL or a lone surrogate in a query parameter is a 400 here, not a database error later.
    "config.api_input.RejectUnsafeQueryParams",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Anonymous users see the login page and nothing else; health and metrics
    # endpoints opt out with @login_not_required.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Gives audit.record() the request's address (and user) wherever it is called from.
    "audit.trail.AuditContextMiddleware",
    # A logged-in user's change refused with PermissionDenied (console, admin) joins the audit trail.
    "audit.refusals.RefusalAuditMiddleware",
    # Last, as axes requires: answers a locked-out login with the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

WSGI_APPLICATION = "config.wsgi.application"

DATABASE_URL = env("DATABASE_URL", "postgres://searchsync:searchsync@127.0.0.1:5432/searchsync")
# Backfills and reconciliation read from this alias so they never starve the
# primary; locally it is the same server.
REPLICA_DATABASE_URL = env("REPLICA_DATABASE_URL", DATABASE_URL)

DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True),
    "replica": dj_database_url.parse(REPLICA_DATABASE_URL, conn_max_age=60, conn_health_checks=True),
}
DATABASES["default"]["TEST"] = {"NAME": env("SEARCHSYNC_TEST_DB", "test_searchsync")}
DATABASES["replica"]["TEST"] = {"MIRROR": "default"}

# Source databases: where indexed rows live when not in searchsync's own database (any language
# writes them). SEARCHSYNC_SOURCES="shop=postgres://..." makes the aliases source_shop (and
# source_shop_replica with SEARCHSYNC_SOURCE_SHOP_REPLICA); see indexing/core/source_databases.py.
from indexing.core.source_databases import django_databases, parse as parse_sources  # noqa: E402

SEARCHSYNC_SOURCE_DATABASES = parse_sources()
DATABASES.update(django_databases(SEARCHSYNC_SOURCE_DATABASES, dj_database_url.parse))

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT", BASE_DIR / ".devstack" / "static"))
# WhiteNoise expects the folder even before the first collectstatic (DEBUG serves from the apps).
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = DEBUG

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:overview"
LOGOUT_REDIRECT_URL = "login"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["indexing.permissions.ChangesNeed"],
    "DEFAULT_PAGINATION_CLASS": "config.pagination.BoundedLimitOffsetPagination",
    # JSON with a nesting limit and no NUL/lone surrogates (config/api_input.py); form bodies are flat
    # and their fields refuse NUL themselves.
    "DEFAULT_PARSER_CLASSES": ["config.api_input.SafeJSONParser", "rest_framework.parsers.FormParser",
                               "rest_framework.parsers.MultiPartParser"],
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "searchsync API",
    "DESCRIPTION": "Keep a search index in step with PostgreSQL: catalog writes, dead letters, backfills, cutovers.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and docs are for logged-in users and API clients only.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # No badge from the public validator: the page loads nothing from other sites (Content-Security-Policy).
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "REDOC_DIST": "SIDECAR",
    # Error answers (400/401/403/404/409/503) documented once for every operation.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "config.openapi.add_error_responses"],
}

# Reports and dead letters both have a "status" with their own choices: name both enums
# (the dead letters' keeps the name it had when it was the only one).
SPECTACULAR_SETTINGS.setdefault("ENUM_NAME_OVERRIDES", {}).update({
    "StatusEnum": "indexing.models.DeadLetter.Status",
    "ReconciliationStatusEnum": "indexing.models.Reconciliation.Status",
})

# --- Services -----------------------------------------------------------------

REDIS_URL = env("REDIS_URL", "redis://127.0.0.1:6379/0")
KAFKA_BOOTSTRAP_SERVERS = env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
SEARCH_ENGINE = env("SEARCH_ENGINE", "opensearch")  # opensearch | elasticsearch
SEARCH_URL = env("SEARCH_URL", "http://127.0.0.1:9200")
SEARCH_TIMEOUT_S = env_float("SEARCH_TIMEOUT_S", 10.0)

# --- searchsync -----------------------------------------------------------------
# Every searchsync setting is declared once, with its environment variable (SEARCHSYNC_ + its
# name), type, default and meaning, in indexing/conf.py; code reads them as attributes of
# indexing.conf.searchsync_settings. Here they are parsed from the environment into one dict.
from indexing.conf import from_environment  # noqa: E402  (a plain module: no app is loaded)

SEARCHSYNC = from_environment()

# Periodic tasks, one block per app.
_INDEXING_BEAT = {
    "freshness-canaries": {"task": "indexing.tasks.send_canaries", "schedule": SEARCHSYNC["CANARY_INTERVAL_S"]},
    "freshness-rollup": {"task": "indexing.tasks.roll_up_freshness", "schedule": 60.0},
    "outbox-cleanup": {"task": "indexing.tasks.clean_outbox", "schedule": 600.0},
    # Reconciliation finds drift the pipeline could not see (lost outbox rows, documents
    # changed behind its back) and repairs it through the outbox; hourly, per enabled blueprint.
    "reconcile-all": {"task": "indexing.tasks.reconcile_all", "schedule": 3600.0},
}

_BACKFILL_BEAT = {
    "backfills-resume": {"task": "backfills.tasks.resume_stalled_backfills", "schedule": 30.0},
    "cutovers-retire": {"task": "backfills.tasks.retire_cutover_indices", "schedule": 600.0},
    # An alias swap whose process died between the intent and its record is finished here.
    "cutovers-finish-interrupted-swaps": {"task": "backfills.tasks.finish_interrupted_cutovers", "schedule": 30.0},
}

# alerts: freshness, drift, dead letters, replication slots.
_ALERTS_BEAT = {"alerts-evaluate": {"task": "indexing.tasks.evaluate_alerts", "schedule": 30.0}}

# audit: events anyone can repeat (failed logins, lockouts, refusals) are recorded bounded (audit/bounded.py):
# per key and window the first writes a row, the rest are counted, and one summary row follows the window.
SEARCHSYNC_AUDIT = {
    "REPEAT_WINDOW_S": env_int("SEARCHSYNC_AUDIT_REPEAT_WINDOW_MINUTES", 15) * 60,
    # Keys (e.g. username and address) that get a row of their own per action and window; the rest are counted.
    "REPEAT_MAX_ROWS": env_int("SEARCHSYNC_AUDIT_REPEAT_MAX_ROWS", 100),
}
_AUDIT_BEAT = {"audit-repeat-summaries": {"task": "audit.tasks.summarise_repeated_events", "schedule": 60.0}}


# --- Celery -------------------------------------------------------------------

CELERY_BROKER_URL = env("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", REDIS_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BEAT_SCHEDULE = {**_INDEXING_BEAT, **_BACKFILL_BEAT, **_ALERTS_BEAT, **_AUDIT_BEAT}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        "opensearch": {"level": "ERROR"},  # connection failures are handled and reported by the pipeline
        "elastic_transport": {"level": "WARNING"},
        "elastic_transport.node_pool": {"level": "ERROR"},  # "node has failed ... timeout": same as above
        "urllib3": {"level": "WARNING"},
    },
}

# --- Logins, API tokens and throttles ---------------------------------------------

# axes counts failed logins per (username, address) and locks that pair out for a while; the handler
# also counts them per address over all usernames and blocks that address alone (accounts/address_lockout.py).
# Admins see and lift lockouts under Admin → Axes (or `manage.py axes_reset_username`).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("SEARCHSYNC_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_float("SEARCHSYNC_LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_HANDLER = "accounts.address_lockout.AddressLimitedHandler"
# Failed logins from one address, whatever the usernames, within SEARCHSYNC_LOGIN_LOCKOUT_MINUTES that block
# the address for as long (0: no per-address limit). Above the per-user limit: a user mistyping is not blocked.
SEARCHSYNC_LOGIN_ADDRESS_FAILURE_LIMIT = env_int("SEARCHSYNC_LOGIN_ADDRESS_FAILURE_LIMIT", 20)
AXES_CLIENT_IP_CALLABLE = "audit.client_ip"
# Reverse proxies in front of the app whose X-Forwarded-For is trusted (0 = use the peer address).
SEARCHSYNC_TRUSTED_PROXIES = env_int("SEARCHSYNC_TRUSTED_PROXIES", 0)

# API tokens: knox stores a digest only; the console's Tokens page names them and sets the expiry.
KNOX_TOKEN_MODEL = "knox.AuthToken"  # named so migrations can refer to it
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=30),
    "AUTH_HEADER_PREFIX": "Token",
}

# Addresses for anonymous throttling come from the trusted proxies' X-Forwarded-For entry only.
REST_FRAMEWORK["NUM_PROXIES"] = SEARCHSYNC_TRUSTED_PROXIES
REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] = [
    "accounts.throttles.AnonRateThrottle",
    "accounts.throttles.UserRateThrottle",
]
# Requests refused for missing or bad credentials never reach the throttles: the handler counts them.
REST_FRAMEWORK["EXCEPTION_HANDLER"] = "config.api_errors.exception_handler"
# Requests per token/user and per anonymous address; "N/second|minute|hour|day".
SEARCHSYNC_API_THROTTLE = {
    "user": env("SEARCHSYNC_API_USER_RATE", "1200/minute"),
    "anon": env("SEARCHSYNC_API_ANON_RATE", "60/minute"),
}
# Throttle counters (and other short-lived values) are shared by every web worker through Redis.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env("SEARCHSYNC_CACHE_URL", REDIS_URL),
        "KEY_PREFIX": "searchsync-cache",
    },
}
