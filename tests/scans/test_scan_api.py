import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from catalog.models import Product
from shop.scans.models import Scan, ScanItem, ScanMatch
from tests.scans.conftest import jpeg, new_shopper_client, post_scan, street_photo_of

PROBLEM = "application/problem+json"


def product_ids(item) -> list[int]:
    return [product["id"] for product in item["products"]]


@pytest.fixture
def shopper(db):
    return new_shopper_client()


def test_a_street_photo_of_a_catalog_product_finds_it(shopper, demo_catalog, django_capture_on_commit_callbacks):
    product = Product.objects.get(handle="demo-handbag-bags-01")
    with django_capture_on_commit_callbacks(execute=True):
        response = post_scan(shopper, street_photo_of(product))
    assert response.status_code == 202
    assert response.json()["status"] == "pending"
    scan_id = response.json()["id"]

    body = shopper.get(f"/api/v1/scans/{scan_id}/").json()
    assert body["status"] == "done", body
    assert body["model"] == {"key": "color-texture-v1", "pretrained": False}
    assert set(body["timings"]) >= {"queue", "decode", "detect", "embed", "knn", "database"}
    items = body["items"]
    assert items[-1]["whole_image"] is True and items[-1]["box"] == [0.0, 0.0, 1.0, 1.0]
    assert len(items) >= 2
    found_in = [item for item in items if product.id in product_ids(item)]
    assert found_in, "the product must be among the matches of an item"
    best = found_in[0]
    assert all(0 <= v <= 1 for v in best["box"]) and best["box"][0] < best["box"][2]
    card = best["products"][0]
    assert {"id", "title", "price", "currency", "image_url", "score", "rank", "variants"} <= set(card)
    assert card["image_url"].startswith("http://testserver/media/products/")
    assert card["variants"][0]["id"] and "in_stock" in card["variants"][0]
    assert best["colors"] and {"name", "hex", "share"} <= set(best["colors"][0])

    # a product taken off sale since (discontinued, recalled) is no longer offered from the stored result
    Product.objects.filter(id=product.id).update(active=False)
    again = shopper.get(f"/api/v1/scans/{scan_id}/").json()
    assert not any(product.id in product_ids(item) for item in again["items"])


def test_the_stored_photo_is_a_clean_reencoded_copy(shopper, django_capture_on_commit_callbacks):
    image = Image.new("RGB", (400, 300), (200, 30, 30))
    exif = Image.Exif()
    exif[0x8825] = {2: (48.0, 51.0, 24.0), 1: "N"}  # GPS latitude
    exif[0x010F] = "PhoneMaker"
    response = post_scan(shopper, jpeg(image, exif=exif), name="IMG_0001.HEIC", content_type="image/heic")
    assert response.status_code == 202
    scan = Scan.objects.get(id=response.json()["id"])
    assert scan.photo.name == f"scans/{shopper.shopper.id}/{scan.id}.jpg"
    with scan.photo.open("rb") as f:
        stored = Image.open(io.BytesIO(f.read()))
        assert stored.format == "JPEG"
        assert not stored.getexif()
        assert "exif" not in stored.info


def test_an_idempotent_replay_returns_the_same_scan(shopper, demo_catalog):
    photo = street_photo_of(demo_catalog.first())
    first = post_scan(shopper, photo, HTTP_IDEMPOTENCY_KEY="retry-1")
    again = post_scan(shopper, photo, HTTP_IDEMPOTENCY_KEY="retry-1")
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again["Idempotent-Replayed"] == "true"
    assert Scan.objects.count() == 1

    other = post_scan(shopper, jpeg(Image.new("RGB", (300, 300), "blue")), HTTP_IDEMPOTENCY_KEY="retry-1")
    assert other.status_code == 422
    assert other["Content-Type"] == PROBLEM and other.json()["code"] == "idempotency_key_reused"
    assert Scan.objects.count() == 1
    # The same key is another shopper's own.
    assert post_scan(new_shopper_client(), photo, HTTP_IDEMPOTENCY_KEY="retry-1").json()["id"] != first.json()["id"]


