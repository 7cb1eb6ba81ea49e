from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import transaction
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from shop import vision_adapter
from shop.campaigns.formatters import roi_chart_data, roi_json
from shop.campaigns.models import AdCreative, AdCreativeProduct, Campaign, ScanAttribution, SpendEntry
from shop.campaigns.reports import FIRST_REPORT_DAY, LAST_REPORT_DAY, CampaignRoiReport, TrendReport, period_problem
from shop.campaigns.services import (
    ad_creative_prepare,
    ad_creatives_features_refresh,
    duplicates_checked_in_this_process,
)
from shop.core.forms import clean_picture_upload


class ReportRangeForm(forms.Form):
    _days = [MinValueValidator(FIRST_REPORT_DAY), MaxValueValidator(LAST_REPORT_DAY)]
    start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), validators=_days)
    end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), validators=_days)

    def clean(self):
        cleaned = super().clean()
        problem = cleaned.get("start") and cleaned.get("end") and period_problem(cleaned["start"], cleaned["end"])
        if problem:
            raise forms.ValidationError(problem[1])
        return cleaned


EXTRACT_IN_REQUEST = 10  # creatives the admin's "extract again" does in the request; more go to a worker
EXTRACT_PER_TASK = 50  # ... in tasks of this many (a few hundred ms each, within VISION_TASK_SOFT_TIME_LIMIT)


def _listed_creatives(queryset):
    """Creatives as lists show them: with their scan counts, without their features (up to ~260 KB
    a creative, read only where a page shows them)."""
    return queryset.defer("features").annotate(scan_count=Count("scan_attributions"))


def stars(rating: int) -> str:
    return "★" * rating + "☆" * (5 - rating) if rating else "—"


def creative_thumbnail(creative: AdCreative, height: int = 60) -> str:
    if not creative.image:
        return "—"
    return format_html('<img src="{}" style="height:{}px;border:1px solid #ddd" alt="">', creative.image.url, height)


class CreativeFileForm(forms.ModelForm):
    def clean_campaign(self):
        campaign = self.cleaned_data.get("campaign")
        if self.instance.pk and "campaign" in self.changed_data:
            scans = ScanAttribution.objects.filter(creative=self.instance).count()
            if scans:  # attribution finds a scanned ad's campaign through its creative
                raise forms.ValidationError(
                    f"This creative was recognised in {scans} scans for its campaign: moved, orders after those "
                    "scans would no longer count for it. Add the artwork to the other campaign as a new creative.")
        return campaign

    def clean_image(self):
        image = self.cleaned_data["image"]
        if self.instance.pk and "image" in self.changed_data:
            scans = ScanAttribution.objects.filter(creative=self.instance).count()
            if scans:
                # their stored poses, and the product boxes projected through them, are of this artwork
                raise forms.ValidationError(
                    f"This creative was recognised in {scans} scans: its artwork is what their shoppers "
                    "photographed, and their answers place its products on their photos. Add the new artwork "
                    "as a new creative, and set this one inactive.")
        return clean_picture_upload(image)


def _prepare_and_warn(request, creative: AdCreative, form, admin_site) -> None:
    """Extract features for a new or replaced artwork and tell the marketer what scans will see."""
    if creative.pk and "image" not in form.changed_data and creative.features:
        return
    here = duplicates_checked_in_this_process()
    duplicates = ad_creative_prepare(creative=creative, check_duplicates=here)
    if not here:
        creative.duplicate_of = None  # not checked yet: beat's sweep sends the check again if its message is lost
        from shop.campaigns.tasks import send_duplicate_check

        transaction.on_commit(lambda: send_duplicate_check(creative.pk))
        admin_site.message_user(
            request, f"{creative.name}: a vision worker checks it for near-duplicates; the creatives list shows "
                     "what it finds in its near-duplicates column.", messages.INFO)
    details = creative.rating_details
    level = messages.SUCCESS if creative.rating >= 3 else messages.WARNING
    admin_site.message_user(
        request,
        f"{creative.name}: recognisability {stars(creative.rating)} ({details['feature_count']} features). "
        + " ".join(details["advice"]),
        level,
    )
    if duplicates:
        names = dict(AdCreative.objects.filter(id__in=[c for c, _ in duplicates]).values_list("id", "name"))
        listed = ", ".join(f"{names.get(c, c)} ({s:.0%})" for c, s in duplicates)
        admin_site.message_user(
            request,
            f"{creative.name} is a near-duplicate of {listed}: scans could confuse them. "
            "Make the artworks differ more, or deactivate one.",
            messages.WARNING,
        )


