"""Attribution of orders to campaigns, and the ROI report's arithmetic, CSV and access."""

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest

from catalog.models import Product, Variant
from shop.campaigns.models import SpendEntry
from tests.campaigns.fixtures import TODAY, ad_scan, buy, make_campaign, roi
from tests.scans.conftest import new_shopper_client, post_scan, street_photo_of


@pytest.fixture
def catalog_products(demo_catalog):
    products = list(Product.objects.order_by("id")[:4])
    Variant.objects.filter(product__in=products).update(price="20.00", stock=50, currency="EUR")
    return products


def test_attribution_window_edges(catalog_products, staff):
    tee, bag = catalog_products[:2]
    spring, _ = make_campaign("spring", [tee])
    summer, summer_creative = make_campaign("summer", [bag])
    inside, outside = new_shopper_client(), new_shopper_client()
    ad_scan(inside, summer_creative, ago=timedelta(days=7) - timedelta(minutes=1))
    ad_scan(outside, summer_creative, ago=timedelta(days=7) + timedelta(minutes=1))
    buy(inside, bag)
    buy(outside, bag)
    report = roi(staff)
    assert report["summer"]["total"]["orders"] == 1
    assert report["summer"]["total"]["revenue"] == "20.00"
    assert report["spring"]["total"]["orders"] == 0


def test_the_last_touch_among_promoting_campaigns_wins(catalog_products, staff):
    tee = catalog_products[0]
    first, first_creative = make_campaign("first", [tee])
    second, second_creative = make_campaign("second", [tee])
    other, other_creative = make_campaign("other", [catalog_products[3]])  # does not promote the tee
    shopper = new_shopper_client()
    ad_scan(shopper, first_creative, ago=timedelta(days=3))
    ad_scan(shopper, second_creative, ago=timedelta(days=2))
    ad_scan(shopper, other_creative, ago=timedelta(hours=1))  # the latest scan, but of another product
    buy(shopper, tee, quantity=3)
    report = roi(staff)
    assert report["second"]["total"]["orders"] == 1 and report["second"]["total"]["units"] == 3
    assert report["second"]["total"]["revenue"] == "60.00"
    assert report["first"]["total"]["orders"] == 0 and report["other"]["total"]["orders"] == 0
    # The campaign rule counts the whole order for every campaign scanned in the window.
    assert {code: report[code]["total"]["campaign_orders"] for code in report} == {"first": 1, "second": 1, "other": 1}


def test_attribution_is_stored_at_order_time(catalog_products, staff, settings):
    tee = catalog_products[0]
    _, creative = make_campaign("stored", [tee])
    shopper = new_shopper_client()
    ad_scan(shopper, creative, ago=timedelta(days=5))
    buy(shopper, tee)
    settings.ATTRIBUTION_WINDOW_DAYS = 1  # a later change of the setting rewrites nothing
    assert roi(staff)["stored"]["total"]["orders"] == 1


def test_roi_and_roas_in_decimal_with_and_without_spend(catalog_products, staff):
    tee = catalog_products[0]
    paid, creative = make_campaign("paid", [tee])
    free, _ = make_campaign("free", [catalog_products[1]])
    shopper = new_shopper_client()
    scan = ad_scan(shopper, creative, ago=timedelta(hours=2))
    Variant.objects.filter(product=tee).update(price="19.99")
    buy(shopper, tee, quantity=3, scan=scan)  # 59.97
    SpendEntry.objects.create(campaign=paid, date=TODAY, amount="30.00")
    SpendEntry.objects.create(campaign=paid, date=TODAY - timedelta(days=1), amount="10.00")
    report = roi(staff)
    total = report["paid"]["total"]
    assert total["revenue"] == "59.97" and total["spend"] == "40.00"
    assert Decimal(total["roi"]) == Decimal("0.4993") and Decimal(total["roas"]) == Decimal("1.4993")
    assert total["cost_per_order"] == "40.00"
    assert total["add_to_carts"] == 1 and total["scans"] == 1 and total["unique_shoppers"] == 1
    assert [step["count"] for step in report["paid"]["funnel"]] == [1, 1, 1, 1]
    assert report["free"]["total"]["roi"] is None and report["free"]["total"]["roas"] is None


