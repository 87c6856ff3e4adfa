"""Settings for the trading back office.

Everything is read from the environment with embedded defaults: with nothing
set the project runs on SQLite, runs tasks in-process and uses an in-memory
channel layer; with DATABASE_URL and REDIS_URL it uses PostgreSQL, Celery on
Redis and Channels on Redis (DESIGN.md, "Configuration and services").
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


# Debug pages are a developer's explicit choice (DJANGO_DEBUG=1); even then they mask secrets (trading/debug.py).
DEBUG = env_bool("DJANGO_DEBUG", False)
DEFAULT_EXCEPTION_REPORTER = "trading.debug.SafeExceptionReporter"
DEFAULT_EXCEPTION_REPORTER_FILTER = "trading.debug.SafeExceptionReporterFilter"
# The embedded default key is for the demo only: outside DEMO_MODE a system check and the
# servers' startup log warn about it (trading/checks.py); production settings refuse it.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "insecure-demo-key-change-me-" + "x" * 24)
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",")
# Key for broker credentials, webhook secrets and TOTP seeds at rest (Fernet, base64 32 bytes).
# Derived from SECRET_KEY when unset, which is acceptable for the demo only.
FIELD_ENCRYPTION_KEY = os.environ.get("FIELD_ENCRYPTION_KEY", "")
# Key of the audit chain's HMACs (audit/sealing.py): from the environment, never the database, so that
# write access to the database alone cannot rebuild the chain. Derived from SECRET_KEY when unset (demo).
AUDIT_HMAC_KEY = os.environ.get("AUDIT_HMAC_KEY", "")
AUDIT_SEAL_SECONDS = float(os.environ.get("AUDIT_SEAL_SECONDS", "2"))  # how often the sealer runs
AUDIT_SEAL_LAG_SECONDS = float(os.environ.get("AUDIT_SEAL_LAG_SECONDS", "2"))  # events younger wait for the next pass
AUDIT_GAP_SECONDS = float(os.environ.get("AUDIT_GAP_SECONDS", "3600"))  # a skipped id may still commit this long
# Where the daily chain digests go, outside the database (and to this address, if set).
AUDIT_DIGEST_PATH = os.environ.get("AUDIT_DIGEST_PATH", str(BASE_DIR / "var" / "audit" / "digests.jsonl"))
AUDIT_DIGEST_EMAIL = os.environ.get("AUDIT_DIGEST_EMAIL", "")

INSTALLED_APPS = [
    "daphne",
    "staff.apps.StaffAdminConfig",  # django.contrib.admin with the back office's site (OTP login)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "ninja",  # Swagger UI of /api/v1/docs from its static files, not a CDN
    "simple_history",
    "trading",
    "audit",
    "brokers",
    "orders",
    "conditions",
    "risk",
    "monitoring",
    "compliance",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "staff",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files (admin CSS/JS) in the running system, DEBUG or not
    "trading.middleware.ApiEdgeMiddleware",  # /api/: NUL bytes refused, every error in JSON
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "staff.middleware.StaffLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "axes.middleware.AxesMiddleware",
    "trading.middleware.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = os.environ.get("DJANGO_ROOT_URLCONF", "trading.urls")
ASGI_APPLICATION = "trading.asgi.application"
WSGI_APPLICATION = "trading.wsgi.application"

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

DATABASE_URL = os.environ.get("DATABASE_URL", "")
# PostgreSQL connections are bounded. Under ASGI (daphne, WEB_SERVER=daphne) every request runs on a
# thread of its own, so persistent per-thread connections (CONN_MAX_AGE) would leave one process
# holding a connection per thread it ever used: there connections come from a pool of at most
# DB_POOL_MAX_SIZE per process (psycopg_pool), given back after each request. trading/asgi.py turns
# it on (DB_POOL=1). Elsewhere one thread does a process's database work (gunicorn's sync workers,
# Celery worker children, the relay, the market), so one persistent connection per process is
# bounded already and cheaper. DB_POOL=1 / DB_POOL=0 force either way.
DB_POOL = env_bool("DB_POOL", False)
DB_POOL_MIN_SIZE = int(os.environ.get("DB_POOL_MIN_SIZE", "1"))
DB_POOL_MAX_SIZE = int(os.environ.get("DB_POOL_MAX_SIZE", "10"))
DB_POOL_TIMEOUT = float(os.environ.get("DB_POOL_TIMEOUT", "10"))  # seconds a request waits for a connection
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
    if DB_POOL and DATABASES["default"]["ENGINE"].endswith("postgresql"):
        DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps the connections
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": min(DB_POOL_MIN_SIZE, DB_POOL_MAX_SIZE),
            "max_size": DB_POOL_MAX_SIZE,
            "timeout": DB_POOL_TIMEOUT,
        }
else:
    DATABASES = {
        "default": {
            # Django's SQLite, with write transactions queued on a file lock (trading/sqlite_backend).
            "ENGINE": "trading.sqlite_backend",
            "NAME": os.environ.get("SQLITE_PATH", str(BASE_DIR / "var" / "db.sqlite3")),
            # Several processes (web, scheduler, market) share the file: wait
            # for the lock instead of failing, and take it up front. In WAL mode,
            # synchronous=NORMAL syncs at checkpoints instead of at every commit
            # (an order makes four): a crash of the process loses nothing, a
            # power cut may lose the last commits; good enough for the demo.
            "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE",
                        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"},
            # Keep the connection: opening one (file, WAL and pragmas) per request cost the web
            # server about half of an order's time. A file needs no server-side bound.
            "CONN_MAX_AGE": None,
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = os.environ.get("DJANGO_LANGUAGE_CODE", "zh-hans")
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT") or BASE_DIR / "var" / "static")
# WhiteNoise serves what `collectstatic` put in STATIC_ROOT (`make run` runs it) and, as a fallback for a
# system started without it, the apps' static folders directly.
WHITENOISE_USE_FINDERS = True

REDIS_URL = os.environ.get("REDIS_URL", "")

# Staff login (staff/): a one-time password (TOTP) on top of the password, and a
# lockout after repeated failures. DEMO_MODE (set by `make run`) lets the demo
# admin in without a one-time password; production settings refuse it.
DEMO_MODE = env_bool("DEMO_MODE", False)
STAFF_REQUIRE_2FA = env_bool("STAFF_REQUIRE_2FA", True)
STAFF_2FA_EXEMPT_USERNAMES = ("admin",)  # only while DEMO_MODE is on
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = float(os.environ.get("AXES_COOLOFF_HOURS", "0.25"))  # hours
# Lock by username: guessing one operator's password from many addresses still locks it. Not by
# address: operators share the office's NAT address, and a few typos would lock out the whole desk.
AXES_LOCKOUT_PARAMETERS = ["username"]
SILENCED_SYSTEM_CHECKS = ["axes.W006"]  # it asks for locking by address; see above
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "staff/lockout.html"
AXES_VERBOSE = False
OTP_TOTP_ISSUER = os.environ.get("OTP_TOTP_ISSUER", "A股交易后台")
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_COOKIE_AGE", str(12 * 3600)))  # one trading day

# API clients: failed authentications per client address (REMOTE_ADDR) before it gets 429 for the
# rest of the window (trading/auth.py; 0 turns the limit off). Per-key rates are set on each key.
API_AUTH_FAILURE_LIMIT = int(os.environ.get("API_AUTH_FAILURE_LIMIT", "30"))
API_AUTH_FAILURE_WINDOW_SECONDS = float(os.environ.get("API_AUTH_FAILURE_WINDOW_SECONDS", "60"))

# Metrics at /metrics (monitoring/metrics.py, docs/metrics.md), in Prometheus's text format and summed
# over every process of the system (web workers, Celery children, relay, scheduler): each process
# writes its counters to files in PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode),
# which `manage.py run_system` empties when it starts. Every process of one system must see the same
# directory, and only that system's.
PROMETHEUS_MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or str(BASE_DIR / "var" / "prometheus")
# Who may scrape: staff signed in (second factor passed), or a client sending
# "Authorization: Bearer <METRICS_TOKEN>". METRICS_PUBLIC=1 lets anyone (a closed network, development);
# production settings ignore it.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
METRICS_PUBLIC = env_bool("METRICS_PUBLIC", False)
# /readyz (monitoring/readiness.py): the parts that must be up for a load balancer to send traffic here;
# every part is reported either way. Each check gives up after READYZ_TIMEOUT_SECONDS.
READYZ_CHECKS = [c.strip() for c in os.environ.get("READYZ_CHECKS", "database,redis,workers").split(",") if c.strip()]
READYZ_TIMEOUT_SECONDS = float(os.environ.get("READYZ_TIMEOUT_SECONDS", "1"))

# Celery: real workers on Redis when REDIS_URL is set, in-process otherwise.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_QUEUE", "trading")
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "120"))}
# Reconciliation (orders/services/discrepancies.py): every account compared with its broker at
# start-up (worker_ready, or the embedded scheduler's first pass) and then this often.
ORDERS_RECONCILE_INTERVAL_SECONDS = float(os.environ.get("ORDERS_RECONCILE_INTERVAL_SECONDS", "300"))

# Broker connections (brokers/connection.py): the circuit opens on a lost session or after this many
# timeouts in a row, and is probed again after a back-off doubling from BASE up to MAX (with jitter);
# the heartbeat asks every account's broker whether it is there this often.
BROKER_FAILURE_THRESHOLD = int(os.environ.get("BROKER_FAILURE_THRESHOLD", "3"))
BROKER_BACKOFF_BASE_SECONDS = float(os.environ.get("BROKER_BACKOFF_BASE_SECONDS", "1"))
BROKER_BACKOFF_MAX_SECONDS = float(os.environ.get("BROKER_BACKOFF_MAX_SECONDS", "60"))
BROKER_HEARTBEAT_SECONDS = float(os.environ.get("BROKER_HEARTBEAT_SECONDS", "10"))

# Conditional orders (conditions/): the clock (time triggers, expiry) and the sweep (what the push
# paths missed) run this often; a process trusts its per-symbol thresholds for this long.
CONDITIONS_CLOCK_SECONDS = float(os.environ.get("CONDITIONS_CLOCK_SECONDS", "1"))
CONDITIONS_SWEEP_SECONDS = float(os.environ.get("CONDITIONS_SWEEP_SECONDS", "5"))
CONDITIONS_BAND_TTL_SECONDS = float(os.environ.get("CONDITIONS_BAND_TTL_SECONDS", "1"))

CELERY_BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "orders-outbox-sweep": {"task": "orders.tasks.outbox_sweep", "schedule": 5.0},
    "orders-poll-open": {"task": "orders.tasks.poll_open_orders", "schedule": 2.0},
    "orders-expire-day-orders": {"task": "orders.tasks.expire_day_orders", "schedule": 60.0},
    "risk-expire-reviews": {"task": "risk.tasks.expire_reviews", "schedule": 30.0},
    "orders-reconcile": {"task": "orders.tasks.reconcile_accounts", "schedule": ORDERS_RECONCILE_INTERVAL_SECONDS},
    "conditions-clock": {"task": "conditions.tasks.clock", "schedule": CONDITIONS_CLOCK_SECONDS},
    "conditions-sweep": {"task": "conditions.tasks.sweep", "schedule": CONDITIONS_SWEEP_SECONDS},
    "brokers-heartbeat": {"task": "brokers.tasks.heartbeat", "schedule": BROKER_HEARTBEAT_SECONDS},
    "audit-seal": {"task": "audit.tasks.seal", "schedule": AUDIT_SEAL_SECONDS},
    "audit-digest": {"task": "audit.tasks.digest_daily", "schedule": 600.0},
    # Alerts (monitoring/): owed deliveries due again, escalations, heartbeats, periodic monitors.
    "monitoring-deliveries": {"task": "monitoring.tasks.deliveries_sweep", "schedule": 1.0},
    "monitoring-escalate": {"task": "monitoring.tasks.escalate", "schedule": 5.0},
    "monitoring-heartbeat": {"task": "monitoring.tasks.heartbeat", "schedule": 10.0},
    "monitoring-check": {"task": "monitoring.tasks.check", "schedule": 15.0},
}
# A periodic job whose message waited in a queue that fell behind longer than its own interval is
# dropped (Celery's ``expires``): the next one comes anyway, and a backlog is not lengthened by
# stale copies of sweeps and polls (100 delivery sweeps waited in bench/broker_faults.py's queue).
# The heartbeats keep theirs: a heartbeat that waits in the queue is news about the queue.
for _name, _entry in CELERY_BEAT_SCHEDULE.items():
    if not _name.endswith("-heartbeat"):
        _entry["options"] = {"expires": max(float(_entry["schedule"]), 1.0)}

# Alerts (monitoring/): a channel call's timeout, the retry back-off (doubling from BASE up to MAX,
# jittered; a channel's max_attempts in admin), and per-monitor overrides of monitoring/monitors.py
# DEFAULTS, e.g. {"balance.cash_change": {"threshold": "500000"}} (admin's monitor settings win).
MONITORING_CHANNEL_TIMEOUT_SECONDS = float(os.environ.get("MONITORING_CHANNEL_TIMEOUT_SECONDS", "5"))
MONITORING_RETRY_BASE_SECONDS = float(os.environ.get("MONITORING_RETRY_BASE_SECONDS", "2"))
MONITORING_RETRY_MAX_SECONDS = float(os.environ.get("MONITORING_RETRY_MAX_SECONDS", "300"))
MONITORING_MONITORS: dict[str, dict[str, object]] = {}
# Embedded mode (no Redis): deliveries go out on a background thread of the publishing process
# instead of inside the request or broker call that published the event (monitoring/services.py).
MONITORING_FLUSH_IN_THREAD = env_bool("MONITORING_FLUSH_IN_THREAD", not REDIS_URL)

if REDIS_URL:
    # A consumer waits for its messages with BZPOPMIN of 5 s; redis-py 8's default socket timeout is
    # 5 s too, which ends every idle websocket with "Timeout reading" (django/channels_redis#422):
    # the socket must outwait the blocking pop.
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                    "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 15}]}}
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# How owed broker calls reach the queue: "relay" (an outbox relay process reads
# the order rows and enqueues; keeps Redis off the request path) or "inline"
# (enqueued right after commit; with in-process tasks the call runs there).
ORDERS_DISPATCH = os.environ.get("ORDERS_DISPATCH", "relay" if REDIS_URL else "inline")
ORDERS_RELAY_INTERVAL_SECONDS = float(os.environ.get("ORDERS_RELAY_INTERVAL_SECONDS", "0.05"))

# Order path tuning.
ORDERS_OUTBOX_GRACE_SECONDS = int(os.environ.get("ORDERS_OUTBOX_GRACE_SECONDS", "10"))
# At most one message per order and call waits in the queue (orders/services/outbox.py); its marker
# lasts this long, which bounds how long a lost message delays the sweep's next copy.
ORDERS_QUEUED_TTL_SECONDS = int(os.environ.get("ORDERS_QUEUED_TTL_SECONDS", "300"))
ORDERS_SUBMITTING_STALE_SECONDS = int(os.environ.get("ORDERS_SUBMITTING_STALE_SECONDS", "30"))
ORDERS_MAX_BATCH = 500
# An order held for review expires if no operator decides within this time.
RISK_REVIEW_TIMEOUT_SECONDS = int(os.environ.get("RISK_REVIEW_TIMEOUT_SECONDS", "1800"))
BROKER_CALL_TIMEOUT_SECONDS = float(os.environ.get("BROKER_CALL_TIMEOUT_SECONDS", "10"))

# The web server run_system starts: gunicorn with WEB_WORKERS synchronous worker processes (WSGI; one
# database connection each), or "daphne" (ASGI: Django runs each request's sync code on a thread of
# its own, which cost about 6 ms an order and a connection per request on SQLite).
WEB_SERVER = os.environ.get("WEB_SERVER", "gunicorn")
WEB_WORKERS = int(os.environ.get("WEB_WORKERS", "2"))
# gunicorn speaks no websocket: with it and Redis, run_system starts daphne (ASGI) for the live pages'
# /ws/ on the next port and sets this for every process, so that the pages connect there (0: the page's own
# server answers /ws/, as daphne does, or a reverse proxy routes /ws/ to an ASGI server).
LIVE_WEBSOCKET_PORT = int(os.environ.get("LIVE_WEBSOCKET_PORT") or 0)
# How often an open live websocket checks that its key or staff session still allows it (closed if not).
LIVE_RECHECK_SECONDS = float(os.environ.get("LIVE_RECHECK_SECONDS", "10"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # No log line carries an API key, an Authorization value or a URL password (trading/log_filters.py).
    "filters": {"redact_secrets": {"()": "trading.log_filters.RedactSecrets"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_secrets"]}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # "django": without Django's own handlers, so its records reach the console through the redaction filter.
    "loggers": {"django": {"level": "INFO"}, "django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}
