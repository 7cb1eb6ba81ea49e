import os
import subprocess
import sys

from tests.conftest import REPO_ROOT

CHECK = "import django; django.setup(); from django.conf import settings; print(settings.SESSION_COOKIE_SECURE)"


def _start(**env):
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SECRET_KEY")}
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


def test_production_with_its_services_starts_with_secure_cookies():
    result = _start(
        SHOP_ENVIRONMENT="production",
        DJANGO_SECRET_KEY="x" * 50,
        DATABASE_URL="postgres://shop@db.invalid:5432/shop",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