def test_orders_in_another_currency_are_counted_apart_not_added_to_revenue(catalog_products, staff):
    """No exchange rate here: a GBP order is not added to a EUR campaign's revenue, ROI or ROAS."""
    tee, bag = catalog_products[:2]
    campaign, creative = make_campaign("euro-print", [tee, bag])
    SpendEntry.objects.create(campaign=campaign, date=TODAY, amount="10.00")
    Variant.objects.filter(product=bag).update(currency="GBP", price="30.00")
    in_pounds, in_euros = new_shopper_client(), new_shopper_client()
    ad_scan(in_pounds, creative, ago=timedelta(hours=2))
    ad_scan(in_euros, creative, ago=timedelta(hours=1))
    buy(in_pounds, bag)
    buy(in_euros, tee)
    total = roi(staff)["euro-print"]["total"]
    assert (total["orders"], total["revenue"], total["campaign_orders"], total["campaign_revenue"]) == (1, "20.00", 1, "20.00")
    assert total["other_currency_orders"] == 1
    assert Decimal(total["roas"]) == Decimal("2")
    page = staff.get("/admin/campaigns/campaign/reports/roi/").content.decode()
    row = page.split('data-campaign="euro-print"')[1].split("</tr>")[0]
    assert '<td class="revenue">20.00 EUR</td>' in row and '<td class="other-currency">1</td>' in row


def test_the_csv_has_a_row_per_campaign_and_day_and_totals(catalog_products, staff):
    tee = catalog_products[0]
    paid, creative = make_campaign("csv-campaign", [tee])
    shopper = new_shopper_client()
    ad_scan(shopper, creative, ago=timedelta(hours=1))
    buy(shopper, tee, quantity=2)
    SpendEntry.objects.create(campaign=paid, date=TODAY, amount="8.00")
    response = staff.get(
        "/api/v1/reports/campaigns/roi/", {"start": TODAY.isoformat(), "end": TODAY.isoformat(), "format": "csv"}
    )
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    mine = [row for row in rows if row["campaign"] == "csv-campaign"]
    assert [row["date"] for row in mine] == [TODAY.isoformat(), "total"]
    assert mine[0]["orders"] == "1" and mine[0]["units"] == "2" and mine[0]["revenue"] == "40.00"
    assert mine[0]["spend"] == "8.00" and Decimal(mine[0]["roi"]) == Decimal("4") and Decimal(mine[0]["roas"]) == Decimal("5")


def test_orders_without_spend_cost_nothing_known_not_zero(catalog_products, staff):
    """A campaign with orders and no spend (or a day without a spend entry) showed cost per order
    0.00, as if its orders came free: it is n/a, as ROI and ROAS are."""
    tee = catalog_products[0]
    _, creative = make_campaign("unpaid", [tee])
    shopper = new_shopper_client()
    buy(shopper, tee, scan=ad_scan(shopper, creative, ago=timedelta(hours=1)))
    total = roi(staff)["unpaid"]["total"]
    assert total["orders"] == 1 and total["spend"] == "0.00"
    assert total["cost_per_order"] is None and total["roi"] is None
    page = staff.get("/admin/campaigns/campaign/reports/roi/").content.decode()
    row = page.split('data-campaign="unpaid"')[1].split("</tr>")[0]
    assert "0.00</td><td>1</td>" not in row and row.count("n/a") == 3


