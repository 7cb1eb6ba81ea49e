from __future__ import annotations

import threading
import time

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.serializers import ProductHitSerializer
from shop import vision_adapter
from shop.core.idempotency import fingerprint, idempotent
from shop.core.parsers import JSONParser
from shop.core.problems import Problem
from shop.core.storage_errors import storage_error_code, storage_refused
from shop.scans import uploads
from shop.scans.filters import filters_to_json
from shop.scans.models import Scan
from shop.scans.refine import refine_search
from shop.scans.selectors import scan_with_results, scans_of
from shop.scans.serializers import (
    RefineInputSerializer,
    ScanCreateInputSerializer,
    ScanListSerializer,
    ScanSerializer,
    WaitSerializer,
)
from shop.scans.services import ShopperErased, scan_create
from shop.shoppers.permissions import IsShopper

# Each way an upload can be refused, as the HTTP status the app gets.
_REJECTION_STATUS = {"too_many_bytes": 413, "too_many_pixels": 413, "unsupported_format": 415}


def decode_upload(data: bytes):
    try:
        return vision_adapter.decode(data)
    except vision_adapter.ImageRejected as exc:
        raise Problem(
            status=_REJECTION_STATUS.get(exc.code, 422),
            code=exc.code,
            detail=str(exc),
            errors=[{"field": "photo", "code": exc.code, "detail": str(exc)}],
        ) from exc


def _scan_body(request, scan_id) -> dict:
    scan = scan_with_results(shopper=request.shopper, scan_id=scan_id)
    return ScanSerializer(scan, context={"request": request}).data


_waiting = {"requests": 0}  # of this process, waiting for their scan now
_waiting_lock = threading.Lock()


def _wait_for_result(request, scan_id, seconds: float) -> Response | None:
    """The finished scan, when it finishes within `seconds`; None otherwise. A waiting request holds
    a web thread: beyond SCAN_WAITING_PER_PROCESS of them at once (the vision workers slow or down),
    a request answers at once and the app polls, so that reads and health checks keep their threads."""
    with _waiting_lock:
        if _waiting["requests"] >= settings.SCAN_WAITING_PER_PROCESS:
            return None
        _waiting["requests"] += 1
    try:
        deadline = time.monotonic() + min(seconds, settings.SCAN_WAIT_MAX_SECONDS)
        while time.monotonic() < deadline:
            if scans_of(shopper=request.shopper).filter(id=scan_id, status__in=["done", "failed"]).exists():
                return Response(_scan_body(request, scan_id), status=status.HTTP_200_OK)
            time.sleep(0.1)
        return None
    finally:
        with _waiting_lock:
            _waiting["requests"] -= 1


