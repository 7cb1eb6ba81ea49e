"""A marketer in a real browser: log in to admin, open the ROI report, see the charts drawn and
the figures the API gives."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from tests.campaigns.fixtures import ad_scan, buy, make_campaign
from tests.scans.conftest import new_shopper_client

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

CANVAS_HAS_INK = """(id) => {
    const canvas = document.getElementById(id);
    const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let ink = 0;
    for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) ink++;
    return ink;
}"""


@pytest.fixture
def report_data(live_server, transactional_db):
    from catalog.models import Product, Variant
    from django.core.management import call_command
    from shop.campaigns.models import SpendEntry
    from django.utils import timezone

    call_command("seed_demo", per_category=1, no_marketing=True, verbosity=0)
    products = list(Product.objects.order_by("id")[:2])
    Variant.objects.filter(product__in=products).update(price="25.00", stock=10)
    campaign, creative = make_campaign("browser-spring", products)
    for days_ago, quantity in ((3, 1), (1, 2)):
        shopper = new_shopper_client()
        scan = ad_scan(shopper, creative, ago=timedelta(days=days_ago))
        buy(shopper, products[0], quantity=quantity, scan=scan)
    for days_ago in range(5):
        SpendEntry.objects.create(campaign=campaign, date=timezone.localdate() - timedelta(days=days_ago), amount="10.00")
    yen, _ = make_campaign("browser-tokyo", products[1:])
    yen.currency = "JPY"
    yen.save()
    SpendEntry.objects.create(campaign=yen, date=timezone.localdate(), amount="5000.00")
    get_user_model().objects.create_superuser("marketer", "m@example.com", "browser-pass-123")
    return campaign


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (.ci/run installs it)")
def test_a_marketer_sees_the_roi_charts_and_the_api_figures(live_server, report_data, client, tmp_path):
    from playwright.sync_api import sync_playwright

    client.force_login(get_user_model().objects.get(username="marketer"))
    api = client.get("/api/v1/reports/campaigns/roi/").json()
    (expected,) = [c for c in api["campaigns"] if c["code"] == "browser-spring"]

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{live_server.url}/admin/login/?next=/admin/campaigns/campaign/")
        page.fill("#id_username", "marketer")
        page.fill("#id_password", "browser-pass-123")
        page.click("input[type=submit]")
        page.click("text=ROI report")
        page.wait_for_selector("#roi-timeseries")
        page.wait_for_function("() => window.Chart && Chart.getChart('roi-timeseries') && Chart.getChart('roi-funnel')")
        assert page.evaluate(CANVAS_HAS_INK, "roi-timeseries") > 500
        assert page.evaluate(CANVAS_HAS_INK, "roi-funnel") > 500
        row = page.locator("tr[data-campaign='browser-spring']")
        assert row.locator("td.orders").inner_text() == str(expected["total"]["orders"]) == "2"
        assert row.locator("td.revenue").inner_text().startswith(expected["total"]["revenue"])
        assert row.locator("td.spend").inner_text() == f'{expected["total"]["spend"]} EUR' == "50.00 EUR"
        # each series names its currency and is drawn on that currency's axis: 5,000 JPY of spend
        # does not dwarf 10 EUR a day on one scale
        axes = page.evaluate("() => Object.fromEntries(Chart.getChart('roi-timeseries').data.datasets"
                             ".map(d => [d.label, d.yAxisID]))")
        assert axes["browser-spring revenue (EUR)"] == axes["browser-spring spend (EUR)"] == "y-EUR"
        assert axes["browser-tokyo spend (JPY)"] == "y-JPY"
        tops = page.evaluate("() => { const s = Chart.getChart('roi-timeseries').scales;"
                             " return [s['y-EUR'].max, s['y-JPY'].max]; }")
        assert tops[0] < 1000 <= 5000 <= tops[1]
        assert row.locator("td.roi").inner_text() == expected["total"]["roi"]
        assert row.locator("td.roas").inner_text() == expected["total"]["roas"]
        page.screenshot(path=str(tmp_path / "roi-report.png"), full_page=True)
        browser.close()
