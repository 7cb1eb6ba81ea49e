"""Readiness checks: each returns a dict with `ok` and what it found."""

from __future__ import annotations

import os
import time
from datetime import timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection
from django.utils import timezone

from shop import vision_adapter
from shop.core.models import WorkerHeartbeat


def _timed(check):
    def run() -> dict:
        started = time.perf_counter()
        try:
            result = check()
        except Exception as exc:  # a readiness probe reports every failure instead of raising
            result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        result["ms"] = round((time.perf_counter() - started) * 1000, 1)
        return result

    return run


@_timed
def database_check() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cursor.fetchone()
    if row is None:
        return {"ok": False, "error": "the pgvector extension is not installed; run `manage.py migrate`"}
    return {"ok": True, "vendor": connection.vendor, "embedded": settings.DATABASE_EMBEDDED, "pgvector": row[0]}


@_timed
def broker_check() -> dict:
    from kombu import Connection

    url = settings.CELERY_BROKER_URL
    if url.startswith("filesystem://"):
        # The embedded broker is a set of folders: it is up when the worker and web can write them.
        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        folders = {options[key] for key in ("data_folder_in", "data_folder_out", "control_folder")}
        unusable = [folder for folder in sorted(folders) if not os.access(folder, os.W_OK | os.X_OK)]
        if unusable:
            return {"ok": False, "transport": "filesystem", "error": f"broker folders not writable: {unusable}"}
        return {"ok": True, "transport": "filesystem", "embedded": True}
    with Connection(
        url,
        connect_timeout=2,
        transport_options={**settings.CELERY_BROKER_TRANSPORT_OPTIONS, "max_retries": 0},
    ) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
        transport = conn.transport_cls
    return {"ok": True, "transport": transport, "embedded": settings.BROKER_EMBEDDED}


@_timed
def storage_check() -> dict:
    if settings.STORAGE_BACKEND == "s3":
        # HEAD on the bucket: a missing, misspelt or forbidden bucket fails here (a HEAD on an object
        # answers 404 for a missing bucket too, which reads as "no such file" and passed)
        default_storage.connection.meta.client.head_bucket(Bucket=settings.AWS_STORAGE_BUCKET_NAME)
    else:
        default_storage.exists("readyz-probe")
    return {"ok": True, "backend": settings.STORAGE_BACKEND}


@_timed
def model_check() -> dict:
    from catalog.selectors import active_model_key

    status = vision_adapter.model_status(active_model_key())
    return {"ok": status.get("error") is None, **status}


def workers_seen() -> dict[str, list[str]]:
    """Workers that answered a heartbeat recently, per queue (informational)."""
    since = timezone.now() - timedelta(seconds=3 * settings.WORKER_HEARTBEAT_SECONDS)
    seen: dict[str, list[str]] = {}
    for heartbeat in WorkerHeartbeat.objects.filter(seen_at__gte=since):
        seen.setdefault(heartbeat.queue, []).append(heartbeat.hostname)
    return seen


def readiness(*, scope: str = "all") -> dict:
    """Every dependency (`all`), or what a web process itself needs to serve requests (`web`): its
    database and its model. The broker and the storage are shared by every pod: a load balancer that
    took all web pods out of service while Redis restarts would refuse every request (catalog, carts,
    checkout), when uploads alone would be touched (a scan stays pending for the sweep; a photo the
    storage cannot take is a 503 of its own)."""
    checks = {"database": database_check()}
    if scope == "all":
        checks |= {"broker": broker_check(), "storage": storage_check()}
    checks["model"] = model_check()
    ready = all(check["ok"] for check in checks.values())
    workers = workers_seen() if checks["database"]["ok"] and scope == "all" else {}
    return {"ready": ready, "scope": scope, "checks": checks, "workers": workers}
