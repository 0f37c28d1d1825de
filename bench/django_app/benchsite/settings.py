"""The simplejwt subject: Django + DRF + djangorestframework-simplejwt with
the settings ferricorn-auth runs with in the benchmark (same signing key,
rotation and blacklist after rotation on).

Lean on purpose, so the comparison flatters Django rather than us: no
sessions, messages or admin, only JSON rendering, JWT authentication only.
"""
import os
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("BENCH_DJANGO_SECRET_KEY", "bench-only-not-a-secret")
SIGNING_KEY = os.environ.get(
    "BENCH_SIGNING_KEY", "ferricorn-bench-signing-key-0123456789abcdef"
)
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]

ROOT_URLCONF = "benchsite.urls"
WSGI_APPLICATION = "benchsite.wsgi.application"

if os.environ.get("BENCH_DJANGO_PG"):
    # A PostgreSQL URL (postgres://USER:PASSWORD@HOST:PORT/NAME): the
    # database ferricorn-auth shares in --schema django mode, and the
    # benchmark's simplejwt-on-PostgreSQL subject.
    from urllib.parse import unquote, urlsplit

    _pg = urlsplit(os.environ["BENCH_DJANGO_PG"])
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _pg.path.lstrip("/"),
            "USER": unquote(_pg.username or ""),
            "PASSWORD": unquote(_pg.password or ""),
            "HOST": _pg.hostname or "",
            "PORT": str(_pg.port or 5432),
            # Persistent connections, as a tuned deployment has them.
            "CONN_MAX_AGE": 600,
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("BENCH_DJANGO_DB", str(BASE_DIR / "db.sqlite3")),
            # Two worker processes write (outstanding and blacklisted tokens):
            # WAL, IMMEDIATE transactions and a long busy timeout keep
            # "database is locked" away, as a careful SQLite deployment would.
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }

# Django's default hasher (PBKDF2-SHA256, Django's default iterations).
AUTH_PASSWORD_VALIDATORS = []
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
USE_I18N = False

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
}

SIMPLE_JWT = {
    "ALGORITHM": "HS256",
    "SIGNING_KEY": SIGNING_KEY,
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=5),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=1),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": os.environ.get("BENCH_UPDATE_LAST_LOGIN") == "1",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