class AdCreativeProductInline(admin.TabularInline):
    model = AdCreativeProduct
    extra = 1
    autocomplete_fields = ("product",)
    fields = ("product", "position", "x0", "y0", "x1", "y1")


@admin.register(AdCreative)
class AdCreativeAdmin(admin.ModelAdmin):
    form = CreativeFileForm
    list_display = ("thumbnail", "name", "campaign", "status", "rating_stars", "scans", "duplicates")
    list_filter = ("status", "rating", "campaign")
    search_fields = ("name", "campaign__name", "campaign__code")
    inlines = (AdCreativeProductInline,)
    fields = ("campaign", "name", "image", "status", "metadata", "thumbnail", "rating_stars", "advice", "duplicates",
              "features_format")
    readonly_fields = ("thumbnail", "rating_stars", "advice", "duplicates", "features_format")
    actions = ("extract_features_again",)

    def get_queryset(self, request):
        return _listed_creatives(super().get_queryset(request).select_related("campaign"))

    @admin.display(description="")
    def thumbnail(self, obj):
        return creative_thumbnail(obj)

    @admin.display(description="recognisability", ordering="rating")
    def rating_stars(self, obj):
        return stars(obj.rating)

    @admin.display(description="advice")
    def advice(self, obj):
        tips = (obj.rating_details or {}).get("advice") or ["—"]
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((tip,) for tip in tips)))

    @admin.display(description="scans", ordering="scan_count")
    def scans(self, obj):
        return obj.scan_count

    @admin.display(description="near-duplicates")
    def duplicates(self, obj):
        if obj.duplicate_of is None:
            return "not checked yet (a vision worker checks it)"
        if not obj.duplicate_of:
            return "—"
        return format_html('<span style="color:#c62828">{}</span>', ", ".join(f"#{c} ({s:.0%})" for c, s in obj.duplicate_of))

    @admin.display(description="features")
    def features_format(self, obj):
        if not obj.features:
            return "—"
        try:
            features = vision_adapter.CreativeFeatures.from_bytes(bytes(obj.features))
        except ValueError as exc:
            return format_html('<span style="color:#c62828">unreadable ({}): extract them again</span>', exc)
        if not features.has_frames:
            return format_html(
                '<span style="color:#c62828">{} features of an older format, without keypoint frames: scans '
                "match them without the look in place. Use the action “Extract features again”.</span>",
                len(features))
        return f"{len(features)} features with keypoint frames"

    @admin.action(description="Extract features again from the artwork")
    def extract_features_again(self, request, queryset):
        ids = list(queryset.values_list("id", flat=True))
        if len(ids) > EXTRACT_IN_REQUEST:  # a few hundred ms each: past the web server's timeout
            from shop.campaigns.tasks import refresh_creatives_features

            try:  # in batches a task finishes well within the vision time limit
                for start in range(0, len(ids), EXTRACT_PER_TASK):
                    refresh_creatives_features.delay(ids[start:start + EXTRACT_PER_TASK])
            except Exception as exc:  # the broker down
                self.message_user(request, f"The task queue did not take the work ({exc!r:.100}): try again, or run "
                                           "`manage.py refresh_creative_features`.", messages.ERROR)
                return
            self.message_user(request, f"{len(ids)} creatives queued: a vision worker extracts their features "
                                       "again (its log names any it could not read).", messages.SUCCESS)
            return
        done, failed = ad_creatives_features_refresh(creatives=queryset)
        self.message_user(request, f"Features extracted again for {done} creatives.", messages.SUCCESS)
        if failed:
            self.message_user(request, "Not extracted: " + "; ".join(failed), messages.ERROR)

    def save_model(self, request, obj, form, change):
        _prepare_and_warn(request, obj, form, self)
        super().save_model(request, obj, form, change)


class AdCreativeInline(admin.TabularInline):
    model = AdCreative
    form = CreativeFileForm
    extra = 0
    show_change_link = True
    fields = ("thumbnail", "name", "image", "status", "rating_stars", "scans")
    readonly_fields = ("thumbnail", "rating_stars", "scans")

    def get_queryset(self, request):
        return _listed_creatives(super().get_queryset(request))

    @admin.display(description="")
    def thumbnail(self, obj):
        return creative_thumbnail(obj, 48)

    @admin.display(description="recognisability")
    def rating_stars(self, obj):
        return stars(obj.rating)

    @admin.display(description="scans")
    def scans(self, obj):
        return getattr(obj, "scan_count", 0)  # 0 for a creative being added


class SpendEntryInline(admin.TabularInline):
    model = SpendEntry
    extra = 1
    fields = ("date", "amount", "note")