def test_an_idempotency_key_is_kept_for_its_lifetime_then_forgotten(shopper, settings):
    from datetime import timedelta

    from django.utils import timezone

    from shop.core.models import IdempotencyRecord
    from shop.core.tasks import purge_idempotency_records

    photo = jpeg(Image.new("RGB", (300, 300), "red"))
    first = post_scan(shopper, photo, HTTP_IDEMPOTENCY_KEY="photo-1")
    lifetime = timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    IdempotencyRecord.objects.update(created_at=timezone.now() - lifetime + timedelta(minutes=1))
    assert post_scan(shopper, photo, HTTP_IDEMPOTENCY_KEY="photo-1")["Idempotent-Replayed"] == "true"
    assert purge_idempotency_records() == 0
    IdempotencyRecord.objects.update(created_at=timezone.now() - lifetime - timedelta(minutes=1))
    # an app whose counter started again: the old key is a new one, for another photo too
    other = post_scan(shopper, jpeg(Image.new("RGB", (300, 300), "blue")), HTTP_IDEMPOTENCY_KEY="photo-1")
    assert other.status_code == 202 and "Idempotent-Replayed" not in other
    assert other.json()["id"] != first.json()["id"] and Scan.objects.count() == 2
    replayed = post_scan(shopper, jpeg(Image.new("RGB", (300, 300), "blue")), HTTP_IDEMPOTENCY_KEY="photo-1")
    assert replayed.json()["id"] == other.json()["id"]  # and kept again from now on
    IdempotencyRecord.objects.update(created_at=timezone.now() - lifetime - timedelta(minutes=1))
    IdempotencyRecord.objects.create(user=shopper.shopper.user, key="fresh", fingerprint="x", status_code=202,
                                     response_body={})
    assert purge_idempotency_records() == 1 and list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["fresh"]


