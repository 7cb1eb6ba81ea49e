from botocore.config import Config as BotoConfig

from shop.settings.env import VAR_DIR, env

MEDIA_ROOT = VAR_DIR / "media"
MEDIA_URL = "/media/"

AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")
STORAGE_BACKEND = "s3" if AWS_STORAGE_BUCKET_NAME else "local"

if STORAGE_BACKEND == "s3":
    AWS_S3_ENDPOINT_URL = env.str("AWS_S3_ENDPOINT_URL", default="") or None
    AWS_S3_REGION_NAME = env.str("AWS_S3_REGION_NAME", default="") or None
    AWS_ACCESS_KEY_ID = env.str("AWS_ACCESS_KEY_ID", default="") or None
    AWS_SECRET_ACCESS_KEY = env.str("AWS_SECRET_ACCESS_KEY", default="") or None
    AWS_LOCATION = env.str("AWS_LOCATION", default="")
    AWS_QUERYSTRING_EXPIRE = env.int("AWS_QUERYSTRING_EXPIRE", default=3600)
    AWS_DEFAULT_ACL = None
    AWS_S3_FILE_OVERWRITE = False
    # botocore's defaults (60 s to connect, 60 s a read, with retries) let one stalled call outlast a
    # scan's time limit (which then fails the scan for good) and hold a web thread for minutes
    AWS_S3_CLIENT_CONFIG = BotoConfig(
        connect_timeout=env.float("AWS_S3_CONNECT_TIMEOUT", default=3.0),
        read_timeout=env.float("AWS_S3_READ_TIMEOUT", default=15.0),
        retries={"mode": "standard", "max_attempts": env.int("AWS_S3_MAX_ATTEMPTS", default=3)},
    )
    _default_storage = {"BACKEND": "storages.backends.s3.S3Storage"}
    # never given out by URL; the names are unique, so no name is looked up before an upload
    _creative_index_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {"location": "/".join(p for p in (AWS_LOCATION.strip("/"), "creative-index") if p),
                    "file_overwrite": True},
    }
else:
    MEDIA_ROOT.mkdir(parents=True, exist_ok=True)
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT), "base_url": MEDIA_URL},
    }
    # beside the media, not under MEDIA_ROOT: never served
    _creative_index_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(VAR_DIR / "creative-index")},
    }

STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    # snapshots of the creative index that fresh workers load (shop.campaigns.recognition)
    "creative_index": _creative_index_storage,
}

UPLOAD_URL_EXPIRE_SECONDS = env.int("UPLOAD_URL_EXPIRE_SECONDS", default=300)