class ScanListCreateApi(ListAPIView):
    permission_classes = (IsShopper,)
    serializer_class = ScanListSerializer
    parser_classes = (MultiPartParser, FormParser, JSONParser)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no shopper
            return Scan.objects.none()
        return scans_of(shopper=self.request.shopper)

    @extend_schema(operation_id="scan_list", tags=["scans"])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="scan_create",
        request={"multipart/form-data": ScanCreateInputSerializer},
        parameters=[
            OpenApiParameter("wait", float, description="seconds (at most 10) to wait for the finished result"),
            OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, description="replay-safe retries"),
        ],
        responses={202: ScanSerializer, 200: ScanSerializer},
        tags=["scans"],
    )
    def post(self, request):
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if not declared.isdigit():
            raise Problem(status=400, code="bad_request", detail="Content-Length must be a number of bytes.")
        if int(declared) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            raise Problem(status=413, code="payload_too_large", detail="The request body is too large.")
        wait = WaitSerializer(data=request.query_params)
        wait.is_valid(raise_exception=True)
        form = ScanCreateInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        # A direct upload is read only when the scan is made (a replay of this Idempotency-Key needs no
        # upload) and deleted once the scan is committed: a failed request leaves it for a retry.
        photo_bytes, upload_key = (data["photo"].read(), None) if data.get("photo") else (None, data["upload_key"])
        filters = filters_to_json(data.get("filters") or {})

        def create() -> Response:
            raw = photo_bytes if upload_key is None else uploads.read_uploaded(shopper=request.shopper, key=upload_key)
            decoded = decode_upload(raw)
            try:
                scan = scan_create(shopper=request.shopper, decoded=decoded, kind=data["kind"], filters=filters)
            except ShopperErased:
                raise Problem(status=401, code="shopper_erased",
                              detail="This shopper's data was deleted while the photo was on its way; "
                                     "register again.") from None
            if upload_key is not None:
                transaction.on_commit(lambda: uploads.delete_uploaded(key=upload_key))
            return Response(ScanSerializer(scan, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)

        source = photo_bytes if upload_key is None else f"upload {upload_key}"  # an upload key names one upload
        request_fingerprint = fingerprint("scan", source, data["kind"], repr(sorted(filters.items())))
        response = idempotent(request=request, request_fingerprint=request_fingerprint, produce=create)
        if response.has_header("Idempotent-Replayed") and response.status_code in (200, 202):
            _refresh_photo_url(request, response)
        if wait.validated_data["wait"] > 0 and response.status_code in (200, 202):
            finished = _wait_for_result(request, response.data["id"], wait.validated_data["wait"])
            if finished is not None:
                return finished
        return response


def _refresh_photo_url(request, response: Response) -> None:
    """A stored answer is replayed for IDEMPOTENCY_KEY_TTL_HOURS, its S3 photo URL signed for
    AWS_QUERYSTRING_EXPIRE: the replay gets a freshly signed one (the rest is the stored answer)."""
    scan = scans_of(shopper=request.shopper).filter(id=response.data.get("id")).first()
    if scan is not None:
        fresh = ScanSerializer(context={"request": request}).get_photo_url(scan)
        response.data = {**response.data, "photo_url": fresh}


class ScanDetailApi(APIView):
    permission_classes = (IsShopper,)

    @extend_schema(operation_id="scan_read", responses=ScanSerializer, tags=["scans"])
    def get(self, request, scan_id):
        scan = scan_with_results(shopper=request.shopper, scan_id=scan_id)
        if scan is None:
            raise Problem(status=404, code="not_found", detail="No such scan.")
        return Response(ScanSerializer(scan, context={"request": request}).data)


class ScanRefineApi(APIView):
    permission_classes = (IsShopper,)

    @extend_schema(
        operation_id="scan_refine",
        request=RefineInputSerializer,
        responses={200: ProductHitSerializer(many=True)},
        tags=["scans"],
    )
    def post(self, request, scan_id):
        scan = scans_of(shopper=request.shopper).filter(id=scan_id).first()
        if scan is None:
            raise Problem(status=404, code="not_found", detail="No such scan.")
        form = RefineInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            picture = vision_adapter.decode(_stored_photo(scan)).image
        except vision_adapter.ImageRejected as exc:  # stored under other limits than today's
            raise Problem(status=422, code="photo_unusable", detail=f"This scan's photo cannot be read now: {exc}") from exc
        data = form.validated_data
        result = refine_search(
            picture=picture,
            box=data.get("box"),
            filters=filters_to_json(data.get("filters") or {}),
            text=data.get("text", ""),
            k=data["k"],
        )
        result["results"] = ProductHitSerializer(result.pop("hits"), many=True, context={"request": request}).data
        return Response(result)


class UploadApi(APIView):
    """A presigned POST for uploading a photo straight to S3; then create a scan with its `upload_key`."""

    permission_classes = (IsShopper,)

    @extend_schema(operation_id="upload_create", request=None, responses={201: dict}, tags=["scans"])
    def post(self, request):
        return Response(uploads.presigned_upload(shopper=request.shopper), status=status.HTTP_201_CREATED)


class ScanPhotoApi(APIView):
    """The stored (cleaned) photo of one of the shopper's own scans, from local storage or S3."""

    permission_classes = (IsShopper,)

    @extend_schema(operation_id="scan_photo", responses={(200, "image/jpeg"): OpenApiTypes.BINARY}, tags=["scans"])
    def get(self, request, scan_id):
        scan = scans_of(shopper=request.shopper).filter(id=scan_id).first()
        if scan is None:
            raise Problem(status=404, code="not_found", detail="No such scan.")
        response = HttpResponse(_stored_photo(scan), content_type="image/jpeg")
        response["Cache-Control"] = "private, max-age=3600"
        return response


def _stored_photo(scan: Scan) -> bytes:
    """The scan's stored photo, read whole (a few MB at most): a photo that is gone is a 410 before any
    byte is sent, whether the purge cleared it, the bucket's lifecycle rule expired it first, or the
    storage will not give it (archived)."""
    gone = Problem(status=410, code="photo_deleted", detail="This scan's photo was deleted after the retention period.")
    if not scan.photo:
        raise gone
    try:
        with scan.photo.open("rb") as f:
            return f.read()
    except FileNotFoundError as exc:
        raise gone from exc
    except Exception as exc:
        if storage_refused(exc):
            raise Problem(status=410, code="photo_unavailable",
                          detail=f"The storage no longer gives this scan's photo ({storage_error_code(exc)}).") from exc
        raise