def test_another_shopper_gets_404_and_sees_no_scans(shopper, demo_catalog, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        scan_id = post_scan(shopper, street_photo_of(demo_catalog.first())).json()["id"]
    intruder = new_shopper_client()
    for method, url in (
        ("get", f"/api/v1/scans/{scan_id}/"),
        ("post", f"/api/v1/scans/{scan_id}/search"),
    ):
        response = getattr(intruder, method)(url, {}, format="json")
        assert response.status_code == 404 and response["Content-Type"] == PROBLEM
    assert intruder.get("/api/v1/scans/").json()["count"] == 0
    listing = shopper.get("/api/v1/scans/").json()
    assert listing["count"] == 1 and listing["results"][0]["id"] == scan_id
    assert shopper.__class__().get("/api/v1/scans/").status_code == 401  # no token at all


@pytest.mark.parametrize(
    "name, data, status, code",
    [
        ("empty", b"", 422, "empty_image"),
        ("truncated jpeg", None, 422, "corrupt_image"),
        ("svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', 415, "unsupported_format"),
        ("gif", b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,"
                b"\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;", 415, "unsupported_format"),
        ("pdf", b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", 415, "unsupported_format"),
        ("text as jpeg", b"hello, this is not a photo", 415, "unsupported_format"),
        ("extreme aspect", None, 422, "extreme_aspect_ratio"),
    ],
)  # fmt: skip
def test_each_class_of_bad_upload_gets_a_4xx_problem(shopper, name, data, status, code):
    if name == "truncated jpeg":
        data = jpeg(Image.new("RGB", (640, 480), "green"))[:2000]
    if name == "extreme aspect":
        data = jpeg(Image.new("RGB", (3000, 20), "green"))
    response = post_scan(shopper, data)
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["code"] == code and body["errors"][0]["field"] == "photo"
    assert not Scan.objects.exists()


def test_too_many_bytes_and_pixels_are_413(shopper, settings):
    settings.UPLOAD_MAX_BYTES = 50_000
    big = jpeg(Image.effect_noise((600, 600), 80).convert("RGB"))
    assert len(big) > 50_000
    response = post_scan(shopper, big)
    assert response.status_code == 413 and response.json()["code"] == "too_many_bytes"


def test_missing_photo_and_bad_filters_are_validation_errors(shopper):
    response = shopper.post("/api/v1/scans/", {}, format="multipart")
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "photo"
    photo = jpeg(Image.new("RGB", (300, 300), "red"))
    response = post_scan(shopper, photo, fields={"filters": '{"color": ["ultraviolet"], "price_min": "-1"}'})
    assert response.status_code == 400
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"filters.color", "filters.price_min"} <= fields
    response = shopper.post("/api/v1/scans/?wait=60", {"photo": SimpleUploadedFile("p.jpg", photo)}, format="multipart")
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "wait"
    assert not Scan.objects.exists()


def test_direct_uploads_need_s3(shopper):
    response = shopper.post("/api/v1/uploads/")
    assert response.status_code == 409 and response.json()["code"] == "direct_uploads_unavailable"


def test_a_redelivered_scan_task_writes_nothing_twice(shopper, demo_catalog, django_capture_on_commit_callbacks):
    from shop.scans.tasks import process_scan

    with django_capture_on_commit_callbacks(execute=True):
        scan_id = post_scan(shopper, street_photo_of(demo_catalog.first())).json()["id"]
    items, matches = ScanItem.objects.count(), ScanMatch.objects.count()
    assert items and matches
    process_scan(scan_id)  # the broker delivers the same message again
    assert (ScanItem.objects.count(), ScanMatch.objects.count()) == (items, matches)
    # A worker that died mid-scan leaves it "processing"; the redelivery redoes it from scratch.
    Scan.objects.filter(id=scan_id).update(status="processing")
    process_scan(scan_id)
    assert (ScanItem.objects.count(), ScanMatch.objects.count()) == (items, matches)
    assert Scan.objects.get(id=scan_id).status == "done"


def test_a_failed_scan_is_final_a_duplicate_message_does_not_run_it_again(shopper, demo_catalog,
                                                                          django_capture_on_commit_callbacks):
    from shop.scans.services import scan_mark_failed
    from shop.scans.tasks import process_scan

    with django_capture_on_commit_callbacks(execute=False):  # the message waits in the queue
        scan_id = post_scan(shopper, street_photo_of(demo_catalog.first())).json()["id"]
    scan_mark_failed(scan_id=scan_id, reason="the photo took too long to process")
    process_scan(scan_id)  # a duplicate of the message (the stale-scan beat, a redelivery)
    scan = Scan.objects.get(id=scan_id)
    assert (scan.status, scan.attempts, scan.failure_reason) == ("failed", 0, "the photo took too long to process")
    assert not ScanItem.objects.filter(scan_id=scan_id).exists()


def test_a_copy_of_a_scans_message_does_nothing_while_another_runs_it(shopper, demo_catalog,
                                                                        django_capture_on_commit_callbacks):
    """The stale-scan beat sends a copy of a scan's message every minute while the vision workers are
    down; they all arrive together. One runs the photo; a copy runs it only once that run is past the
    task's time limit (its worker died), the redelivery of the claiming message at once."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from shop.scans.services import scan_claim
    from shop.scans.tasks import process_scan

    with django_capture_on_commit_callbacks(execute=False):
        scan_id = post_scan(shopper, street_photo_of(demo_catalog.first())).json()["id"]
    assert scan_claim(scan_id=scan_id, message_id="first") is not None  # a worker runs it now
    process_scan.apply(args=[scan_id], task_id="copy")
    scan = Scan.objects.get(id=scan_id)
    assert (scan.status, scan.attempts, scan.claimed_by) == ("processing", 1, "first")
    assert not ScanItem.objects.filter(scan_id=scan_id).exists()
    process_scan.apply(args=[scan_id], task_id="first")  # its worker died: the broker redelivers it
    scan = Scan.objects.get(id=scan_id)
    assert (scan.status, scan.attempts) == ("done", 2) and ScanItem.objects.filter(scan_id=scan_id).exists()

    with django_capture_on_commit_callbacks(execute=False):
        dead_id = post_scan(shopper, street_photo_of(demo_catalog.first(), seed=9)).json()["id"]
    scan_claim(scan_id=dead_id, message_id="first")
    past_limit = timezone.now() - timedelta(seconds=settings.VISION_TASK_TIME_LIMIT + 1)
    Scan.objects.filter(id=dead_id).update(started_at=past_limit)  # that run's worker is gone
    process_scan.apply(args=[dead_id], task_id="copy")
    assert Scan.objects.get(id=dead_id).status == "done"


def test_a_result_never_overwrites_a_failure(shopper, demo_catalog, django_capture_on_commit_callbacks):
    from shop.scans.services import scan_mark_failed, scan_record_no_ad, scan_store_results

    with django_capture_on_commit_callbacks(execute=False):
        scan_id = post_scan(shopper, street_photo_of(demo_catalog.first())).json()["id"]
    scan_mark_failed(scan_id=scan_id, reason="the photo took too long to process")
    assert not scan_store_results(scan_id=scan_id, items=[], model_key="k", pretrained=False, timings={})
    assert not scan_record_no_ad(scan_id=scan_id, timings={})
    assert Scan.objects.get(id=scan_id).status == "failed"


def test_a_product_deleted_since_the_search_is_left_out_not_a_failed_scan(
        shopper, demo_catalog, django_capture_on_commit_callbacks):
    from catalog.search import PhotoItem
    from catalog.selectors import SimilarProduct
    from shop.scans.services import scan_store_results

    with django_capture_on_commit_callbacks(execute=False):
        scan_id = post_scan(shopper, street_photo_of(demo_catalog.first())).json()["id"]
    kept, gone = list(demo_catalog.order_by("id")[:2])
    matches = [SimilarProduct(product_id=gone.id, score=0.9, image_id=0),
               SimilarProduct(product_id=kept.id, score=0.8, image_id=0)]
    gone.delete()  # an admin, a re-import, between the search and the results
    item = PhotoItem(box=(0, 0, 1, 1), category="dress", score=0.9, whole_image=True, colors=[], matches=matches,
                     confident=True)
    assert scan_store_results(scan_id=scan_id, items=[item], model_key="k", pretrained=False, timings={})
    scan = Scan.objects.get(id=scan_id)
    assert scan.status == "done"
    assert [(m.product_id, m.rank) for m in scan.items.get().matches.all()] == [(kept.id, 1)]


def test_a_scan_that_is_not_stored_leaves_no_photo_behind(shopper, monkeypatch):
    """The photo is written before the row; a row that cannot be written takes its file with it (no row
    would name it, and the retention purge walks rows)."""
    from django import db
    from django.core.files.storage import storages

    from tests.scans.conftest import jpeg

    storage, folder = storages["default"], f"scans/{shopper.shopper.id}"
    before = set(storage.listdir(folder)[1]) if storage.exists(folder) else set()

    def refused(self, *args, **kwargs):
        raise db.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(Scan, "save", refused)
    response = post_scan(shopper, jpeg(Image.new("RGB", (400, 300), (200, 30, 30))))
    assert response.status_code == 503
    after = set(storage.listdir(folder)[1]) if storage.exists(folder) else set()
    assert after == before


def test_a_broker_that_does_not_take_the_message_still_answers_202(shopper, demo_catalog, monkeypatch, settings,
                                                                    django_capture_on_commit_callbacks, caplog):
    """The scan is committed before its message is sent: it stays pending, and the stale-scan beat sends it."""
    from datetime import timedelta

    from django.utils import timezone
    from kombu.exceptions import OperationalError

    from shop.scans.tasks import process_scan, requeue_stale_scans

    def broker_down(*args, **kwargs):
        raise OperationalError("[Errno 111] Connection refused")

    with monkeypatch.context() as patched:
        patched.setattr(process_scan, "delay", broker_down)
        with django_capture_on_commit_callbacks(execute=True):
            response = post_scan(shopper, street_photo_of(demo_catalog.first()))
    assert response.status_code == 202, response.content
    scan_id = response.json()["id"]
    assert Scan.objects.get(id=scan_id).status == "pending" and "scan not queued" in caplog.text
    Scan.objects.filter(id=scan_id).update(
        created_at=timezone.now() - timedelta(seconds=settings.SCAN_REQUEUE_AFTER_SECONDS + 1))
    assert requeue_stale_scans() == 1  # the broker is back: eager here, the task runs at once
    assert shopper.get(f"/api/v1/scans/{scan_id}/").json()["status"] == "done"


def test_a_service_that_does_not_answer_for_a_moment_leaves_the_scan_to_be_retried(
    shopper, demo_catalog, monkeypatch, settings, django_capture_on_commit_callbacks
):
    """A database failover or the storage timing out is not the photo's fault: the scan is not failed
    but sent again by the stale-scan beat, up to SCAN_MAX_ATTEMPTS deliveries."""
    from datetime import timedelta

    from botocore.exceptions import EndpointConnectionError
    from django import db
    from django.core.files.storage import storages
    from django.utils import timezone

    import shop.scans.tasks as tasks

    def storage_down(*args, **kwargs):
        raise EndpointConnectionError(endpoint_url="https://s3.example.invalid")

    def database_failover(*args, **kwargs):
        raise db.OperationalError("terminating connection due to administrator command")

    with django_capture_on_commit_callbacks(execute=False):
        scan_id = post_scan(shopper, street_photo_of(demo_catalog.first())).json()["id"]
    waited = timedelta(seconds=settings.SCAN_REQUEUE_AFTER_SECONDS + 1)
    for where, name, fault in ((type(storages["default"]), "open", storage_down),
                               (tasks, "search_photo", database_failover)):
        with monkeypatch.context() as patched:
            patched.setattr(where, name, fault)
            tasks.process_scan(scan_id)
        scan = Scan.objects.get(id=scan_id)
        assert (scan.status, scan.failure_reason) == ("processing", ""), name
        Scan.objects.filter(id=scan_id).update(started_at=timezone.now() - waited)
    assert tasks.requeue_stale_scans() == 1  # the services answer again: eager here, the task runs at once
    scan = Scan.objects.get(id=scan_id)
    assert (scan.status, scan.attempts) == ("done", 3) and ScanItem.objects.filter(scan_id=scan_id).exists()


def test_a_busy_storage_leaves_the_scan_to_be_retried_and_a_refusal_fails_it_with_the_reason(
    shopper, demo_catalog, monkeypatch, django_capture_on_commit_callbacks
):
    """What still comes out of botocore's own retries: SlowDown (503), or credentials refused (a deploy's
    mistake), is "not now", the scan stays processing for the stale-scan beat; InvalidObjectState (the
    photo's storage class cannot be read) is "never" for that photo, the scan fails and says why."""
    from botocore.exceptions import ClientError
    from django.core.files.storage import storages

    import shop.scans.tasks as tasks

    def answering(code, status):
        def s3_open(*args, **kwargs):
            raise ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")
        return s3_open

    with django_capture_on_commit_callbacks(execute=False):
        scan_id = post_scan(shopper, street_photo_of(demo_catalog.first())).json()["id"]
    for code, status in (("SlowDown", 503), ("ExpiredToken", 400)):
        with monkeypatch.context() as patched:
            patched.setattr(type(storages["default"]), "open", answering(code, status))
            tasks.process_scan(scan_id)
        scan = Scan.objects.get(id=scan_id)
        assert (scan.status, scan.failure_reason) == ("processing", ""), code
    # a read so slow that the task's time limit comes first: the storage's doing, not the photo's
    from celery.exceptions import SoftTimeLimitExceeded

    def stalled(*args, **kwargs):
        raise SoftTimeLimitExceeded()

    with django_capture_on_commit_callbacks(execute=False):
        slow_id = post_scan(shopper, street_photo_of(demo_catalog.first(), seed=4)).json()["id"]
    with monkeypatch.context() as patched:
        patched.setattr(type(storages["default"]), "open", stalled)
        tasks.process_scan(slow_id)
    assert (Scan.objects.get(id=slow_id).status, Scan.objects.get(id=slow_id).failure_reason) == ("processing", "")
    with monkeypatch.context() as patched:
        patched.setattr(type(storages["default"]), "open", answering("InvalidObjectState", 403))
        tasks.process_scan(scan_id)
    body = shopper.get(f"/api/v1/scans/{scan_id}/").json()
    assert body["status"] == "failed" and "InvalidObjectState" in body["failure_reason"], body


def test_requests_waiting_for_their_scan_hold_at_most_a_few_threads(shopper, demo_catalog, monkeypatch, settings,
                                                                     django_capture_on_commit_callbacks):
    """While a place is free, `wait` answers with the result; once SCAN_WAITING_PER_PROCESS requests
    wait, another answers 202 at once (the vision workers slow or down must not take every web thread)."""
    import shop.scans.apis as apis

    def the_worker_finishes(seconds):  # the scan is done while the request waits
        Scan.objects.filter(status="pending").update(status="done", result_kind="look")

    monkeypatch.setattr(apis.time, "sleep", the_worker_finishes)
    photo = street_photo_of(demo_catalog.first())
    with django_capture_on_commit_callbacks(execute=False):
        waited = shopper.post("/api/v1/scans/?wait=5", {"photo": SimpleUploadedFile("p.jpg", photo)},
                              format="multipart")
        assert waited.status_code == 200 and waited.json()["status"] == "done"
        settings.SCAN_WAITING_PER_PROCESS = 1
        monkeypatch.setitem(apis._waiting, "requests", 1)  # one request of this process waits already
        answered = shopper.post("/api/v1/scans/?wait=5", {"photo": SimpleUploadedFile("p.jpg", photo)},
                                format="multipart")
        assert answered.status_code == 202 and answered.json()["status"] == "pending"


def test_s3_unreachable_is_a_503_problem_and_writes_no_row(shopper, settings):
    """Storage switched to an S3 endpoint where nothing listens: a clear error, no half-written scan."""
    from django.core.files.storage import storages

    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {"bucket_name": "shop-media", "endpoint_url": "http://127.0.0.1:9", "access_key": "x",
                        "secret_key": "y", "region_name": "us-east-1"},
        },
    }  # fmt: skip
    storages._storages.pop("default", None)
    try:
        from botocore.config import Config

        storages["default"].config = Config(connect_timeout=1, retries={"max_attempts": 1})
        response = post_scan(shopper, jpeg(Image.new("RGB", (300, 300), "red")))
    finally:
        storages._storages.pop("default", None)
    assert response.status_code == 503 and response["Content-Type"] == PROBLEM
    assert response.json()["code"] == "storage_unavailable"
    assert not Scan.objects.exists()


