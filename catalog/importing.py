"""Bulk import of products, variants and pictures from CSV or JSON rows.

One row is one variant. Rows with the same `handle` (default: the SKU) make one product; the
first row of a handle carries the product's fields. Each row is imported in its own savepoint:
a bad row is reported with its number and field, and the rest are imported. Importing again
updates: a product or variant that exists changes only where the row gives a value (an absent
column or an empty cell keeps what is stored: a price list does not wipe descriptions, stock or
options, nor switch a deactivated product back on).

Columns: handle, title, description, brand, category ("Women > Shoes > Sneakers"), attributes
(JSON object), active, sku, price, currency, stock, size, color, images (paths relative to the
file or the images directory, or http(s) URLs; several separated by "|").
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.core.files.base import ContentFile
from django.db import DataError, IntegrityError, transaction
from django.utils.text import slugify

from catalog.fetch import FetchError, FetchPolicy, fetch_url
from catalog.models import Brand, Category, Product, ProductImage, Variant
from shop import vision_adapter
from shop.core.services import files_delete_after_commit

logger = logging.getLogger(__name__)
MAX_STOCK = 999_999_999

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
            # strict: a quote opened and never closed is an error, not the rest of the file read as
            # one cell (the rows after it silently gone, or a field past the csv module's limit)
            reader = csv.DictReader(f, strict=True)
            try:
                yield from reader
            except csv.Error as exc:
                raise ValueError(f"line {reader.line_num}: {exc} (an unbalanced quote?)") from exc
    elif fmt == "json":
        data = json.loads(path.read_text(encoding="utf-8"))
        rows = data.get("products") if isinstance(data, dict) else data
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
    """The category at that path (names matched whatever their case), created as needed."""
    parent = None
    for name in [part.strip() for part in path_text.split(">") if part.strip()]:
        if len(name) > 100:
            raise RowError("category", f"a name longer than 100 characters: {name[:40]!r}...")
        found = Category.objects.filter(parent=parent, name__iexact=name).order_by("id").first()
        parent = found or Category.objects.create(
            parent=parent, name=name,
            slug=_free_slug(Category, slugify(f"{parent.slug}-{name}" if parent else name) or "category"))
    if parent is None:
        raise RowError("category", "required")
    return parent


def _brand(name: str) -> Brand | None:
    if not name:
        return None
    brand = Brand.objects.filter(name__iexact=name).first()
    return brand or Brand.objects.create(name=name, slug=_free_slug(Brand, slugify(name) or "brand"))


def _free_slug(model, base: str) -> str:
    """`base`, or `base-2`, `base-3`, ... where another row took it ("Levi's" and "Levis" are two brands)."""
    base = base[:110]
    slug, n = base, 1
    while model.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def _price(row: dict) -> Decimal:
    try:
        price = Decimal(_text(row, "price", required=True))
    except InvalidOperation as exc:
        raise RowError("price", f"not a number: {row.get('price')!r}") from exc
    if not price.is_finite():
        raise RowError("price", f"not a number: {row.get('price')!r}")
    if price < 0 or price.as_tuple().exponent < -2 or price >= Decimal("1e8"):
        raise RowError("price", "must be between 0 and 99999999.99 with at most 2 decimals")
    return price


def _stock(row: dict) -> int:
    text = _text(row, "stock") or "0"
    if not re.fullmatch(r"[0-9]+", text, re.ASCII):
        raise RowError("stock", f"not a whole number ≥ 0: {text!r}")
    if int(text) > MAX_STOCK:
        raise RowError("stock", f"more than {MAX_STOCK}")
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


def _given(row: dict, name: str) -> bool:
    """The row gives this column a value (not absent, not an empty cell)."""
    value = row.get(name)
    return value is not None and (not isinstance(value, str) or bool(value.strip()))


def _product_and_handle(text: str, sku: str) -> tuple[Product | None, str]:
    """The product the row's handle (or SKU) names, and its handle: a slug that keeps letters of any
    script, so two handles do not fold into one (`платье` and `рубашка` are not both empty), nor are cut
    short. A product imported before (accents and other scripts dropped, cut to 100 characters: `Jupe
    été` was `jupe-ete`) is found under that handle and keeps it, when the row's SKU is one of its
    variants: a product whose own handle is `jupe-ete` is another product, not to be written over."""
    handle = slugify(text, allow_unicode=True)
    product = Product.objects.filter(handle=handle).first() if handle and len(handle) <= 100 else None
    earlier = slugify(text)[:100]
    if product is None and earlier and earlier != handle:
        product = Product.objects.filter(handle=earlier).first()
        if product is not None and not product.variants.filter(sku=sku).exists():
            raise RowError("handle", f"{text!r} may be the product stored as {earlier!r} (imported before "
                                     "handles kept accents and length) or a new one, and that product has no "
                                     f"variant {sku!r}: use the handle {earlier!r} to update it, or another "
                                     "handle for a new product")
    if product is not None:
        return product, product.handle
    if not handle:
        raise RowError("handle", f"no letter or digit to make a handle of: {text!r}")
    if len(handle) > 100:
        raise RowError("handle", "longer than 100 characters")
    return None, handle


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


def _import_row(row: dict, loader: ImageLoader, handles: dict[str, tuple[str, int]] | None = None,
                number: int = 0, saved: list[str] | None = None) -> Counter:
    """Import one row. `handles`: the handles this import made so far, with the text and row each came
    from; another text that makes the same handle (`TEE/M` after `TEE.M`: both `teem`) is this row's
    error, not an update of that row's product."""
    counts: Counter = Counter()
    if not isinstance(row, dict):
        raise RowError("", "a row must be an object")
    sku = _text(row, "sku", required=True, max_length=64)
    text = _text(row, "handle") or sku
    product, handle = _product_and_handle(text, sku)
    first_text, first_row = (handles or {}).get(handle, (text.casefold(), number))
    if first_text != text.casefold():
        raise RowError("handle", f"{text!r} makes the handle {handle!r}, as row {first_row}'s does: "
                                 "give the two products handles that differ in letters or digits")
    price, stock = _price(row), _stock(row)
    currency = (_text(row, "currency") or "EUR").upper()
    if len(currency) != 3 or not currency.isalpha():
        raise RowError("currency", f"not an ISO 4217 code: {currency!r}")
    if product is None:
        product = Product.objects.create(
            handle=handle,
            title=_text(row, "title", required=True, max_length=200),
            description=_text(row, "description"),
            brand=_brand(_text(row, "brand", max_length=100)),
            category=_category(_text(row, "category", required=True)),
            attributes=_attributes(row),
            active=_active(row),
        )
        counts["products_created"] += 1
    elif _text(row, "title"):  # the row carries the product's fields: those it gives change
        product.title = _text(row, "title", max_length=200)
        if _given(row, "description"):
            product.description = _text(row, "description")
        if _given(row, "brand"):
            product.brand = _brand(_text(row, "brand", max_length=100))
        if _given(row, "category"):
            product.category = _category(_text(row, "category"))
        if _given(row, "attributes"):
            product.attributes = _attributes(row)
        if _given(row, "active"):
            product.active = _active(row)
        product.save()
        counts["products_updated"] += 1
    variant = Variant.objects.filter(sku=sku).first()
    options = {name: _text(row, name) for name in ("size", "color") if _given(row, name)}
    if variant is None:
        Variant.objects.create(sku=sku, product=product, options=options, price=price, currency=currency, stock=stock)
    elif variant.product_id != product.id:  # a SKU copied onto another row, or a handle changed
        raise RowError("sku", f"{sku!r} is a variant of the product {variant.product.handle!r}, not of "
                              f"{handle!r}: a SKU names one variant of one product (move it in the admin)")
    else:
        variant.price = price
        variant.options = {**variant.options, **options}
        if _given(row, "currency"):
            variant.currency = currency
        if _given(row, "stock"):
            variant.stock = stock
        variant.save()
    counts["variants"] += 1

    known = set(product.images.values_list("sha256", flat=True))
    fetched = set(product.images.exclude(source="").values_list("source", flat=True))
    for source in _image_sources(row):
        if source in fetched:
            continue  # imported from this URL before: not downloaded again (nor refused if it is gone)
        data, name = loader.load(source)
        try:
            vision_adapter.decode(data)
        except vision_adapter.ImageRejected as exc:
            raise RowError("images", f"{source}: {exc.code}: {exc}") from exc
        if hashlib.sha256(data).hexdigest() in known:
            continue  # the same picture imported again
        image = ProductImage(product=product, position=len(known), is_primary=not known,
                             source=source if "://" in source else "")
        image.image.save(name or "image.jpg", ContentFile(data), save=False)
        if saved is not None:
            saved.append(image.image.name)
        image.save()
        known.add(image.sha256)
        counts["images"] += 1
    if handles is not None:
        handles.setdefault(handle, (text.casefold(), number))  # a row that failed made no product
    return counts


