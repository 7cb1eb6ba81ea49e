"""What an error of the file storage (S3 through boto3) means for the work that met it.

botocore retries a busy S3 a few times itself (its standard retry mode); what still comes out is either
"not now" (no connection, a timeout, a 5xx, throttling: try the work again later) or "never" for that
file (access denied, a bad request: the file cannot be read, whatever the wait).
"""

from __future__ import annotations

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

# S3's error codes that say "not now" whatever their HTTP status
_BUSY_CODES = frozenset({"SlowDown", "RequestTimeout", "Throttling", "ThrottlingException", "RequestLimitExceeded",
                         "ServiceUnavailable", "InternalError", "TooManyRequestsException"})


def storage_busy(exc: BaseException) -> bool:
    """The storage did not answer, or answered that it cannot serve now: the work may be tried again."""
    if isinstance(exc, (BotoConnectionError, HTTPClientError)):  # connection refused or reset, timeouts
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return status >= 500 or status == 429 or storage_error_code(exc) in _BUSY_CODES
    return False


def storage_refused(exc: BaseException) -> bool:
    """The storage answered that this file cannot be read (access denied, a bad request): waiting will
    not change that. A missing file is a FileNotFoundError (django-storages turns S3's 404 into one)."""
    return isinstance(exc, ClientError) and not storage_busy(exc)


def storage_error_code(exc: ClientError) -> str:
    """S3's code for the error (AccessDenied, SlowDown, ...), else its HTTP status."""
    error = exc.response.get("Error", {}).get("Code")
    return str(error or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or "unknown")
