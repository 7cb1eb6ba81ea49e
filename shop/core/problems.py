"""RFC 9457 problem details for every error the service returns.

Each problem has a stable `code` (also the last segment of `type`, hyphenated), a `title`, the HTTP `status`,
a human `detail`, the `instance` path, the request id, and for validation errors a list of
field errors: `{"field": "photo", "code": "unsupported_format", "detail": "..."}`.
"""

from __future__ import annotations

from http import HTTPStatus
import logging
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django import db
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status as http
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://shop-the-look.dev/problems/"

_DEFAULT_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable_content",
    429: "throttled",
    500: "server_error",
    503: "service_unavailable",
}


class ProblemJSONRenderer(JSONRenderer):
    """Lets a client that asks only for `application/problem+json` be served."""

    media_type = PROBLEM_CONTENT_TYPE


class Problem(exceptions.APIException):
    """An API error with its own stable code, raised by views for domain-specific 4xx answers."""

    def __init__(self, *, status: int, code: str, detail: str, **extensions: Any) -> None:
        super().__init__(detail=detail, code=code)
        self.status_code = status
        self.code = code
        self.extensions = extensions


def problem_body(
    *, status: int, code: str | None = None, detail: str | None = None, instance: str | None = None, **extensions: Any
) -> dict[str, Any]:
    code = code or _DEFAULT_CODES.get(status, "error")
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code.replace("_", "-"),
        "title": title,
        "status": status,
        "detail": detail or title,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    from shop.core.logging import current_request_id

    if request_id := current_request_id():
        body["request_id"] = request_id
    body.update(extensions)
    return body


def problem_response(request: HttpRequest | None, *, status: int, **kwargs: Any) -> JsonResponse:
    """A plain Django response with problem details, for code paths outside DRF."""
    instance = request.path if request is not None else None
    return JsonResponse(
        problem_body(status=status, instance=instance, **kwargs),
        status=status,
        content_type=PROBLEM_CONTENT_TYPE,
    )


def _field_errors(detail: Any, prefix: str = "") -> list[dict[str, str]]:
    """Flatten DRF's nested ValidationError detail into a list of field errors."""
    if isinstance(detail, dict):
        errors = []
        for key, value in detail.items():
            field = key if key != "non_field_errors" else ""
            errors += _field_errors(value, f"{prefix}.{field}" if prefix and field else (field or prefix))
        return errors
    if isinstance(detail, list):
        errors = []
        for index, value in enumerate(detail):
            nested = isinstance(value, (dict, list))
            errors += _field_errors(value, f"{prefix}[{index}]" if nested else prefix)
        return errors
    return [{"field": prefix, "code": getattr(detail, "code", "invalid"), "detail": str(detail)}]


def _is_storage_outage(exc: Exception) -> bool:
    """S3 unreachable or refusing (network errors, 5xx, throttling): botocore's exceptions."""
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # pragma: no cover - boto3 is a dependency
        return False
    return isinstance(exc, (BotoCoreError, ClientError))


def drf_exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every API error leaves as problem details."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = Problem(status=413, code="payload_too_large", detail="The request body is too large.")
    elif isinstance(exc, SuspiciousOperation):
        exc = exceptions.ParseError(str(exc))
    elif isinstance(exc, (db.OperationalError, db.InterfaceError)):
        # The database is restarting or unreachable: a temporary condition, not a bug. Django
        # reconnects on the next request (CONN_HEALTH_CHECKS), so the client should retry.
        logger.warning("database unavailable: %s", exc)
        exc = Problem(status=503, code="database_unavailable", detail="The database is unavailable; retry shortly.")
        exc.wait = 5
    elif _is_storage_outage(exc):
        logger.warning("storage unavailable: %s", exc)
        exc = Problem(status=503, code="storage_unavailable", detail="Photo storage is unavailable; retry shortly.")
        exc.wait = 5
    if not isinstance(exc, exceptions.APIException):
        return None  # a bug: Django's 500 handler answers (with problem details) and logs it

    request = context.get("request")
    extensions: dict[str, Any] = {}
    if isinstance(exc, exceptions.ValidationError):
        code, detail = "validation_error", "The request has invalid fields."
        extensions["errors"] = _field_errors(exc.detail)
    elif isinstance(exc, Problem):
        code, detail = exc.code, str(exc.detail)
        extensions.update(exc.extensions)
    else:
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else _DEFAULT_CODES.get(exc.status_code, "error")
        detail = str(exc.detail)

    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    if getattr(exc, "replayed", False):  # an Idempotency-Key's stored answer, told as a problem
        headers["Idempotent-Replayed"] = "true"
    if request is not None:
        # Problems are JSON whatever renderer the client negotiated (the browsable API included).
        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = PROBLEM_CONTENT_TYPE
    body = problem_body(
        status=exc.status_code,
        code=code,
        detail=detail,
        instance=request.path if request is not None else None,
        **extensions,
    )
    return Response(body, status=exc.status_code, headers=headers, content_type=PROBLEM_CONTENT_TYPE)


def handler400(request, exception=None):
    if isinstance(exception, RequestDataTooBig):
        return problem_response(request, status=http.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    return problem_response(request, status=400)


def handler403(request, exception=None):
    return problem_response(request, status=403)


def handler404(request, exception=None):
    return problem_response(request, status=404, detail="No resource at this address.")


def handler500(request):
    return problem_response(request, status=500, detail="An unexpected error occurred; it has been logged.")
