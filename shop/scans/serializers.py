import json

from django.conf import settings
from django.urls import reverse

from rest_framework import serializers

from catalog.serializers import ProductHitSerializer, absolute_media_url
from shop.scans.filters import SearchFiltersSerializer
from shop.scans.models import Scan


class _JSONField(serializers.JSONField):
    """DRF's, but JSON text nested too deeply for Python's decoder (a RecursionError, which DRF does not
    catch: a multipart field is decoded here) is this field's error, not a 500."""

    def to_internal_value(self, data):
        try:
            return super().to_internal_value(data)
        except RecursionError:
            self.fail("invalid")


class ScanCreateInputSerializer(serializers.Serializer):
    photo = serializers.FileField(required=False, allow_empty_file=True, help_text="JPEG, PNG, WebP or HEIC/HEIF; checked by content")
    upload_key = serializers.CharField(
        required=False, max_length=255, help_text="key of an object uploaded with POST /api/v1/uploads/ (S3 only)"
    )
    kind = serializers.ChoiceField(
        choices=Scan.Kind.choices,
        default=Scan.Kind.AUTO,
        help_text="auto: a registered ad if one is recognised, else shop the look; ad or look: only that",
    )
    filters = _JSONField(required=False, help_text="search filters for every item (a JSON object)")

    def validate_filters(self, value):
        if isinstance(value, str):  # multipart sends the object as text
            try:
                value = json.loads(value)
            except (json.JSONDecodeError, RecursionError) as exc:  # RecursionError: nested too deeply
                raise serializers.ValidationError("not valid JSON") from exc
        filters = SearchFiltersSerializer(data=value)
        filters.is_valid(raise_exception=True)
        return filters.validated_data

    def validate(self, attrs):
        if bool(attrs.get("photo")) == bool(attrs.get("upload_key")):
            raise serializers.ValidationError({"photo": "send either a photo or an upload_key"})
        return attrs


class WaitSerializer(serializers.Serializer):
    wait = serializers.FloatField(min_value=0, max_value=10, default=0, help_text="seconds to wait for the result")


class ScanMatchSerializer(ProductHitSerializer):
    """A stored match has the product, score and rank of a live search hit."""


class ScanItemSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    box = serializers.SerializerMethodField(help_text="x0, y0, x1, y1 as fractions of the photo's width and height")
    category = serializers.CharField()
    score = serializers.FloatField()
    whole_image = serializers.BooleanField()
    colors = serializers.JSONField()
    confident = serializers.BooleanField(help_text="false: no product scored above the confidence threshold")
    products = ScanMatchSerializer(source="matches", many=True)

    def get_box(self, item) -> list[float]:
        return [item.x0, item.y0, item.x1, item.y1]


def scan_photo_url(request, scan) -> str | None:
    """Where the scan's owner gets its photo: the owner-only photo endpoint with local storage (media
    files of scans are not served), a signed, expiring URL with S3; None once the photo is gone."""
    if not scan.photo:
        return None
    if settings.STORAGE_BACKEND == "local":  # served to the owner only, by ScanPhotoApi
        url = reverse("scan-photo", args=[scan.id])
        return request.build_absolute_uri(url) if request is not None else url
    return absolute_media_url(request, scan.photo)


class ScanSerializer(serializers.ModelSerializer):
    photo_url = serializers.SerializerMethodField()
    model = serializers.SerializerMethodField()
    items = serializers.SerializerMethodField()
    ad = serializers.SerializerMethodField(help_text="the recognised ad, when result_kind is ad")

    class Meta:
        model = Scan
        fields = (
            "id", "kind", "status", "result_kind", "failure_reason", "created_at", "finished_at", "width",
            "height", "photo_url", "photo_deleted_at", "filters", "model", "timings", "ad", "items",
        )  # fmt: skip

    def get_photo_url(self, scan) -> str | None:
        return scan_photo_url(self.context.get("request"), scan)

    def get_model(self, scan) -> dict | None:
        if not scan.model_key:
            return None
        return {"key": scan.model_key, "pretrained": scan.model_pretrained}

    def get_items(self, scan) -> list[dict]:
        if scan.status != Scan.Status.DONE:
            return []
        return ScanItemSerializer(scan.items.all(), many=True, context=self.context).data

    def get_ad(self, scan) -> dict | None:
        from shop.campaigns.serializers import recognised_ad

        if scan.result_kind != Scan.ResultKind.AD:
            return None
        return recognised_ad(scan, context=self.context)


class ScanListSerializer(ScanSerializer):
    class Meta(ScanSerializer.Meta):
        fields = ("id", "kind", "status", "result_kind", "created_at", "finished_at", "photo_url", "model")


class RefineInputSerializer(serializers.Serializer):
    box = serializers.ListField(
        child=serializers.FloatField(min_value=0, max_value=1),
        min_length=4,
        max_length=4,
        required=False,
        help_text="x0, y0, x1, y1 as fractions of the photo; default: the whole photo",
    )
    filters = SearchFiltersSerializer(required=False)
    text = serializers.CharField(required=False, max_length=200, allow_blank=True, help_text='e.g. "in red"')
    k = serializers.IntegerField(min_value=1, max_value=50, default=12)

    def validate_box(self, box):
        x0, y0, x1, y1 = box
        if x1 - x0 < 0.02 or y1 - y0 < 0.02:
            raise serializers.ValidationError("the box must be at least 2 % of the photo wide and high, x0<x1, y0<y1")
        return box
