"""Bulk import of products, variants and pictures from CSV or JSON rows.

One row is one variant. Rows with the same `handle` (default: the SKU) make one product; the
first row of a handle carries the product's fields. Each row is imported in its own savepoint:
a bad row is reported with its number and field, and the rest are imported.

Columns: handle, title, description, brand, category ("Women > Shoes > Sneakers"), attributes
(JSON object), active, sku, price, currency, stock, size, color, images (paths relative to the
file or the images directory, or http(s) URLs; several separated by "|").
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils.text import slugify

from catalog.fetch import FetchError, FetchPolicy, fetch_url
from catalog.models import Brand, Category, Product, ProductImage, Variant
from shop import vision_adapter


class RowError(Exception):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass
class ImportReport:
    rows: int = 0
    products_created: int = 0
    products_updated: int = 0
    variants: int = 0
    images: int = 0
    errors: list[dict] = field(default_factory=list)  # {"row": n, "field": ..., "error": ...}

    @property
    def imported_rows(self) -> int:
        return self.rows - len(self.errors)


def read_rows(path: Path, fmt: str | None = None) -> Iterator[dict]:
    """Rows of a CSV file (header line) or a JSON file (a list of objects, or {"products": [...]})."""
    fmt = fmt or path.suffix.lstrip(".").lower()
    if fmt == "csv":
        with open(path, newline="", encoding="utf-8-sig") as f:
            yield from csv.DictReader(f)
    elif fmt == "json":
        data = json.loads(path.read_text(encoding="utf-8"))
        rows = data.get("products", []) if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise ValueError("a JSON import is a list of objects, or an object with a 'products' list")
        yield from rows
    else:
        raise ValueError(f"unknown import format {fmt!r}: use csv or json")


def _text(row: dict, name: str, *, required: bool = False, max_length: int | None = None) -> str:
    value = row.get(name)
    value = "" if value is None else str(value).strip()
    if required and not value:
        raise RowError(name, "required")
    if max_length and len(value) > max_length:
        raise RowError(name, f"longer than {max_length} characters")
    return value


def _category(path_text: str) -> Category:
    parent = None
    for name in [part.strip() for part in path_text.split(">") if part.strip()]:
        slug_base = slugify(f"{parent.slug}-{name}" if parent else name)[:110] or "category"
        parent, _ = Category.objects.get_or_create(parent=parent, name=name, defaults={"slug": slug_base})
    if parent is None:
        raise RowError("category", "required")
    return parent


def _brand(name: str) -> Brand | None:
    if not name:
        return None
    brand = Brand.objects.filter(name__iexact=name).first()
    return brand or Brand.objects.create(name=name, slug=slugify(name)[:110] or "brand")


def _price(row: dict) -> Decimal:
    try:
        price = Decimal(_text(row, "price", required=True))
    except InvalidOperation as exc:
        raise RowError("price", f"not a number: {row.get('price')!r}") from exc
    if price < 0 or price.as_tuple().exponent < -2 or price >= Decimal("1e8"):
        raise RowError("price", "must be between 0 and 99999999.99 with at most 2 decimals")
    return price


def _stock(row: dict) -> int:
    text = _text(row, "stock") or "0"
    if not text.isdigit():
        raise RowError("stock", f"not a whole number ≥ 0: {text!r}")
    return int(text)


def _attributes(row: dict) -> dict:
    value = row.get("attributes") or {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise RowError("attributes", "not valid JSON") from exc
    if not isinstance(value, dict):
        raise RowError("attributes", "must be a JSON object")
    return value


def _active(row: dict) -> bool:
    value = row.get("active", True)
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("", "1", "true", "yes", "y"):
        return True
    if text in ("0", "false", "no", "n"):
        return False
    raise RowError("active", f"not a boolean: {value!r}")


def _image_sources(row: dict) -> list[str]:
    value = row.get("images", row.get("image", ""))
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value or "").split("|") if part.strip()]


class ImageLoader:
    def __init__(self, *, base_dir: Path | None, policy: FetchPolicy):
        self.base_dir = base_dir.resolve() if base_dir else None
        self.policy = policy

    def load(self, source: str) -> tuple[bytes, str]:
        if "://" in source:
            try:
                return fetch_url(source, policy=self.policy), source.rsplit("/", 1)[-1]
            except FetchError as exc:
                raise RowError("images", f"{source}: {exc}") from exc
        if self.base_dir is None:
            raise RowError("images", f"{source}: local paths need an images directory")
        path = (self.base_dir / source).resolve()
        if not path.is_relative_to(self.base_dir):
            raise RowError("images", f"{source}: outside the images directory")
        if not path.is_file():
            raise RowError("images", f"{source}: no such file")
        if path.stat().st_size > self.policy.max_bytes:
            raise RowError("images", f"{source}: larger than {self.policy.max_bytes} bytes")
        return path.read_bytes(), path.name


def _import_row(row: dict, loader: ImageLoader) -> Counter:
    counts: Counter = Counter()
    if not isinstance(row, dict):
        raise RowError("", "a row must be an object")
    sku = _text(row, "sku", required=True, max_length=64)
    handle = slugify(_text(row, "handle") or sku)[:100]
    price, stock = _price(row), _stock(row)
    currency = (_text(row, "currency") or "EUR").upper()
    if len(currency) != 3 or not currency.isalpha():
        raise RowError("currency", f"not an ISO 4217 code: {currency!r}")
    product = Product.objects.filter(handle=handle).first()
    if product is None or _text(row, "title"):
        fields = {
            "title": _text(row, "title", required=True, max_length=200),
            "description": _text(row, "description"),
            "brand": _brand(_text(row, "brand", max_length=100)),
            "category": _category(_text(row, "category", required=True)),
            "attributes": _attributes(row),
            "active": _active(row),
        }
        if product is None:
            product = Product.objects.create(handle=handle, **fields)
            counts["products_created"] += 1
        else:
            for name, value in fields.items():
                setattr(product, name, value)
            product.save()
            counts["products_updated"] += 1
    options = {name: _text(row, name) for name in ("size", "color") if _text(row, name)}
    Variant.objects.update_or_create(
        sku=sku, defaults={"product": product, "options": options, "price": price, "currency": currency, "stock": stock}
    )
    counts["variants"] += 1

    known = set(product.images.values_list("sha256", flat=True))
    for source in _image_sources(row):
        data, name = loader.load(source)
        try:
            vision_adapter.decode(data)
        except vision_adapter.ImageRejected as exc:
            raise RowError("images", f"{source}: {exc.code}: {exc}") from exc
        if hashlib.sha256(data).hexdigest() in known:
            continue  # the same picture imported again
        image = ProductImage(product=product, position=len(known), is_primary=not known)
        image.image.save(name or "image.jpg", ContentFile(data), save=False)
        image.save()
        known.add(image.sha256)
        counts["images"] += 1
    return counts


def catalog_import(
    *, rows: Iterable[dict], base_dir: Path | None = None, policy: FetchPolicy = FetchPolicy(), progress=None
) -> ImportReport:
    """Import rows; each in its own savepoint, so a bad row is reported and the others stay."""
    report = ImportReport()
    loader = ImageLoader(base_dir=base_dir, policy=policy)
    for number, row in enumerate(rows, start=1):
        report.rows += 1
        try:
            with transaction.atomic():
                counts = _import_row(row, loader)
        except RowError as exc:
            report.errors.append({"row": number, "field": exc.field, "error": exc.message})
        else:
            for name, value in counts.items():
                setattr(report, name, getattr(report, name) + value)
        if progress is not None:
            progress.update(1)
    return report

