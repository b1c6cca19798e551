"""Django settings for syncproject (batchsync)."""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from batchsync.conf import environ_overrides
from syncproject.database import database_config
from syncproject.secret_key import secret_key

BASE_DIR = Path(__file__).resolve().parent.parent


def _flag(name: str) -> bool:
    """An on/off environment variable: on only when set to 1."""
    return os.environ.get(name, "").strip() == "1"


def _names(name: str, default: str) -> list[str]:
    """A comma-separated environment variable as a list."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# Safe unless told otherwise (docs/deploy.md): no debug pages, no shared development key,
# only this machine's names. The quick start needs none of the variables.
SECRET_KEY = secret_key(BASE_DIR)
DEBUG = _flag("DJANGO_DEBUG")
ALLOWED_HOSTS = _names("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = _names("DJANGO_CSRF_TRUSTED_ORIGINS", "")

# DJANGO_HTTPS=1: the site is reached over HTTPS only (TLS at a proxy in front of the web server,
# which sends X-Forwarded-Proto; uvicorn and gunicorn trust it from FORWARDED_ALLOW_IPS): plain HTTP is
# redirected, cookies are sent over HTTPS only, and browsers are told to keep to HTTPS (HSTS).
_https = _flag("DJANGO_HTTPS")
SECURE_SSL_REDIRECT = SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = _https
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", str(365 * 24 * 3600) if _https else "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = _flag("DJANGO_HSTS_INCLUDE_SUBDOMAINS")
SECURE_HSTS_PRELOAD = _flag("DJANGO_HSTS_PRELOAD")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "batchsync",
]

MIDDLEWARE = [
    # First, so it sees every other layer's answer: /api/ answers stay in the JSON envelope.
    "batchsync.api.middleware.ApiEnvelopeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "syncproject.urls"

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

WSGI_APPLICATION = "syncproject.wsgi.application"

# No DATABASE_URL: an embedded PostgreSQL (pgserver) in BATCHSYNC_PGDATA (default ./.pgdata).
DATABASES = {"default": database_config(BASE_DIR)}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Chinese is the default language, as in the seed prototype; English via Accept-Language.
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "batchsync" / "locale"]
TIME_ZONE = os.environ.get("DJANGO_TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
# ISO dates and times in the admin's lists and pages too (the locales' own read "Nov. 29, 2026").
FORMAT_MODULE_PATH = ["syncproject.formats"]
USE_TZ = True

# Static files are served by whitenoise, from STATIC_ROOT once `collectstatic` has filled it
# (with gzip copies made there). Before that (the quick start, the tests) they are looked
# up in the apps on each request, so the admin has its styles with no setup step.
STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT") or BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = WHITENOISE_AUTOREFRESH = DEBUG or not STATIC_ROOT.is_dir()

LOGIN_URL = "/admin/login/"

# REST API (batchsync.api). Token first, so an anonymous request gets 401 with a
# WWW-Authenticate header; the session serves the browser (DRF enforces CSRF on its writes).
# Nothing is open by default: each view also checks the SyncJob model permissions.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "batchsync.api.permissions.SyncJobPermission",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["batchsync.api.parsers.StrictJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "batchsync.api.exceptions.api_exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "batchsync_start": os.environ.get("BATCHSYNC_API_START_RATE", "30/min"),
        "batchsync_control": os.environ.get("BATCHSYNC_API_CONTROL_RATE", "120/min"),
    },
    "URL_FORMAT_OVERRIDE": None,
    "UNICODE_JSON": True,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "batchsync API",
    "DESCRIPTION": (
        "Start, follow and control batch syncs of daily bars. Responses use the envelope "
        '{"status": "success", "data": ...} or {"status": "error", "message": ...}. '
        "Authenticate with `Authorization: Token <key>` or a session."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "batchsync.api.schema.closed_request_bodies",
        "batchsync.api.schema.event_stream_operations",
    ],
    "ENUM_NAME_OVERRIDES": {
        "SyncJobStatusEnum": "batchsync.models.SyncJobStatus",
        "SyncDayStatusEnum": "batchsync.models.SyncDayStatus",
        "ScheduleOutcomeEnum": "batchsync.schedule_models.ScheduleOutcome",
        "EnvelopeSuccessEnum": [("success", "success")],
        "EnvelopeErrorEnum": [("error", "error")],
    },
}

# django-q2 cluster. The job rows in PostgreSQL are the source of truth; the broker only
# delivers work, so a redelivered task is harmless (the runner's leases and fencing decide).
# A task runs one slice of a job (BATCHSYNC["TASK_SLICE_SECONDS"]) and then re-enqueues
# itself, so `timeout` only has to cover one slice. `retry` must be larger than `timeout`:
# otherwise the broker redelivers a task that is still running and two copies of it work.
# With Redis a task a dying worker had taken is lost (BLPOP, no ack); with the ORM broker it
# comes back after `retry`. Either way the reaper (a schedule, see migration 0003) re-enqueues
# the stalled job. BATCHSYNC_Q_NAME names the cluster (its queue key and signing salt), so
# several sites, or test runs, can share one Redis without taking each other's tasks.
REDIS_URL = os.environ.get("REDIS_URL", "").strip()
Q_CLUSTER: dict[str, object] = {
    "name": os.environ.get("BATCHSYNC_Q_NAME", "batchsync"),
    "workers": int(os.environ.get("BATCHSYNC_Q_WORKERS", "4")),
    "timeout": 1800,
    "retry": 2100,
    "max_attempts": 1,
    "ack_failures": True,
    "catch_up": False,
    "save_limit": 1000,
    "label": "Django Q2",
    "poll": 0.5,
    "orm": "default",
}
if REDIS_URL:
    Q_CLUSTER.pop("orm")
    Q_CLUSTER["redis"] = REDIS_URL

# Outgoing mail (alerts by e-mail, docs/alerts.md): Django's mail settings, from the environment.
EMAIL_HOST = os.environ.get("DJANGO_EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("DJANGO_EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("DJANGO_EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("DJANGO_EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _flag("DJANGO_EMAIL_USE_TLS")
EMAIL_USE_SSL = _flag("DJANGO_EMAIL_USE_SSL")
DEFAULT_FROM_EMAIL = os.environ.get("DJANGO_DEFAULT_FROM_EMAIL", "batchsync@localhost")

# Every BATCHSYNC setting, its default and its environment variable are defined once, in
# batchsync/conf.py; here only the variables that are set (docs/configuration.md).
BATCHSYNC = environ_overrides()

# text: `time LEVEL logger key=value ...` lines; json: one JSON object per line (docs/logging.md).
LOG_FORMAT = os.environ.get("BATCHSYNC_LOG_FORMAT", "text").strip().lower() or "text"
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"BATCHSYNC_LOG_FORMAT must be text or json, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "batchsync.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT},
    },
    "loggers": {
        "batchsync": {"handlers": ["console"], "level": os.environ.get("BATCHSYNC_LOG_LEVEL", "INFO")},
    },
}
