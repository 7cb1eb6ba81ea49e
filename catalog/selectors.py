"""Reads of the catalog: the active model, index status, and vector search."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
from django.db import connection, transaction
from django.db.models import Exists, Max, Min, OuterRef, Prefetch

from catalog.models import Category, EmbeddingModel, ImageEmbedding, Product, ProductImage, Variant
from shop import vision_adapter

# How many nearest image rows to fetch per wanted product before collapsing to one row per
# product; raised when products have many images or a filter is very selective.
_OVERFETCH = 4
_MAX_ROWS = 2000


def active_model_key() -> str:
    """The key search uses: the active EmbeddingModel, or the VISION_MODEL setting before any is."""
    key = EmbeddingModel.objects.filter(is_active=True).values_list("key", flat=True).first()
    return key or vision_adapter.configured_model_key()


def enabled_model_keys() -> list[str]:
    """Every key whose vectors are kept up to date, the active one first."""
    active = active_model_key()
    others = EmbeddingModel.objects.exclude(key=active).values_list("key", flat=True)
    return [active, *others]


def category_with_descendants(category_ids: list[int]) -> list[int]:
    tree: dict[int | None, list[int]] = {}
    for pk, parent in Category.objects.values_list("id", "parent_id"):
        tree.setdefault(parent, []).append(pk)
    found, stack = set(), list(category_ids)
    while stack:
        pk = stack.pop()
        if pk not in found:
            found.add(pk)
            stack.extend(tree.get(pk, []))
    return sorted(found)


@dataclass(frozen=True)
class SearchFilters:
    category_ids: list[int] = field(default_factory=list)  # each includes its descendants
    brand_ids: list[int] = field(default_factory=list)
    price_min: Decimal | None = None
    price_max: Decimal | None = None
    in_stock: bool = False
    colors: list[str] = field(default_factory=list)  # variant option "color", any of these
    currency: str | None = None  # a variant priced in it (the prices above are in it)
    exclude_product_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class SimilarProduct:
    product_id: int
    image_id: int
    score: float  # cosine similarity, 1 = identical direction


def catalog_currencies() -> list[str]:
    """The currencies the active catalog's variants are priced in, sorted."""
    return sorted(
        Variant.objects.filter(product__active=True).order_by().values_list("currency", flat=True).distinct()
    )


def _filter_sql(filters: SearchFilters, params: dict) -> list[str]:
    where = []
    if filters.category_ids:
        params["category_ids"] = category_with_descendants(filters.category_ids)
        where.append("p.category_id = ANY(%(category_ids)s)")
    if filters.brand_ids:
        params["brand_ids"] = list(filters.brand_ids)
        where.append("p.brand_id = ANY(%(brand_ids)s)")
    if filters.exclude_product_ids:
        params["exclude_ids"] = list(filters.exclude_product_ids)
        where.append("NOT (p.id = ANY(%(exclude_ids)s))")
    variant = []
    if filters.price_min is not None:
        params["price_min"] = filters.price_min
        variant.append("v.price >= %(price_min)s")
    if filters.price_max is not None:
        params["price_max"] = filters.price_max
        variant.append("v.price <= %(price_max)s")
    if filters.currency:
        params["currency"] = filters.currency
        variant.append("v.currency = %(currency)s")
    if filters.in_stock:
        variant.append("v.stock > 0")
    if filters.colors:
        params["colors"] = [c.lower() for c in filters.colors]
        variant.append("lower(v.options->>'color') = ANY(%(colors)s)")
    if variant:
        where.append(
            "EXISTS (SELECT 1 FROM catalog_variant v WHERE v.product_id = p.id AND " + " AND ".join(variant) + ")"
        )
    return where


