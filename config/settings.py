"""Settings for the membership CRM, read from the environment (12-factor).

Every value comes from an environment variable (or a `.env` file beside manage.py); the defaults are the safe
production ones, except the embedded SQLite database and in-process Celery, which let `make run` work on a bare
machine. See `.env.example` for the whole list.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "insecure-development-key-only-for-debug"  # noqa: S105 - DEBUG only

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "config.apps.CrmAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "import_export",
    "django_celery_beat",
    "axes",
    # The product, lowest layer first: members <- loyalty <- campaigns <- analytics.
    "members",
    "loyalty",
    "campaigns",
    "analytics",
]

MIDDLEWARE = [
    "core.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "core.middleware.AdminLanguageMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "core.middleware.RefuseNulMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lock-out page.
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
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

SILENCED_SYSTEM_CHECKS = []
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Server-side binding plus a prepare threshold let psycopg prepare the hot statements (earning, look-ups) once
    # per connection instead of having PostgreSQL parse and plan them on every call: planning the earning statement
    # costs more than running it. Django leaves prepared statements off unless `prepare_threshold` is given. Behind
    # PgBouncer in transaction mode (before 1.21, or without max_prepared_statements) set
    # DATABASE_PREPARE_THRESHOLD= (empty) to turn them off.
    options = DATABASES["default"].setdefault("OPTIONS", {})
    options.setdefault("server_side_binding", env.bool("DATABASE_SERVER_SIDE_BINDING", default=True))
    if options["server_side_binding"]:
        threshold = env.str("DATABASE_PREPARE_THRESHOLD", default="5")
        options.setdefault("prepare_threshold", int(threshold) if threshold.strip() else None)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Django's SQLite backend, with raw SQL's datetime parameters stored and compared as the ORM writes them (UTC
    # text): see core/backends/sqlite3/base.py.
    DATABASES["default"]["ENGINE"] = "core.backends.sqlite3"
    # The covering index of orders (INCLUDE columns) is a PostgreSQL speed-up; SQLite keeps the plain index.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
    # WAL and a busy timeout let the dev server and the in-process Celery tasks write side by side.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

# django-axes first: it refuses a login attempt while the user name or the address is locked out.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# Staff sign-in: after AXES_FAILURE_LIMIT failed attempts a user name, and separately an IP address, is locked out
# for AXES_COOLOFF_HOURS (admins see and lift lock-outs under "Axes" in the admin). Sessions end after
# SESSION_COOKIE_AGE seconds (8 hours by default) or when the browser closes.
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_LOCKOUT_PARAMETERS = [["username"], ["ip_address"]]
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=1.0)
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "admin/locked_out.html"
# Behind reverse proxies, set TRUSTED_PROXY_COUNT to their number: the client's address is then read from
# X-Forwarded-For (else every sign-in would come from the proxy's address and share one lock-out).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
AXES_CLIENT_IP_CALLABLE = "config.security.client_ip"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 60 * 60)
SESSION_EXPIRE_AT_BROWSER_CLOSE = env.bool("SESSION_EXPIRE_AT_BROWSER_CLOSE", default=True)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Internationalisation: operators read Chinese and English; the program's time zone defines "a day".
LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="zh-hans")
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="Asia/Shanghai")
USE_I18N = True
USE_TZ = True

# The region used to read phone numbers written without a country code.
DEFAULT_PHONE_REGION = env.str("DEFAULT_PHONE_REGION", default="CN")
# Members closed more than this many days ago are anonymised by the daily job (PIPL/GDPR storage limitation);
# unset: never automatically.
MEMBER_RETENTION_DAYS = env.int("MEMBER_RETENTION_DAYS", default=None)

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
MEDIA_URL = "media/"

# Security: safe by default, relaxed only by DEBUG or explicit settings.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if not SECURE_HSTS_PRELOAD:
    SILENCED_SYSTEM_CHECKS.append("security.W021")

# The partner API.
API_THROTTLE_RATE = env.str("API_THROTTLE_RATE", default="50/s")
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["members.api.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["core.api.framework.HasScope"],
    "DEFAULT_THROTTLE_CLASSES": ["core.api.framework.ApiKeyRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "core.api.framework.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.api.framework.JSONParser"],
    "EXCEPTION_HANDLER": "core.api.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "COERCE_DECIMAL_TO_STRING": True,
    "DATETIME_FORMAT": "iso-8601",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Membership CRM partner API",
    "DESCRIPTION": "The partner contract: members, orders, events, points, rewards and coupons. "
    "Authenticate with `Authorization: Api-Key <key>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.schema.add_error_responses",
    ],
}

# Celery: with no broker, tasks run eagerly in-process (the embedded default); with one, on real workers.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# A web request that queues a task gives up on a broker that does not answer within seconds (and says so), instead
# of hanging: a few seconds to connect, two quick retries to publish.
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": env.int("CELERY_BROKER_CONNECT_TIMEOUT", default=3)}
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}

# Campaign messages: one delivery backend per message channel (campaigns/delivery/). Unset, SMS, WeChat and app
# messages are written as JSON lines to CAMPAIGN_MESSAGE_FILE (development and tests) and e-mail goes through
# EMAIL_URL (the console with DEBUG). With ALIYUN_SMS_ACCESS_KEY_ID set, SMS goes through Alibaba Cloud SMS.
CAMPAIGN_MESSAGE_FILE = env.str("CAMPAIGN_MESSAGE_FILE", default=str(Path(MEDIA_ROOT) / "messages.jsonl"))
CAMPAIGN_BACKENDS = {}
if env.str("ALIYUN_SMS_ACCESS_KEY_ID", default=""):
    CAMPAIGN_BACKENDS["sms"] = {
        "BACKEND": "campaigns.delivery.aliyun_sms.AliyunSmsBackend",
        "OPTIONS": {
            "access_key_id": env.str("ALIYUN_SMS_ACCESS_KEY_ID"),
            "access_key_secret": env.str("ALIYUN_SMS_ACCESS_KEY_SECRET"),
            "sign_name": env.str("ALIYUN_SMS_SIGN_NAME"),
            "template_code": env.str("ALIYUN_SMS_TEMPLATE_CODE"),
            "template_param": env.str("ALIYUN_SMS_TEMPLATE_PARAM", default="content"),
            "endpoint": env.str("ALIYUN_SMS_ENDPOINT", default="https://dysmsapi.aliyuncs.com/"),
        },
    }
vars().update(env.email_url("EMAIL_URL", default="consolemail://" if DEBUG else "smtp://localhost:25"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="crm@localhost")
# Webhooks to partners: the first retry after this many seconds, doubling for 24 hours; private and loopback URLs
# are refused unless allowed (a partner on the same network as the CRM).
WEBHOOK_RETRY_BASE_SECONDS = env.int("WEBHOOK_RETRY_BASE_SECONDS", default=60)
WEBHOOK_ALLOW_PRIVATE = env.bool("WEBHOOK_ALLOW_PRIVATE", default=False)
# The address members reach the CRM at (e-mail unsubscribe links), and the secret part of the URL that the SMS
# provider pushes replies to (/m/replies/sms/<token>/; unset: replies are not taken).
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")
CAMPAIGN_REPLY_TOKEN = env.str("CAMPAIGN_REPLY_TOKEN", default="")
CAMPAIGN_EMAIL_SUBJECT = env.str("CAMPAIGN_EMAIL_SUBJECT", default="News from your membership")

# Imports.
IMPORT_EXPORT_USE_TRANSACTIONS = True
# Exports and imports in the admin each need their own permission (members.export_member, members.import_order...),
# not just the right to view or add; formulas are escaped by members.spreadsheets, not by the library.
IMPORT_EXPORT_EXPORT_PERMISSION_CODE = "export"
IMPORT_EXPORT_IMPORT_PERMISSION_CODE = "import"
IMPORT_EXPORT_SKIP_ADMIN_LOG = True
# A value a spreadsheet cannot hold (a control character in a name stored before names were cleaned) becomes U+FFFD
# in an XLSX export instead of failing the whole file.
IMPORT_EXPORT_ESCAPE_ILLEGAL_CHARS_ON_EXPORT = True
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=20 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 10000

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "core.middleware.RequestIdLogFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
    },
}
from .schedules import CELERY_BEAT_SCHEDULE  # noqa: E402, F401
