"""Settings for the trading back office.

Everything is read from the environment with embedded defaults: with nothing
set the project runs on SQLite, runs tasks in-process and uses an in-memory
channel layer; with DATABASE_URL and REDIS_URL it uses PostgreSQL, Celery on
Redis and Channels on Redis (DESIGN.md, "Configuration and services").
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = env_bool("DJANGO_DEBUG", True)
# The embedded default key is for the demo only; production settings refuse it.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "insecure-demo-key-change-me-" + "x" * 24)
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",")
# Key for broker credentials and webhook secrets at rest (Fernet, base64 32 bytes).
# Derived from SECRET_KEY when unset, which is acceptable for the demo only.
FIELD_ENCRYPTION_KEY = os.environ.get("FIELD_ENCRYPTION_KEY", "")

INSTALLED_APPS = [
    "daphne",
    "staff.apps.StaffAdminConfig",  # django.contrib.admin with the back office's site (OTP login)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "simple_history",
    "trading",
    "audit",
    "brokers",
    "orders",
    "risk",
    "monitoring",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "staff",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
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
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("SQLITE_PATH", str(BASE_DIR / "var" / "db.sqlite3")),
            # Several processes (web, scheduler, market) share the file: wait
            # for the lock instead of failing, and take it up front. In WAL mode,
            # synchronous=NORMAL syncs at checkpoints instead of at every commit
            # (an order makes four): a crash of the process loses nothing, a
            # power cut may lose the last commits; good enough for the demo.
            "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE",
                        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"},
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
STATIC_ROOT = BASE_DIR / "var" / "static"

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
CELERY_BEAT_SCHEDULE = {
    "orders-outbox-sweep": {"task": "orders.tasks.outbox_sweep", "schedule": 5.0},
    "orders-poll-open": {"task": "orders.tasks.poll_open_orders", "schedule": 2.0},
    "orders-expire-day-orders": {"task": "orders.tasks.expire_day_orders", "schedule": 60.0},
    "risk-expire-reviews": {"task": "risk.tasks.expire_reviews", "schedule": 30.0},
}

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}
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
ORDERS_SUBMITTING_STALE_SECONDS = int(os.environ.get("ORDERS_SUBMITTING_STALE_SECONDS", "30"))
ORDERS_MAX_BATCH = 500
# An order held for review expires if no operator decides within this time.
RISK_REVIEW_TIMEOUT_SECONDS = int(os.environ.get("RISK_REVIEW_TIMEOUT_SECONDS", "1800"))
BROKER_CALL_TIMEOUT_SECONDS = float(os.environ.get("BROKER_CALL_TIMEOUT_SECONDS", "10"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}
