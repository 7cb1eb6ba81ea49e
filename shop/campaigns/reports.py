"""Marketing reports as objects: one generator per report; the queries are selectors here, the
CSV / JSON / chart output lives in formatters.py.

ROI per campaign and day, under two attribution definitions (see attribution.py):
- `orders`, `units`, `revenue` — product rule, last touch (order lines of products the campaign
  promotes, after a scan of its ad within the window);
- `campaign_orders`, `campaign_revenue` — campaign rule (whole orders placed within the window
  after any scan of the campaign's ads).
ROI = (revenue − spend) / spend and ROAS = revenue / spend use the product rule's revenue; both
are empty ("n/a") when there was no spend. Orders and revenue are those in the campaign's currency
(its spend's): there is no exchange rate here, so an order in another currency is not added to them
but counted apart (`other_currency_orders`, campaign rule). Recognition rate = ad-only scans (kind "ad") that
recognised a registered creative / all finished ad-only scans, per day, for the whole report
(an unrecognised scan belongs to no campaign).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, DateField, F, Q, Sum, UUIDField
from django.db.models.functions import Coalesce, TruncDate, TruncWeek
from django.utils import timezone

from shop.campaigns.models import Campaign, OrderCampaignAttribution, OrderLineAttribution, ScanAttribution, SpendEntry

ZERO = Decimal("0.00")
# a report's days: a period ends the day after its last, and its default start is 29 days before
FIRST_REPORT_DAY, LAST_REPORT_DAY = date(1900, 1, 1), date(9998, 12, 31)
MAX_REPORT_DAYS = 366  # days in a report, both ends included: the API, its CSV and the admin's pages alike
RATIO = Decimal("0.0001")
# who scanned an ad: the shopper, or the random key left in place of one who was erased
SCANNING_PERSON = Coalesce("shopper", "erased_shopper", output_field=UUIDField())

DEFINITIONS = {
    "attribution_product_last_touch": (
        "An order line counts for the campaign whose ad the shopper scanned most recently, within the "
        "attribution window before the order, among the campaigns that promote the line's product."
    ),
    "attribution_campaign_window": (
        "A whole order counts for every campaign of which the shopper scanned any ad within the "
        "attribution window before the order."
    ),
    "currency": (
        "Orders and revenue count orders placed in the campaign's currency (its spend's); orders in other "
        "currencies are not converted: other_currency_orders counts them (campaign rule)."
    ),
    "roi": "(revenue − spend) / spend, with the product rule's revenue; n/a without spend",
    "roas": "revenue / spend; n/a without spend",
    "recognition_rate": "ad-only scans that recognised a registered creative / finished ad-only scans",
}


def period_problem(start: date, end: date) -> tuple[str, str] | None:
    """What makes a period unreportable, as (the field at fault, why), or None (days already within
    FIRST_REPORT_DAY..LAST_REPORT_DAY)."""
    if end < start:
        return "end", "The end is before the start."
    if (end - start).days + 1 > MAX_REPORT_DAYS:
        return "start", f"At most {MAX_REPORT_DAYS} days per report."
    return None


def ratio(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    """Four decimals, rounded half up as in accounting; None when the denominator is zero."""
    return (numerator / denominator).quantize(RATIO, rounding=ROUND_HALF_UP) if denominator else None


@dataclass
class RoiFigures:
    scans: int = 0
    unique_shoppers: int = 0
    add_to_carts: int = 0
    orders: int = 0
    units: int = 0
    revenue: Decimal = ZERO
    campaign_orders: int = 0
    campaign_revenue: Decimal = ZERO
    spend: Decimal = ZERO
    other_currency_orders: int = 0  # attributed orders (campaign rule) in another currency than the campaign's

    @property
    def roi(self) -> Decimal | None:
        return ratio(self.revenue - self.spend, self.spend)

    @property
    def roas(self) -> Decimal | None:
        return ratio(self.revenue, self.spend)

    @property
    def cost_per_order(self) -> Decimal | None:
        if not self.orders or not self.spend:  # no spend is n/a, not an order for free
            return None
        return (self.spend / self.orders).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

    def add(self, other: RoiFigures) -> None:
        for name in ("scans", "add_to_carts", "orders", "units", "revenue", "campaign_orders", "campaign_revenue", "spend",
                     "other_currency_orders"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class CampaignRoi:
    campaign: Campaign
    days: dict[date, RoiFigures] = field(default_factory=dict)
    total: RoiFigures = field(default_factory=RoiFigures)

    @property
    def funnel(self) -> list[tuple[str, int]]:
        t = self.total
        return [("scans", t.scans), ("shoppers", t.unique_shoppers), ("add to carts", t.add_to_carts), ("orders", t.orders)]


class CampaignRoiReport:
    """ROI per campaign and day between two dates (inclusive), in the project's time zone."""

    def __init__(self, *, start: date, end: date, campaign_codes: list[str] | None = None):
        if end < start:
            raise ValueError("end is before start")
        self.start, self.end = start, end
        self.campaign_codes = campaign_codes or []
        zone = timezone.get_current_timezone()
        self._since = timezone.make_aware(datetime.combine(start, time.min), zone)
        self._until = timezone.make_aware(datetime.combine(end + timedelta(days=1), time.min), zone)

    def _campaigns(self):
        campaigns = Campaign.objects.order_by("starts_on", "code")
        return campaigns.filter(code__in=self.campaign_codes) if self.campaign_codes else campaigns

    def _window(self, field_name: str) -> Q:
        return Q(**{f"{field_name}__gte": self._since, f"{field_name}__lt": self._until})

    def generate(self) -> list[CampaignRoi]:
        from shop.carts.models import CartEvent, Order

        counted = (Order.Status.PAID, Order.Status.FULFILLED)  # cancelled and unpaid orders earn nothing

        report = {c.id: CampaignRoi(campaign=c) for c in self._campaigns()}
        ids = list(report)

        def day(campaign_id: int, when: date) -> RoiFigures:
            return report[campaign_id].days.setdefault(when, RoiFigures())

        scans = (
            ScanAttribution.objects.filter(self._window("created_at"), campaign_id__in=ids)
            .annotate(day=TruncDate("created_at"))
            .values("campaign_id", "day")
            .annotate(n=Count("id"), shoppers=Count(SCANNING_PERSON, distinct=True))
        )
        for row in scans:
            figures = day(row["campaign_id"], row["day"])
            figures.scans, figures.unique_shoppers = row["n"], row["shoppers"]
        carts = (
            CartEvent.objects.filter(self._window("created_at"), scan__attribution__campaign_id__in=ids)
            .annotate(day=TruncDate("created_at"))
            .values("scan__attribution__campaign_id", "day")
            .annotate(n=Count("id"))
        )
        for row in carts:
            day(row["scan__attribution__campaign_id"], row["day"]).add_to_carts = row["n"]
        lines = (
            OrderLineAttribution.objects.filter(
                self._window("attributed_at"), campaign_id__in=ids, line__order__status__in=counted,
                line__order__currency=F("campaign__currency"),
            )
            .annotate(day=TruncDate("attributed_at"))
            .values("campaign_id", "day")
            .annotate(orders=Count("line__order", distinct=True), units=Sum("units"), revenue=Sum("revenue"))
        )
        for row in lines:
            figures = day(row["campaign_id"], row["day"])
            figures.orders, figures.units, figures.revenue = row["orders"], row["units"], row["revenue"]
        same_currency = Q(order__currency=F("campaign__currency"))
        orders = (
            OrderCampaignAttribution.objects.filter(
                self._window("attributed_at"), campaign_id__in=ids, order__status__in=counted
            )
            .annotate(day=TruncDate("attributed_at"))
            .values("campaign_id", "day")
            .annotate(orders=Count("order", distinct=True, filter=same_currency),
                      revenue=Sum("revenue", filter=same_currency),
                      other_currency=Count("order", distinct=True, filter=~same_currency))
        )
        for row in orders:
            figures = day(row["campaign_id"], row["day"])
            figures.campaign_orders, figures.campaign_revenue = row["orders"], row["revenue"] or ZERO
            figures.other_currency_orders = row["other_currency"]
        spend = (
            SpendEntry.objects.filter(campaign_id__in=ids, date__gte=self.start, date__lte=self.end)
            .values("campaign_id", "date")
            .annotate(amount=Sum("amount"))
        )
        for row in spend:
            day(row["campaign_id"], row["date"]).spend = row["amount"]
        shoppers = (
            ScanAttribution.objects.filter(self._window("created_at"), campaign_id__in=ids)
            .values("campaign_id")
            .annotate(n=Count(SCANNING_PERSON, distinct=True))
        )
        unique = {row["campaign_id"]: row["n"] for row in shoppers}
        for campaign_id, roi in report.items():
            roi.days = dict(sorted(roi.days.items()))
            for figures in roi.days.values():
                roi.total.add(figures)
            roi.total.unique_shoppers = unique.get(campaign_id, 0)
        return list(report.values())

    def recognition_rate(self) -> dict[date, dict]:
        from shop.scans.models import Scan

        rows = (
            Scan.objects.filter(self._window("created_at"), kind=Scan.Kind.AD, status=Scan.Status.DONE)
            .annotate(day=TruncDate("created_at"))
            .values("day")
            .annotate(total=Count("id"), recognised=Count("id", filter=Q(result_kind=Scan.ResultKind.AD)))
            .order_by("day")
        )
        return {
            row["day"]: {**row, "rate": ratio(Decimal(row["recognised"]), Decimal(row["total"]))} for row in rows
        }


