"""The mobile flow through the API with a real vision worker on Redis."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from catalog.models import Product
from tests.conftest import REDIS_TEST_BROKER, TEST_MODEL_KEY, celery_publishing_to, wait_until
from tests.scans.conftest import new_shopper_client, street_photo_of

pytestmark = pytest.mark.integration


def test_a_scan_is_processed_by_a_real_worker_and_finds_the_product(worker_process):
    call_command("seed_demo", per_category=2, no_marketing=True, verbosity=0)
    product = Product.objects.get(handle="demo-hat-accessories-01")
    shopper = new_shopper_client()
    env = {"CELERY_BROKER_URL": REDIS_TEST_BROKER, "VISION_MODEL": TEST_MODEL_KEY}
    with worker_process(env, queues="vision") as worker, celery_publishing_to(REDIS_TEST_BROKER):
        photo = SimpleUploadedFile("street.jpg", street_photo_of(product, seed=21), content_type="image/jpeg")
        response = shopper.post("/api/v1/scans/?wait=10", {"photo": photo}, format="multipart")
        assert response.status_code in (200, 202)
        scan_id = response.json()["id"]

        def finished():
            assert worker.poll() is None, worker.log_path.read_text()
            body = shopper.get(f"/api/v1/scans/{scan_id}/").json()
            return body if body["status"] in ("done", "failed") else None

        body = response.json() if response.status_code == 200 else wait_until(finished, timeout=120, message="scan")
    assert body["status"] == "done", body
    matched = {p["id"] for item in body["items"] for p in item["products"]}
    assert product.id in matched
    assert body["timings"]["queue"] >= 0
