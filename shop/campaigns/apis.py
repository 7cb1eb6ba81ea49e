from datetime import date, timedelta

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from shop.campaigns.formatters import roi_csv, roi_json, trends_csv
from shop.campaigns.reports import FIRST_REPORT_DAY, LAST_REPORT_DAY, CampaignRoiReport, TrendReport, period_problem


class CSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, str) else ""


class DateRangeSerializer(serializers.Serializer):
    start = serializers.DateField(required=False)
    end = serializers.DateField(required=False)
    campaign = serializers.ListField(child=serializers.SlugField(), required=False)

    def validate_start(self, value):
        return _within_report_days(value)

    def validate_end(self, value):
        return _within_report_days(value)

    def validate(self, attrs):
        today = timezone.localdate()
        attrs.setdefault("end", today)
        attrs.setdefault("start", attrs["end"] - timedelta(days=29))
        problem = period_problem(attrs["start"], attrs["end"])
        if problem:
            field_name, why = problem
            raise serializers.ValidationError({field_name: why})
        return attrs


def _within_report_days(value: date) -> date:
    if not FIRST_REPORT_DAY <= value <= LAST_REPORT_DAY:
        raise serializers.ValidationError(f"must lie between {FIRST_REPORT_DAY} and {LAST_REPORT_DAY}")
    return value


def date_range(request) -> dict:
    query = DateRangeSerializer(data={**request.query_params.dict(), "campaign": request.query_params.getlist("campaign")})
    query.is_valid(raise_exception=True)
    return query.validated_data


_REPORT_PARAMETERS = [
    OpenApiParameter("start", date, description="first day (default: 29 days before end, 30 days in all)"),
    OpenApiParameter("end", date, description="last day, inclusive (default: today)"),
    OpenApiParameter("format", str, enum=["json", "csv"]),
]


class CanViewCampaigns(IsAdminUser):
    """Staff with the permission to view campaigns (marketers), not every staff account: revenue and
    ROI are not a merchandiser's to read."""

    message = "Reports need the permission to view campaigns."

    def has_permission(self, request, view) -> bool:
        user = request.user  # as the admin's has_view_permission: view, or change, campaigns
        return super().has_permission(request, view) and (
            user.has_perm("campaigns.view_campaign") or user.has_perm("campaigns.change_campaign"))


class CampaignRoiReportApi(APIView):
    """ROI per campaign and day (staff who may view campaigns). `?format=csv` for a spreadsheet."""

    permission_classes = (CanViewCampaigns,)
    renderer_classes = (JSONRenderer, CSVRenderer)

    @extend_schema(
        operation_id="report_campaign_roi",
        parameters=[*_REPORT_PARAMETERS, OpenApiParameter("campaign", str, many=True, description="campaign codes")],
        responses={200: dict},
        tags=["reports"],
    )
    def get(self, request):
        params = date_range(request)
        report = CampaignRoiReport(start=params["start"], end=params["end"], campaign_codes=params.get("campaign"))
        campaigns = report.generate()
        if request.accepted_renderer.format == "csv":
            response = Response(roi_csv(campaigns), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="campaign-roi-{params["start"]}-{params["end"]}.csv"'
            return response
        return Response(roi_json(campaigns, start=params["start"], end=params["end"], recognition=report.recognition_rate()))


class TrendReportApi(APIView):
    """What shoppers photograph: item categories and colours per week and region (staff who may view
    campaigns)."""

    permission_classes = (CanViewCampaigns,)
    renderer_classes = (JSONRenderer, CSVRenderer)

    @extend_schema(operation_id="report_trends", parameters=_REPORT_PARAMETERS, responses={200: dict}, tags=["reports"])
    def get(self, request):
        params = date_range(request)
        rows = TrendReport(start=params["start"], end=params["end"]).generate()
        if request.accepted_renderer.format == "csv":
            response = Response(trends_csv(rows), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="trends-{params["start"]}-{params["end"]}.csv"'
            return response
        return Response(
            {"start": params["start"], "end": params["end"], "weeks": [{**row, "week": row["week"].isoformat()} for row in rows]}
        )