def test_the_csvs_text_cells_are_not_spreadsheet_formulas(catalog_products, staff):
    """A campaign code or a shopper's region starting with - (or =, +, @) was read as a formula by a
    spreadsheet ("-1-1" showed -2): such cells start with a quote; numbers stay numbers."""
    from shop.scans.models import Scan, ScanItem
    from shop.shoppers.services import shopper_register

    campaign, _ = make_campaign("-1-1", [catalog_products[0]])
    SpendEntry.objects.create(campaign=campaign, date=TODAY, amount="8.00")
    shopper, _ = shopper_register(platform="ios", region="-1-1")
    scan = Scan.objects.create(shopper=shopper, kind="look", status="done", result_kind="look")
    ScanItem.objects.create(scan=scan, position=0, x0=0, y0=0, x1=1, y1=1, category="bag", score=0.9,
                            colors=[{"name": "red", "hex": "#c81e28", "share": 0.9}])
    period = {"start": TODAY.isoformat(), "end": TODAY.isoformat(), "format": "csv"}
    rows = list(csv.DictReader(io.StringIO(staff.get("/api/v1/reports/campaigns/roi/", period).content.decode())))
    mine = [row for row in rows if row["campaign"] == "'-1-1"]
    assert mine and mine[0]["roi"] == "-1.0000"  # a negative ROI is a number, left as it is
    trends = list(csv.reader(io.StringIO(staff.get("/api/v1/reports/trends/", period).content.decode())))
    assert {row[1] for row in trends[1:]} == {"'-1-1"}


def test_the_roi_page_shows_every_day_and_the_recognition_rate(catalog_products, staff):
    """The chart's axis skipped the days nobody scanned or spent (Friday ran straight into Monday),
    and the daily recognition rate of ad-only scans was in the API only."""
    from shop.scans.models import Scan

    campaign, creative = make_campaign("weekly", [catalog_products[0]])
    SpendEntry.objects.create(campaign=campaign, date=TODAY - timedelta(days=3), amount="8.00")
    shopper = new_shopper_client()
    ad_scan(shopper, creative, ago=timedelta(minutes=5))
    Scan.objects.create(shopper=shopper.shopper, kind="ad", status="done", result_kind="none")
    start = TODAY - timedelta(days=4)
    page = staff.get("/admin/campaigns/campaign/reports/roi/", {"start": start, "end": TODAY})
    assert page.context["chart"]["labels"] == [(start + timedelta(days=n)).isoformat() for n in range(5)]
    (series,) = [s for s in page.context["chart"]["series"] if s["campaign"] == "weekly"]
    assert series["spend"] == [0, 8.0, 0, 0, 0]
    row = page.content.decode().split(f'data-date="{TODAY.isoformat()}"')[1].split("</tr>")[0]
    assert "<td>1</td><td>2</td>" in row and '<td class="rate">0.5' in row


def test_reports_are_staff_only(db, client):
    shopper = new_shopper_client()
    for url in ("/api/v1/reports/campaigns/roi/", "/api/v1/reports/trends/"):
        response = shopper.get(url)
        assert response.status_code == 403 and response["Content-Type"] == "application/problem+json"
        assert client.get(url).status_code in (401, 403)
    assert client.get("/admin/campaigns/campaign/reports/roi/").status_code == 302  # to the login page