def test_scan_photos_are_served_to_their_owner_only(shopper, client):
    response = post_scan(shopper, jpeg(Image.new("RGB", (320, 240), "navy")))
    scan = Scan.objects.get(id=response.json()["id"])
    photo_url = response.json()["photo_url"]
    assert photo_url == f"http://testserver/api/v1/scans/{scan.id}/photo"
    own = shopper.get(photo_url)
    assert own.status_code == 200 and own["Content-Type"] == "image/jpeg"
    assert own.content[:2] == b"\xff\xd8"
    assert new_shopper_client().get(photo_url).status_code == 404
    assert client.get(f"/media/{scan.photo.name}").status_code == 404  # not public in local mode


def test_a_list_serves_at_most_100_a_page_however_large_the_limit(shopper):
    Scan.objects.bulk_create([Scan(shopper=shopper.shopper, kind="look", status="done") for _ in range(103)])
    for limit in ("101", "9223372036854775808", str(10**40)):
        response = shopper.get("/api/v1/scans/", {"limit": limit})
        assert response.status_code == 200, (limit, response.content[:200])
        body = response.json()
        assert body["count"] == 103 and len(body["results"]) == 100 and "offset=100" in body["next"]
    assert len(shopper.get("/api/v1/scans/", {"limit": "5", "offset": "100"}).json()["results"]) == 3
