from urllib.parse import unquote

from shop.settings.env import VAR_DIR, env

EMBEDDED_PGDATA = VAR_DIR / "pgdata"

if env.str("DATABASE_URL", default=""):
    _db = env.db_url("DATABASE_URL")
    # A Unix socket directory may be given percent-encoded in the host part of the URL.
    _db["HOST"] = unquote(str(_db.get("HOST", "")))
    DATABASE_EMBEDDED = False
else:
    from shop import embedded_db

    _server = embedded_db.ensure_running(EMBEDDED_PGDATA)
    _db = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": embedded_db.DATABASE_NAME,
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": _server.socket_dir,
        "PORT": "",
    }
    DATABASE_EMBEDDED = True

_db.setdefault("OPTIONS", {})
_db["OPTIONS"].setdefault("connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5))
_db["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
# Reconnect transparently after a database restart instead of failing the next request.
_db["CONN_HEALTH_CHECKS"] = True
DATABASES = {"default": _db}