def search_similar(
    *,
    vector: np.ndarray,
    model_key: str,
    k: int = 10,
    filters: SearchFilters | None = None,
    ef_search: int = 100,
) -> list[SimilarProduct]:
    """The k active products nearest to `vector`, one row per product (its best image).

    The query runs on the model key's partial HNSW index with pgvector's iterative index scan, so a
    selective filter still returns k products whenever k match.
    """
    filters = filters or SearchFilters()
    vector = np.asarray(vector, dtype=np.float32).ravel()
    dim = int(vector.shape[0])
    params: dict = {"model_key": model_key, "query": "[" + ",".join(f"{x:.7g}" for x in vector) + "]"}
    where = ["e.model_key = %(model_key)s", "p.active", *_filter_sql(filters, params)]
    distance = f"(e.embedding::vector({dim}) <=> %(query)s::vector({dim}))"
    sql = f"""
        WITH nearest AS MATERIALIZED (
            SELECT i.product_id, e.image_id, {distance} AS distance
            FROM catalog_imageembedding e
            JOIN catalog_productimage i ON i.id = e.image_id
            JOIN catalog_product p ON p.id = i.product_id
            WHERE {" AND ".join(where)}
            ORDER BY {distance}
            LIMIT %(limit)s
        )
        SELECT DISTINCT ON (product_id) product_id, image_id, distance, (SELECT count(*) FROM nearest)
        FROM nearest ORDER BY product_id, distance
    """
    limit = max(k * _OVERFETCH, 40)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        cursor.execute("SET LOCAL hnsw.ef_search = %s", [max(ef_search, k)])
        while True:
            cursor.execute(sql, {**params, "limit": limit})
            rows = cursor.fetchall()
            fetched = rows[0][3] if rows else 0
            # Fewer distinct products than asked while the row limit was reached: fetch deeper.
            if len(rows) >= k or fetched < limit or limit >= _MAX_ROWS:
                break
            limit = min(limit * 4, _MAX_ROWS)
    rows.sort(key=lambda row: row[2])
    return [SimilarProduct(product_id=r[0], image_id=r[1], score=1.0 - float(r[2])) for r in rows[:k]]


def products_by_ids(product_ids: list[int]) -> dict[int, Product]:
    """Products with their brand, category, variants and images, for result cards."""
    products = (
        Product.objects.filter(id__in=product_ids)
        .select_related("brand", "category")
        .prefetch_related(
            Prefetch("variants", queryset=Variant.objects.order_by("price", "sku")),
            Prefetch("images", queryset=ProductImage.objects.order_by("-is_primary", "position", "id")),
        )
        .annotate(price_min=Min("variants__price"), price_max=Max("variants__price"))
    )
    return {product.id: product for product in products}


@dataclass(frozen=True)
class IndexStatus:
    state: str  # indexed | pending | failed | no images
    model_key: str
    indexed: int
    total: int
    error: str = ""


def images_with_vector_state(*, model_key: str):
    """Pictures annotated with `has_current_vector` for the key (a list page prefetches these, and
    `product_index_status` then asks nothing more per product)."""
    current = ImageEmbedding.objects.filter(image=OuterRef("pk"), model_key=model_key, sha256=OuterRef("sha256"))
    return ProductImage.objects.annotate(has_current_vector=Exists(current))


def product_index_status(*, product: Product, model_key: str | None = None) -> IndexStatus:
    model_key = model_key or active_model_key()
    images = list(product.images.all())
    if not images:
        return IndexStatus("no images", model_key, 0, 0)
    if all(hasattr(image, "has_current_vector") for image in images):  # prefetched for this key
        indexed = sum(image.has_current_vector for image in images)
    else:
        current = set(
            ImageEmbedding.objects.filter(image__in=images, model_key=model_key).values_list("image_id", "sha256")
        )
        indexed = sum((image.id, image.sha256) in current for image in images)
    failed = [image for image in images if image.index_state == ProductImage.IndexState.FAILED]
    if failed:
        return IndexStatus("failed", model_key, indexed, len(images), failed[0].index_error)
    state = "indexed" if indexed == len(images) else "pending"
    return IndexStatus(state, model_key, indexed, len(images))


def index_counts(*, model_key: str) -> dict[str, int]:
    """Images per state for the model key (admin's overview)."""
    total = ProductImage.objects.count()
    embedded = ImageEmbedding.objects.filter(model_key=model_key).count()
    failed = ProductImage.objects.filter(index_state=ProductImage.IndexState.FAILED).count()
    return {"images": total, "embedded": embedded, "failed": failed, "missing": max(total - embedded, 0)}


def images_missing_embeddings(*, model_key: str):
    """Images with no vector for the key, or a vector of older content."""
    current = ImageEmbedding.objects.filter(image=OuterRef("pk"), model_key=model_key, sha256=OuterRef("sha256"))
    return ProductImage.objects.filter(~Exists(current))