def test_reports_need_the_permission_to_view_campaigns(db, client):
    """A merchandiser (staff, catalog rights only) reads no revenue; a marketer given the view
    permission does, in the API, its CSV and the admin's pages."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    merchandiser = get_user_model().objects.create_user("merch", password="a-long-password-1", is_staff=True)
    client.force_login(merchandiser)
    urls = ("/api/v1/reports/campaigns/roi/", "/api/v1/reports/trends/", "/api/v1/reports/trends/?format=csv",
            "/admin/campaigns/campaign/reports/roi/", "/admin/campaigns/campaign/reports/trends/")
    assert [client.get(url).status_code for url in urls] == [403] * 5
    merchandiser.user_permissions.add(Permission.objects.get(codename="view_campaign"))
    merchandiser = get_user_model().objects.get(pk=merchandiser.pk)  # permissions are cached per user object
    client.force_login(merchandiser)
    answers = [client.get(url) for url in urls]
    assert [answer.status_code for answer in answers] == [200] * 5
    assert answers[2]["Content-Disposition"].startswith('attachment; filename="trends-')


def test_bad_dates_are_problems(staff):
    response = staff.get("/api/v1/reports/campaigns/roi/", {"start": "2026-02-30"})
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "start"
    response = staff.get("/api/v1/reports/campaigns/roi/", {"start": "2026-05-01", "end": "2026-04-01"})
    assert response.status_code == 400
    # at most 366 days, both ends counted: a leap year is one report, a day more is not
    assert staff.get("/api/v1/reports/trends/", {"start": "2024-01-01", "end": "2024-12-31"}).status_code == 200
    assert staff.get("/api/v1/reports/trends/", {"start": "2024-01-01", "end": "2025-01-01"}).status_code == 400
    # days at the calendar's ends: the period's end + 1 day and its default start would overflow
    for url in ("/api/v1/reports/campaigns/roi/", "/api/v1/reports/trends/"):
        for params in ({"end": "9999-12-31"}, {"end": "0001-01-10"}, {"start": "0001-01-01", "end": "0001-02-01"}):
            response = staff.get(url, params)
            assert response.status_code == 400 and response["Content-Type"] == "application/problem+json", params
    default = f"{TODAY - timedelta(days=59)} – {TODAY}"
    for page in ("roi", "trends"):  # the admin's pages say what is wrong, and show their default period
        for params, error in (({"start": "9999-12-01", "end": "9999-12-31"}, "Ensure this value is less than or equal"),
                              ({"start": "2026-05-01", "end": "2026-04-01"}, "The end is before the start."),
                              ({"start": "2025-01-01", "end": "2026-01-02"}, "At most 366 days per report.")):
            response = staff.get(f"/admin/campaigns/campaign/reports/{page}/", params)
            text = response.content.decode()
            assert response.status_code == 200 and error in text, (page, params)
            assert f"That period cannot be reported: showing {default} instead." in text
            assert f"<h2>Campaigns, {default}</h2>" in text if page == "roi" else f"<h2>{default}</h2>" in text


def test_trend_report_counts_categories_and_colours_per_week_and_region(demo_catalog, staff, django_capture_on_commit_callbacks):
    from shop.shoppers.services import shopper_register
    from rest_framework.test import APIClient

    _, token = shopper_register(platform="ios", locale="en-GB")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    with django_capture_on_commit_callbacks(execute=True):
        post_scan(client, street_photo_of(Product.objects.first()), fields={"kind": "look"})
    body = staff.get("/api/v1/reports/trends/").json()
    (week,) = body["weeks"]
    assert week["region"] == "GB" and week["items"] >= 1
    assert sum(week["categories"].values()) == week["items"]
    assert week["colors"]


@pytest.mark.parametrize("zone", ["UTC", "Asia/Tokyo", "America/Los_Angeles"])
def test_trend_report_weeks_are_the_local_mondays(staff, settings, zone):
    """A scan of Wednesday 2 December 2026 (local time) is counted in the week of Monday 30 November."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from shop.scans.models import Scan, ScanItem
    from shop.shoppers.services import shopper_register

    settings.TIME_ZONE = zone
    shopper, _ = shopper_register(platform="ios", locale="en-GB")
    scan = Scan.objects.create(shopper=shopper, kind="look", status="done", result_kind="look")
    # early on Wednesday there: Tuesday in UTC for Tokyo, Wednesday afternoon in UTC for Los Angeles
    Scan.objects.filter(id=scan.id).update(created_at=datetime(2026, 12, 2, 1, 30, tzinfo=ZoneInfo(zone)))
    ScanItem.objects.create(scan=scan, position=0, x0=0, y0=0, x1=1, y1=1, category="bag", score=0.9,
                            colors=[{"name": "red", "hex": "#c81e28", "share": 0.7}])
    body = staff.get("/api/v1/reports/trends/?start=2026-11-23&end=2026-12-06").json()
    assert [(week["week"], week["items"]) for week in body["weeks"]] == [("2026-11-30", 1)]


