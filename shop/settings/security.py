"""Production safety: refuse to start half-configured, and secure cookies behind a TLS proxy."""

from django.core.exceptions import ImproperlyConfigured

from shop.settings.base import DEV_SECRET_KEY, SECRET_KEY
from shop.settings.env import env

# "development" (the default: embedded database and broker allowed) or "production".
SHOP_ENVIRONMENT = env.str("SHOP_ENVIRONMENT", default="development")

if SHOP_ENVIRONMENT == "production":
    _missing = [name for name in ("DATABASE_URL", "CELERY_BROKER_URL") if not env.str(name, default="")]
    if SECRET_KEY == DEV_SECRET_KEY:
        _missing.insert(0, "DJANGO_SECRET_KEY")
    if _missing:
        raise ImproperlyConfigured(
            f"SHOP_ENVIRONMENT=production needs {', '.join(_missing)}: production never falls back to "
            "the embedded database, the embedded broker or the development secret key."
        )
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # Off only where the site is served over plain HTTP on purpose (the local compose stack).
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=3600)
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
    # Probes from inside the cluster speak plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
elif SHOP_ENVIRONMENT != "development":
    raise ImproperlyConfigured("SHOP_ENVIRONMENT must be development or production")
