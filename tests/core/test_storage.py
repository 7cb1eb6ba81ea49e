"""Storage through Django's storage API, locally and against a real S3 server on loopback."""

import boto3
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from storages.backends.s3 import S3Storage


def test_local_media_round_trip_under_var_media(settings):
    name = default_storage.save("tests/hello.txt", ContentFile(b"hello"))
    try:
        assert default_storage.path(name).startswith(str(settings.MEDIA_ROOT))
        with default_storage.open(name) as f:
            assert f.read() == b"hello"
    finally:
        default_storage.delete(name)
    assert not default_storage.exists(name)


def test_s3_round_trip_against_a_real_endpoint(s3_server):
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_server["endpoint_url"],
        aws_access_key_id=s3_server["access_key"],
        aws_secret_access_key=s3_server["secret_key"],
        region_name=s3_server["region"],
    )
    s3.create_bucket(Bucket="shop-media")
    storage = S3Storage(
        bucket_name="shop-media",
        endpoint_url=s3_server["endpoint_url"],
        access_key=s3_server["access_key"],
        secret_key=s3_server["secret_key"],
        region_name=s3_server["region"],
        file_overwrite=False,
    )
    name = storage.save("scans/photo.jpg", ContentFile(b"\xff\xd8jpeg-bytes"))
    name_again = storage.save("scans/photo.jpg", ContentFile(b"other"))
    assert name_again != name, "an existing object must never be overwritten"
    # The object is really in the bucket, as boto3 sees it without Django.
    assert s3.get_object(Bucket="shop-media", Key=name)["Body"].read() == b"\xff\xd8jpeg-bytes"
    with storage.open(name) as f:
        assert f.read() == b"\xff\xd8jpeg-bytes"
    assert storage.url(name).startswith(s3_server["endpoint_url"])
    storage.delete(name)
    assert not storage.exists(name)
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket="shop-media", Key=name)


def test_settings_select_s3_when_a_bucket_is_configured(monkeypatch, tmp_path):
    """The settings module itself switches the default storage to S3 from environment variables."""
    import importlib

    import shop.settings.storage as storage_settings

    monkeypatch.setenv("AWS_STORAGE_BUCKET_NAME", "shop-media")
    monkeypatch.setenv("AWS_S3_ENDPOINT_URL", "http://127.0.0.1:9000")
    try:
        reloaded = importlib.reload(storage_settings)
        assert reloaded.STORAGES["default"]["BACKEND"] == "storages.backends.s3.S3Storage"
        assert reloaded.AWS_S3_ENDPOINT_URL == "http://127.0.0.1:9000"
    finally:
        monkeypatch.delenv("AWS_STORAGE_BUCKET_NAME")
        monkeypatch.delenv("AWS_S3_ENDPOINT_URL")
        importlib.reload(storage_settings)
