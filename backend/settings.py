"""Settings of the export service: the only module that reads the environment.

Every setting of CONTRACT.md is named here once, with its default, and can be overridden by an
environment variable of the same name. The service starts with none of them set.
"""

import os
import secrets
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str) -> str:
    raw = os.environ.get(name, "").strip()
    return raw or default


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip().replace("_", "").replace(",", "")
    return int(raw) if raw else default


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    return raw in {"1", "true", "yes", "on"} if raw else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


# Where the service keeps what it owns on disk: the SQLite file, the secret key, the exports.
DATA_DIR = Path(env_str("DATA_DIR", str(BASE_DIR / "data"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """SECRET_KEY, or a random key generated on first start and kept in the data folder."""
    if key := env_str("SECRET_KEY", ""):
        return key
    path = DATA_DIR / "secret_key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:  # O_EXCL: two processes starting at once agree on one key
        handle.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1")
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS", "")
CORS_EXPOSE_HEADERS = ["Content-Disposition", "Content-Length", "Location", "Retry-After"]

# Export service settings (CONTRACT.md, Configuration).
MAX_EXPORT_THREADS = env_int("MAX_EXPORT_THREADS", 5)
MAX_WORKER_THREADS = env_int("MAX_WORKER_THREADS", 10)
BATCH_SIZE = env_int("BATCH_SIZE", 500)
FILE_RETENTION_DAYS = env_int("FILE_RETENTION_DAYS", 7)
EXPORT_QUEUE_LIMIT = env_int("EXPORT_QUEUE_LIMIT", 20)
EXPORT_MAX_ACTIVE_PER_USER = env_int("EXPORT_MAX_ACTIVE_PER_USER", 3)
EXPORT_START_RATE = env_str("EXPORT_START_RATE", "60/min")
EXPORT_MAX_ROWS = env_int("EXPORT_MAX_ROWS", 5_000_000)
EXPORT_PDF_MAX_ROWS = env_int("EXPORT_PDF_MAX_ROWS", 50_000)
EXPORT_DIR = Path(env_str("EXPORT_DIR", str(DATA_DIR / "exports"))).resolve()
# Scratch space of the writers (XLSX spools its sheets here), kept out of EXPORT_DIR.
EXPORT_TMP_DIR = Path(env_str("EXPORT_TMP_DIR", str(DATA_DIR / "tmp"))).resolve()
EXPORT_BACKEND = env_str("EXPORT_BACKEND", "threads")
EXPORT_CSV_BOM = env_bool("EXPORT_CSV_BOM", True)
# Liveness and limits of running exports (see docs/export_threading.md, "Crashes and restarts").
EXPORT_HEARTBEAT_S = env_float("EXPORT_HEARTBEAT_S", 10)
EXPORT_GRACEFUL_S = env_float("EXPORT_GRACEFUL_S", 25)
EXPORT_TIME_LIMIT_S = env_float("EXPORT_TIME_LIMIT_S", 3600)
EXPORT_MIN_FREE_BYTES = env_int("EXPORT_MIN_FREE_BYTES", 200 * 1024 * 1024)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework.authtoken",
    "exports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "exports.middleware.export_supervisor_middleware",
]

ROOT_URLCONF = "backend.urls"
WSGI_APPLICATION = "backend.wsgi.application"
# The start path is also accepted without its trailing slash (routed explicitly, no redirect).
APPEND_SLASH = False

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


def _databases() -> dict:
    default = dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'db.sqlite3'}"), conn_max_age=0
    )
    if default["ENGINE"] == "django.db.backends.sqlite3":
        # WAL lets readers (status polls, export snapshots) run beside one writer; IMMEDIATE
        # takes the write lock at BEGIN, so a transaction never fails to upgrade mid-way, and
        # the busy timeout makes a second writer wait instead of raising "database is locked".
        default["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
        # Tests run on a real file too, so that export threads see the same WAL snapshots.
        default["TEST"] = {"NAME": str(DATA_DIR / "test_db.sqlite3")}
    return {"default": default}


DATABASES = _databases()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "Africa/Algiers")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"

REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header turns "not authenticated" into a 401.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "exports.api_errors.export_exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "exports": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    },
}
