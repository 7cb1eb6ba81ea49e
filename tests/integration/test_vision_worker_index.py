"""A real vision worker with two pool processes loads the creative index once, in its parent, before
the pool forks: the processes share it (copy-on-write) instead of each reading the snapshot, and
they recognise ads with it (FAISS's OpenMP searches do not hang after the fork). With
`VISION_THREADS=1` each process runs OpenCV and FAISS on one thread, as torch."""

import io
import json

import pytest
from django.core.management import call_command
from vision import adgen

from tests.conftest import REDIS_TEST_BROKER, TEST_MODEL_KEY, celery_publishing_to, wait_until
from tests.scans.conftest import jpeg, new_shopper_client, post_scan

pytestmark = pytest.mark.integration


def log_records(path) -> list[dict]:
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            pass  # Celery's banner
    return records


def test_a_vision_worker_loads_the_creative_index_before_its_pool_forks(
    worker_process, campaign_with_creatives, settings, tmp_path
):
    _, _, creatives = campaign_with_creatives
    var = tmp_path / "worker-var"  # the worker's media and creative index storage, and this test's
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(var / "media"), "base_url": "/media/"}}, "creative_index": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(var / "creative-index")}}}
    call_command("build_creative_index", stdout=io.StringIO(), verbosity=0)
    env = {"CELERY_BROKER_URL": REDIS_TEST_BROKER, "VISION_MODEL": TEST_MODEL_KEY, "SHOP_VAR_DIR": str(var),
           "VISION_THREADS": "1"}
    shopper = new_shopper_client()
    with worker_process(env, queues="vision", concurrency=2) as worker, celery_publishing_to(REDIS_TEST_BROKER):
        def loaded():
            assert worker.poll() is None, worker.log_path.read_text()
            return [r for r in log_records(worker.log_path) if r["message"].startswith("creative index loaded")]

        wait_until(lambda: len(loaded()) >= 2, timeout=120, message="the creative index loaded before the fork")
        scans = []
        for n in (0, 1, 2, 3):
            photo, _ = adgen.photograph(creatives[n][1].image, seed=40 + n, difficulty="easy")
            scans.append((n, post_scan(shopper, jpeg(photo)).json()["id"]))

        def done(scan_id):
            assert worker.poll() is None, worker.log_path.read_text()
            body = shopper.get(f"/api/v1/scans/{scan_id}/").json()
            return body if body["status"] in ("done", "failed") else None

        bodies = {n: wait_until(lambda: done(scan_id), timeout=120, message="scan") for n, scan_id in scans}
    for n, body in bodies.items():
        assert body["status"] == "done" and body["result_kind"] == "ad", body
        assert body["ad"]["creative"]["id"] == creatives[n][0].id
    records = log_records(worker.log_path)
    from_snapshot = [r for r in records if r["message"] == "creative index loaded from a snapshot"]
    before_fork = [r for r in records if r["message"] == "creative index loaded before the pool forked"]
    assert len(from_snapshot) == 1 and from_snapshot[0]["creatives"] == 4, "read once, by the parent"
    assert len(before_fork) == 1 and before_fork[0]["creatives"] == 4
    threads = [r for r in records if r["message"] == "vision threads of this worker process"]
    assert len(threads) == 2, "one record per pool process"
    assert all(r["opencv_threads"] == 1 and r["faiss_threads"] == 1 for r in threads), threads
