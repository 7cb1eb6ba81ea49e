"""Test helpers: switch the default storage to the moto S3 server, the way shop/settings/storage.py
configures it from the environment."""

from __future__ import annotations

import uuid
from contextlib import contextmanager

import boto3
from django.conf import settings
from django.test import override_settings


@contextmanager
def s3_storage(s3_server: dict):
    """Default storage on a fresh bucket of the moto server; yields (boto3 client, bucket)."""
    client = boto3.client(
        "s3",
        endpoint_url=s3_server["endpoint_url"],
        aws_access_key_id=s3_server["access_key"],
        aws_secret_access_key=s3_server["secret_key"],
        region_name=s3_server["region"],
    )
    bucket = f"test-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=bucket)
    with override_settings(
        STORAGE_BACKEND="s3",
        AWS_STORAGE_BUCKET_NAME=bucket,
        AWS_S3_ENDPOINT_URL=s3_server["endpoint_url"],
        AWS_S3_REGION_NAME=s3_server["region"],
        AWS_ACCESS_KEY_ID=s3_server["access_key"],
        AWS_SECRET_ACCESS_KEY=s3_server["secret_key"],
        AWS_LOCATION="",
        AWS_QUERYSTRING_EXPIRE=600,
        AWS_DEFAULT_ACL=None,
        AWS_S3_FILE_OVERWRITE=False,
        STORAGES={**settings.STORAGES, "default": {"BACKEND": "storages.backends.s3.S3Storage"}},
    ):
        yield client, bucket


def bucket_keys(client, bucket: str, prefix: str = "") -> list[str]:
    return [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
