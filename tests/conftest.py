"""Fixtures shared by every test package (registered here, once)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection
from rest_framework.test import APIClient

REPO_ROOT = Path(__file__).resolve().parent.parent

# campaign_with_creatives and staff (admin), for tests of several packages
pytest_plugins = ["tests.campaigns.fixtures"]


def pytest_sessionfinish(session, exitstatus):
    """Stop the embedded PostgreSQL if this test session started it."""
    from django.conf import settings

    from shop import embedded_db

    if getattr(settings, "DATABASE_EMBEDDED", False) and embedded_db._server and embedded_db._server.started_here:
        from django.db import connections

        connections.close_all()
        embedded_db.stop(settings.EMBEDDED_PGDATA)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, *, timeout: float, interval: float = 0.2, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def current_database_url() -> str:
    """A DATABASE_URL for child processes that points at the database this test uses."""
    s = connection.settings_dict
    host = quote(s["HOST"], safe="") if s["HOST"].startswith("/") else s["HOST"]
    port = f":{s['PORT']}" if s["PORT"] else ""
    password = f":{s['PASSWORD']}" if s["PASSWORD"] else ""
    return f"postgres://{s['USER']}{password}@{host}{port}/{s['NAME']}"


@pytest.fixture
def demo_catalog(db):
    """A small demo catalog (18 categories x 3 products), indexed with the test model."""
    from django.core.management import call_command

    from catalog.models import Product

    call_command("seed_demo", per_category=3, no_marketing=True, verbosity=0)
    return Product.objects.all()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def shopper_client(db):
    """An API client authenticated as a freshly registered shopper (`client.shopper`)."""
    from shop.shoppers.services import shopper_register

    shopper, token = shopper_register(platform="ios", app_version="1.0.0")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    client.shopper = shopper
    return client


@contextmanager
def celery_worker_process(*, env: dict[str, str], queues: str, log_path: Path, concurrency: int = 1):
    """A real `celery worker` subprocess, stopped (warm shutdown) when the block ends."""
    child_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "shop.settings", "PYTHONUNBUFFERED": "1", **env}
    cmd = [
        sys.executable, "-m", "celery", "-A", "shop", "worker",
        "-Q", queues, "--concurrency", str(concurrency), "--loglevel", "INFO",
        "--without-gossip", "--without-mingle", "--hostname", f"test-{os.getpid()}@%h",
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=child_env, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def worker_process(transactional_db, tmp_path):
    """Start a real worker on a broker, against this test's database: `worker_process(broker_env)`."""

    @contextmanager
    def start(broker_env: dict[str, str], queues: str = "default", concurrency: int = 1):
        env = {"DATABASE_URL": current_database_url(), **broker_env}
        log_path = tmp_path / "worker.log"
        with celery_worker_process(env=env, queues=queues, log_path=log_path, concurrency=concurrency) as proc:
            proc.log_path = log_path
            yield proc

    return start


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real S3 endpoint on loopback (moto's server mode), with credentials for it."""
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{port}"

    def answers():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    try:
        wait_until(answers, timeout=30, message="moto S3 server")
        yield {
            "endpoint_url": endpoint,
            "access_key": "testing",
            "secret_key": "testing",
            "region": "us-east-1",
        }
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


TEST_MODEL_KEY = "color-texture-v1"


@pytest.fixture(autouse=True)
def _vision_model_for_tests(settings, request):
    """Tests use the weights-free model whatever weights this machine has, and unit tests run
    Celery tasks eagerly (integration tests use real workers instead)."""
    from shop import vision_adapter
    from shop.celery import app

    from django.core.cache import cache

    cache.clear()  # throttle counts start from zero in every test
    settings.VISION_MODEL = TEST_MODEL_KEY
    vision_adapter.configured_model_key.cache_clear()
    eager = request.node.get_closest_marker("integration") is None
    app.conf.task_always_eager = eager
    yield
    app.conf.task_always_eager = False
    vision_adapter.configured_model_key.cache_clear()


@pytest.fixture(autouse=True)
def _creative_index_snapshots_of_this_test(settings, tmp_path):
    """Each test writes and reads creative index snapshots of its own, never those of `make run`."""
    settings.STORAGES = {**settings.STORAGES, "creative_index": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(tmp_path / "creative-index")}}}


REDIS_TEST_BROKER = "redis://127.0.0.1:6379/15"


@contextmanager
def celery_publishing_to(url: str, transport_options: dict | None = None):
    """Make this process's Celery app publish to another broker (e.g. the one a test worker uses)."""
    from shop.celery import app

    saved = (app.conf.broker_url, app.conf.broker_transport_options)

    def reset_pools():
        # Forget the pools bound to the old broker; kombu keeps them keyed by connection, so they
        # are left open rather than closed under another test's feet.
        app._pool = None
        app.amqp._producer_pool = None

    app.conf.broker_url, app.conf.broker_transport_options = url, transport_options or {}
    reset_pools()
    try:
        yield app
    finally:
        app.conf.broker_url, app.conf.broker_transport_options = saved
        reset_pools()
