import os
import subprocess
import sys

from tests.conftest import REPO_ROOT

CHECK = "import django; django.setup(); from django.conf import settings; print(settings.SESSION_COOKIE_SECURE)"


def _start(**env):
    base = {k: v for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SECRET_KEY", "DJANGO_DEBUG",
                         "PAYMENT_PROVIDER", "ALLOW_TEST_PAYMENTS")}
    return subprocess.run(
        [sys.executable, "-c", CHECK],
        cwd=REPO_ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "shop.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_refuses_to_fall_back_to_embedded_services():
    result = _start(SHOP_ENVIRONMENT="production")
    assert result.returncode != 0
    assert "needs DJANGO_SECRET_KEY, DATABASE_URL, CELERY_BROKER_URL" in result.stderr


PRODUCTION = {
    "SHOP_ENVIRONMENT": "production",
    "DJANGO_SECRET_KEY": "k3Y-" * 13,
    "DATABASE_URL": "postgres://shop@db.invalid:5432/shop",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    "PAYMENT_PROVIDER": "shop.carts.payments.TestPaymentProvider",
    "ALLOW_TEST_PAYMENTS": "true",
}


def test_production_with_its_services_starts_with_secure_cookies():
    result = _start(**PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def test_production_refuses_the_test_payment_provider_unless_told_the_stack_takes_no_money():
    """The test provider marks any tok_ token's order paid: a deployment that forgot PAYMENT_PROVIDER
    would give its goods away."""
    unset = {**PRODUCTION}
    del unset["PAYMENT_PROVIDER"], unset["ALLOW_TEST_PAYMENTS"]
    for env in (unset, {**PRODUCTION, "ALLOW_TEST_PAYMENTS": "false"}, {**PRODUCTION, "PAYMENT_PROVIDER": ""}):
        result = _start(**env)
        assert result.returncode != 0
        assert "needs PAYMENT_PROVIDER" in result.stderr


def test_production_refuses_the_examples_placeholder_key_a_short_key_and_debug():
    for key in ("change-me-to-a-long-random-value", "change-me-" + "x" * 60, "short-but-real-9f8e7d6c"):
        result = _start(**{**PRODUCTION, "DJANGO_SECRET_KEY": key})
        assert result.returncode != 0
        assert "needs a DJANGO_SECRET_KEY of 50 or more random characters" in result.stderr
    result = _start(**{**PRODUCTION, "DJANGO_DEBUG": "true"})
    assert result.returncode != 0
    assert "refuses DJANGO_DEBUG=true" in result.stderr


# Services nothing answers on: a settings check must not start the embedded PostgreSQL (it would be
# left running under the repository's var/ when the tests use another database).
NOWHERE = {"DATABASE_URL": "postgres://shop@127.0.0.1:1/none", "CELERY_BROKER_URL": "redis://127.0.0.1:1/0"}


def test_a_value_that_cannot_be_read_names_its_variable():
    for name, value in (("UPLOAD_MAX_BYTES", "20MB"), ("VISION_TASK_TIME_LIMIT", "soon"), ("SCAN_MIN_SCORE", "0.7")):
        result = _start(**NOWHERE, **{name: value})
        assert result.returncode != 0
        assert "ImproperlyConfigured" in result.stderr and name in result.stderr.splitlines()[-1], result.stderr[-500:]


def test_a_secret_key_starting_with_a_dollar_is_that_key_not_another_variable():
    """django-environ read `$abc…` as the value of a variable named `abc…`: the key became the
    development one (or production refused it as unset)."""
    key = "$" + "q7Wz" * 13
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)"],
        cwd=REPO_ROOT, env={**os.environ, **NOWHERE, "DJANGO_SETTINGS_MODULE": "shop.settings", "DJANGO_SECRET_KEY": key},
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == key