class TrendReport:
    """What shoppers photograph: detected item categories and colours per week and region."""

    def __init__(self, *, start: date, end: date):
        self.start, self.end = start, end
        zone = timezone.get_current_timezone()
        self._since = timezone.make_aware(datetime.combine(start, time.min), zone)
        self._until = timezone.make_aware(datetime.combine(end + timedelta(days=1), time.min), zone)

    def generate(self) -> list[dict]:
        from shop.scans.models import ScanItem

        items = ScanItem.objects.filter(
            scan__created_at__gte=self._since,
            scan__created_at__lt=self._until,
            scan__result_kind="look",
            whole_image=False,
        ).annotate(week=TruncWeek("scan__created_at", output_field=DateField()))  # the local Monday
        # counted in the database, grouped (a year of items never comes into memory), then put together
        counts: dict[tuple, dict] = defaultdict(lambda: {"categories": defaultdict(int), "colors": defaultdict(int), "items": 0})
        grouped = items.order_by()
        for week, region, category, n in (grouped.values_list("week", "scan__shopper__region", "category")
                                          .annotate(n=Count("id"))):
            bucket = counts[(week, region or "unknown")]
            bucket["items"] += n
            bucket["categories"][category] += n
        for week, region, color, n in (grouped.exclude(colors__0__name=None)
                                       .values_list("week", "scan__shopper__region", "colors__0__name")
                                       .annotate(n=Count("id"))):
            if color:
                counts[(week, region or "unknown")]["colors"][color] += n
        return [
            {
                "week": week,
                "region": region,
                "items": bucket["items"],
                "categories": dict(sorted(bucket["categories"].items(), key=lambda kv: -kv[1])),
                "colors": dict(sorted(bucket["colors"].items(), key=lambda kv: -kv[1])),
            }
            for (week, region), bucket in sorted(counts.items())
        ]
