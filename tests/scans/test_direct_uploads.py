"""A scan from a direct upload (S3): the upload is used once, a retry replays, a failure keeps it."""

import numpy as np
from PIL import Image

from shop.scans.models import Scan
from tests.scans.conftest import jpeg, new_shopper_client
from tests.shoppers.storage import bucket_keys, s3_storage


def a_photo(seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    return jpeg(Image.fromarray(pixels))


def test_a_direct_upload_becomes_one_scan_and_a_retry_replays_it(db, s3_server, django_capture_on_commit_callbacks):
    with s3_storage(s3_server) as (s3, bucket):
        shopper = new_shopper_client()
        prefix = f"uploads/{shopper.shopper.id}/"

        # An upload that is not a picture: refused, and kept, so the app may send the right one
        broken = shopper.post("/api/v1/uploads/").json()["upload_key"]
        s3.put_object(Bucket=bucket, Key=broken, Body=b"not a picture at all")
        refused = shopper.post("/api/v1/scans/", {"upload_key": broken}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
        assert refused.status_code in (415, 422) and refused["Content-Type"] == "application/problem+json"
        assert not Scan.objects.exists()
        assert bucket_keys(s3, bucket, broken) == [broken]
        s3.delete_object(Bucket=bucket, Key=broken)

        key = shopper.post("/api/v1/uploads/").json()["upload_key"]
        s3.put_object(Bucket=bucket, Key=key, Body=a_photo())
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            first = shopper.post("/api/v1/scans/", {"upload_key": key, "kind": "ad"}, format="json",
                                 HTTP_IDEMPOTENCY_KEY="k-1")
        assert first.status_code == 202, first.json()
        assert bucket_keys(s3, bucket, prefix) == [key]  # kept until the scan is committed
        for callback in callbacks:  # the commit: the scan is queued, the upload deleted
            callback()
        assert bucket_keys(s3, bucket, prefix) == []
        scan = Scan.objects.get()
        assert str(scan.id) == first.json()["id"] and scan.photo.name and not scan.photo.name.startswith(prefix)

        # The answer was lost on the way: the app sends the same request again
        again = shopper.post("/api/v1/scans/", {"upload_key": key, "kind": "ad"}, format="json",
                             HTTP_IDEMPOTENCY_KEY="k-1")
        assert again.status_code == 202 and again["Idempotent-Replayed"] == "true"
        assert again.json()["id"] == first.json()["id"] and Scan.objects.count() == 1
        # replayed for a day, while its signed photo URL expires in an hour: the replay is signed afresh
        from shop.core.models import IdempotencyRecord

        record = IdempotencyRecord.objects.get(key="k-1")
        record.response_body = {**record.response_body, "photo_url": "https://bucket.example/expired"}
        record.save(update_fields=["response_body"])
        later = shopper.post("/api/v1/scans/", {"upload_key": key, "kind": "ad"}, format="json",
                             HTTP_IDEMPOTENCY_KEY="k-1")
        assert later["Idempotent-Replayed"] == "true" and later.json()["photo_url"].startswith(s3_server["endpoint_url"])
        assert "Signature" in later.json()["photo_url"] and later.json()["id"] == first.json()["id"]
        other = shopper.post("/api/v1/scans/", {"upload_key": key, "kind": "look"}, format="json",
                             HTTP_IDEMPOTENCY_KEY="k-1")
        assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