def catalog_import(
    *, rows: Iterable[dict], base_dir: Path | None = None, policy: FetchPolicy = FetchPolicy(), progress=None
) -> ImportReport:
    """Import rows; each in its own savepoint, so a bad row is reported and the others stay."""
    report = ImportReport()
    loader = ImageLoader(base_dir=base_dir, policy=policy)
    handles: dict[str, tuple[str, int]] = {}
    for number, row in enumerate(rows, start=1):
        report.rows += 1
        saved: list[str] = []  # picture files the row wrote: a refused row takes them with it
        try:
            with transaction.atomic():
                counts = _import_row(row, loader, handles, number, saved)
        except RowError as exc:
            report.errors.append({"row": number, "field": exc.field, "error": exc.message})
            files_delete_after_commit(names=saved)  # recorded; deleted once a surrounding transaction commits
        except (IntegrityError, DataError, ValueError, ArithmeticError) as exc:
            # what the checks above did not foresee is still this row's error, not the end of the import
            # (its savepoint is rolled back; the database being unavailable stops it)
            logger.warning("import row %s refused: %s: %s", number, type(exc).__name__, exc)
            report.errors.append({"row": number, "field": "", "error": f"{type(exc).__name__}: {exc}"})
            files_delete_after_commit(names=saved)  # recorded; deleted once a surrounding transaction commits
        else:
            for name, value in counts.items():
                setattr(report, name, getattr(report, name) + value)
        if progress is not None:
            progress.update(1)
    return report

