"""Production safety: refuse to start half-configured, and secure cookies behind a TLS proxy."""

from django.core.exceptions import ImproperlyConfigured

from shop.settings.base import DEBUG, DEV_SECRET_KEY, PAYMENT_PROVIDER, SECRET_KEY
from shop.settings.env import env

# "development" (the default: embedded database and broker allowed) or "production".
SHOP_ENVIRONMENT = env.str("SHOP_ENVIRONMENT", default="development")
# Production with the test payment provider (orders marked paid, no money taken): a demo or staging stack.
ALLOW_TEST_PAYMENTS = env.bool("ALLOW_TEST_PAYMENTS", default=False)

if SHOP_ENVIRONMENT == "production":
    _missing = [name for name in ("DATABASE_URL", "CELERY_BROKER_URL") if not env.str(name, default="")]
    if SECRET_KEY == DEV_SECRET_KEY:
        _missing.insert(0, "DJANGO_SECRET_KEY")
    if _missing:
        raise ImproperlyConfigured(
            f"SHOP_ENVIRONMENT=production needs {', '.join(_missing)}: production never falls back to "
            "the embedded database, the embedded broker or the development secret key."
        )
    # The examples' placeholder (infra/.env.example, secrets.env.example) signs sessions and password
    # resets as well as a published key would: refused, as a key too short to be random.
    if SECRET_KEY.startswith(("change-me", "django-insecure")) or len(SECRET_KEY) < 50:
        raise ImproperlyConfigured(
            "SHOP_ENVIRONMENT=production needs a DJANGO_SECRET_KEY of 50 or more random characters, not the "
            'example\'s placeholder: python -c "import secrets; print(secrets.token_urlsafe(50))"'
        )
    if DEBUG:
        raise ImproperlyConfigured(
            "SHOP_ENVIRONMENT=production refuses DJANGO_DEBUG=true: its error pages show settings and code.")
    # The test provider charges any token starting tok_: production takes money only through a real
    # gateway, unless its operator says that this stack takes no money (the local compose stack).
    if not PAYMENT_PROVIDER or (PAYMENT_PROVIDER == "shop.carts.payments.TestPaymentProvider" and not ALLOW_TEST_PAYMENTS):
        raise ImproperlyConfigured(
            "SHOP_ENVIRONMENT=production needs PAYMENT_PROVIDER, the dotted path of a real payment "
            "provider: the default, the test provider, marks any order paid without taking money. "
            "Set ALLOW_TEST_PAYMENTS=true only on a stack that takes no money (a demo, a staging copy)."
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
