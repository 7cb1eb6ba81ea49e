"""What an error of the file storage (S3 through boto3) means for the work that met it.

botocore retries a busy S3 a few times itself (its standard retry mode); what still comes out is
either about one file, for good (`storage_refused`: its storage class cannot be read, the version is
gone), or about the storage as a whole for now (`storage_busy`): no connection, a timeout, a 5xx,
throttling, and also credentials, clocks and access policies (ExpiredToken, RequestTimeTooSkewed,
AccessDenied), which a deploy's mistake breaks for every file at once and its fix mends. Work that
met the latter is tried again later, never marked failed for good.
"""

from __future__ import annotations

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

# S3's error codes about one object, that no wait changes (a missing one is a FileNotFoundError:
# django-storages turns S3's 404 into one)
_OBJECT_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "InvalidObjectState", "InvalidRange"})


def storage_busy(exc: BaseException) -> bool:
    """The storage did not answer, or cannot serve now: the work may be tried again later."""
    if isinstance(exc, (BotoConnectionError, HTTPClientError)):  # connection refused or reset, timeouts
        return True
    return isinstance(exc, ClientError) and storage_error_code(exc) not in _OBJECT_CODES


def storage_refused(exc: BaseException) -> bool:
    """The storage answered that this one file cannot be read: waiting will not change that."""
    return isinstance(exc, ClientError) and storage_error_code(exc) in _OBJECT_CODES


def storage_error_code(exc: ClientError) -> str:
    """S3's code for the error (SlowDown, InvalidObjectState, ...), else its HTTP status."""
    error = exc.response.get("Error", {}).get("Code")
    return str(error or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or "unknown")