def test_trend_report_counts_each_item_once_per_week_and_region(staff):
    """Counted in the database: items of one week and region add up by category and by main colour; an
    item without colours counts in its category only; a shopper without a region is "unknown"."""
    from shop.scans.models import Scan, ScanItem
    from shop.shoppers.services import shopper_register

    british, _ = shopper_register(platform="ios", locale="en-GB")
    nowhere, _ = shopper_register(platform="ios")

    def items(shopper, *kinds):
        scan = Scan.objects.create(shopper=shopper, kind="look", status="done", result_kind="look")
        for position, (category, colour) in enumerate(kinds):
            ScanItem.objects.create(scan=scan, position=position, x0=0, y0=0, x1=1, y1=1, category=category,
                                    score=0.9, colors=[{"name": colour, "hex": "#000000", "share": 0.6}] if colour else [])

    items(british, ("bag", "red"), ("bag", "red"), ("shoe", "black"))
    items(british, ("bag", None), ("dress", "red"))
    items(nowhere, ("shoe", "white"))
    weeks = staff.get("/api/v1/reports/trends/").json()["weeks"]
    assert {week["region"]: (week["items"], week["categories"], week["colors"]) for week in weeks} == {
        "GB": (5, {"bag": 3, "shoe": 1, "dress": 1}, {"red": 3, "black": 1}),
        "unknown": (1, {"shoe": 1}, {"white": 1}),
    }


def test_what_the_reports_counted_by_cannot_be_changed_under_them(demo_catalog, staff):
    """A campaign's currency is an ISO code in capitals (`eur` counted none of its EUR orders), fixed
    once it has spend or scans; a scanned creative stays in its campaign (attribution finds the
    campaign of a scanned ad through its creative). Attributions are not deleted from the admin."""
    from django.core.exceptions import ValidationError

    from shop.campaigns.models import AdCreative, Campaign, ScanAttribution

    campaign, creative = make_campaign("spring-print", [Product.objects.first()])
    campaign.currency = " eur"
    campaign.full_clean()
    assert campaign.currency == "EUR"
    campaign.currency = "E1R"
    with pytest.raises(ValidationError, match="ISO 4217"):
        campaign.full_clean()

    other, _ = make_campaign("summer-print", [])
    page = staff.get(f"/admin/campaigns/campaign/{other.pk}/change/").content.decode()
    assert 'name="currency"' in page  # no spend, no scans: still editable
    SpendEntry.objects.create(campaign=campaign, date=TODAY, amount="10.00")
    page = staff.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    assert 'name="currency"' not in page and "EUR" in page

    ad_scan(new_shopper_client(), creative, ago=timedelta(hours=1))
    moved = staff.post(f"/admin/campaigns/adcreative/{creative.pk}/change/", {
        "campaign": other.pk, "name": creative.name, "status": "active", "metadata": "{}",
        "placements-TOTAL_FORMS": "0", "placements-INITIAL_FORMS": "0"})
    assert "was recognised in 1 scans for its campaign" in moved.content.decode()
    assert AdCreative.objects.get(pk=creative.pk).campaign_id == campaign.pk

    attribution = ScanAttribution.objects.get()
    listing = staff.get("/admin/campaigns/scanattribution/").content.decode()
    assert "delete_selected" not in listing
    page = staff.get(f"/admin/campaigns/scanattribution/{attribution.pk}/change/").content.decode()
    assert f"/admin/campaigns/scanattribution/{attribution.pk}/delete/" not in page
    assert staff.post(f"/admin/campaigns/scanattribution/{attribution.pk}/delete/", {"post": "yes"}).status_code == 403
    assert ScanAttribution.objects.filter(pk=attribution.pk).exists() and Campaign.objects.count() == 2