def _count_per_campaign(model):
    rows = model.objects.filter(campaign=OuterRef("pk")).order_by().values("campaign").annotate(n=Count("id"))
    return Coalesce(Subquery(rows.values("n"), output_field=IntegerField()), 0)


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "code", "channel", "region", "status", "starts_on", "ends_on", "budget", "creative_count", "scan_count")
    list_filter = ("status", "channel", "region")
    search_fields = ("name", "code")
    prepopulated_fields = {"code": ("name",)}
    inlines = (AdCreativeInline, SpendEntryInline)

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        if obj is not None and (obj.spend.exists() or obj.scan_attributions.exists()):
            # its spend is in this currency, and its orders were counted in it: changing it re-sorts them
            fields += ("currency",)
        return fields

    def get_queryset(self, request):
        # one count per relation in a subquery: joining both would multiply creatives by scans
        return super().get_queryset(request).annotate(
            creatives_n=_count_per_campaign(AdCreative), scans_n=_count_per_campaign(ScanAttribution)
        )

    @admin.display(description="creatives", ordering="creatives_n")
    def creative_count(self, obj):
        return obj.creatives_n

    @admin.display(description="scans", ordering="scans_n")
    def scan_count(self, obj):
        return obj.scans_n

    change_list_template = "admin/campaigns/campaign/change_list.html"

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("reports/roi/", view(self.roi_report_view), name="campaigns_roi_report"),
            path("reports/trends/", view(self.trend_report_view), name="campaigns_trend_report"),
            *super().get_urls(),
        ]

    def _report_range(self, request):
        form = ReportRangeForm(request.GET or None)
        if form.is_valid():
            return form, form.cleaned_data["start"], form.cleaned_data["end"]
        end = timezone.localdate()
        start = end - timedelta(days=59)
        if form.is_bound:  # the period asked for, with what is wrong with it; the default period's figures
            self.message_user(request, f"That period cannot be reported: showing {start} – {end} instead.",
                              messages.ERROR)
            return form, start, end
        return ReportRangeForm(initial={"start": start, "end": end}), start, end

    def _require_view_permission(self, request) -> None:
        if not self.has_view_permission(request):  # staff without campaign rights (merchandisers)
            raise PermissionDenied

    def roi_report_view(self, request):
        self._require_view_permission(request)
        form, start, end = self._report_range(request)
        report = CampaignRoiReport(start=start, end=end)
        campaigns = report.generate()
        context = {
            **self.admin_site.each_context(request),
            "title": "Campaign ROI",
            "opts": self.model._meta,
            "form": form,
            "start": start,
            "end": end,
            "report": roi_json(campaigns, start=start, end=end, recognition=report.recognition_rate()),
            "chart": roi_chart_data(campaigns, start=start, end=end),
            "csv_url": f"{reverse('report-campaign-roi')}?start={start}&end={end}&format=csv",
        }
        return TemplateResponse(request, "admin/campaigns/roi_report.html", context)

    def trend_report_view(self, request):
        self._require_view_permission(request)
        form, start, end = self._report_range(request)
        rows = TrendReport(start=start, end=end).generate()
        context = {
            **self.admin_site.each_context(request),
            "title": "What shoppers photograph",
            "opts": self.model._meta,
            "form": form,
            "start": start,
            "end": end,
            "rows": rows,
            "csv_url": f"{reverse('report-trends')}?start={start}&end={end}&format=csv",
        }
        return TemplateResponse(request, "admin/campaigns/trend_report.html", context)

    def save_formset(self, request, form, formset, change):
        if formset.model is AdCreative:
            for creative_form in formset.forms:
                if creative_form.has_changed() and not creative_form.cleaned_data.get("DELETE"):
                    creative = creative_form.instance
                    creative.campaign = form.instance
                    _prepare_and_warn(request, creative, creative_form, self)
        super().save_formset(request, form, formset, change)


@admin.register(ScanAttribution)
class ScanAttributionAdmin(admin.ModelAdmin):
    list_display = ("created_at", "campaign", "creative", "confidence")
    list_filter = ("campaign",)
    list_select_related = ("campaign", "creative")  # not every relation, scan and shopper included
    readonly_fields = ("scan", "campaign", "creative", "shopper", "confidence", "homography", "created_at")

    def get_queryset(self, request):
        return super().get_queryset(request).defer("creative__features")

    def has_add_permission(self, request):
        return False

    # A campaign's scans are its history, which the reports count: not deleted one by one here. (The
    # permission itself stays, so that deleting a whole campaign still takes its history with it, and a
    # creative's delete page lists its scans as what protects it.)
    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "show_delete": False})

    def delete_view(self, request, object_id, extra_context=None):
        raise PermissionDenied
