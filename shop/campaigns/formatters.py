"""Output of the marketing reports: JSON, CSV and chart data, kept apart from the queries."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

from shop.campaigns.reports import DEFINITIONS, CampaignRoi, RoiFigures

ROI_COLUMNS = (
    "campaign", "date", "scans", "unique_shoppers", "add_to_carts", "orders", "units", "revenue",
    "campaign_orders", "campaign_revenue", "spend", "roi", "roas", "cost_per_order", "other_currency_orders",
)  # fmt: skip


def csv_text(value: str) -> str:
    """A text cell a spreadsheet shows as text: one starting with =, +, -, @ (a campaign code "-1-1",
    a shopper's region "-A1") was read as a formula, and showed its result instead."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value.quantize(Decimal("0.01")))


def _figures(figures: RoiFigures) -> dict:
    return {
        "scans": figures.scans,
        "unique_shoppers": figures.unique_shoppers,
        "add_to_carts": figures.add_to_carts,
        "orders": figures.orders,
        "units": figures.units,
        "revenue": _money(figures.revenue),
        "campaign_orders": figures.campaign_orders,
        "campaign_revenue": _money(figures.campaign_revenue),
        "spend": _money(figures.spend),
        "roi": None if figures.roi is None else str(figures.roi),
        "roas": None if figures.roas is None else str(figures.roas),
        "cost_per_order": _money(figures.cost_per_order),
        "other_currency_orders": figures.other_currency_orders,
    }


def roi_json(campaigns: list[CampaignRoi], *, start, end, recognition: dict) -> dict:
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "definitions": DEFINITIONS,
        "recognition_rate": [
            {"date": day.isoformat(), "recognised": row["recognised"], "scans": row["total"],
             "rate": None if row["rate"] is None else str(row["rate"])}
            for day, row in recognition.items()
        ],  # fmt: skip
        "campaigns": [
            {
                "code": roi.campaign.code,
                "name": roi.campaign.name,
                "channel": roi.campaign.channel,
                "currency": roi.campaign.currency,
                "total": _figures(roi.total),
                "funnel": [{"step": step, "count": count} for step, count in roi.funnel],
                "days": [{"date": day.isoformat(), **_figures(figures)} for day, figures in roi.days.items()],
            }
            for roi in campaigns
        ],
    }


def roi_csv(campaigns: list[CampaignRoi]) -> str:
    """One row per campaign and day, then one `total` row per campaign."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(ROI_COLUMNS)
    for roi in campaigns:
        for when, figures in [*roi.days.items(), ("total", roi.total)]:
            row = _figures(figures)
            writer.writerow([csv_text(roi.campaign.code), when if when == "total" else when.isoformat()] +
                            ["" if row[c] is None else row[c] for c in ROI_COLUMNS[2:]])  # fmt: skip
    return out.getvalue()


def roi_chart_data(campaigns: list[CampaignRoi], *, start, end) -> dict:
    """Series for the admin page: revenue and spend on every day of the period (a day without any
    activity is a zero, not left off the axis), and each campaign's funnel."""
    dates = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    return {
        "labels": [day.isoformat() for day in dates],
        "series": [
            {
                "campaign": roi.campaign.code,
                "currency": roi.campaign.currency,  # the chart gives each currency its own axis
                "revenue": [float(roi.days[d].revenue) if d in roi.days else 0 for d in dates],
                "spend": [float(roi.days[d].spend) if d in roi.days else 0 for d in dates],
            }
            for roi in campaigns
        ],
        "funnels": [
            {"campaign": roi.campaign.code, "steps": [step for step, _ in roi.funnel], "counts": [n for _, n in roi.funnel]}
            for roi in campaigns
        ],
    }


def trends_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(("week", "region", "kind", "name", "count"))
    for row in rows:
        for kind in ("categories", "colors"):
            for name, count in row[kind].items():
                writer.writerow((row["week"].isoformat(), csv_text(row["region"]),
                                 kind[:-1] if kind == "colors" else "category", csv_text(name), count))
    return out.getvalue()
