"""Search by picture: the one path shared by the API, the scan worker and admin's "try a photo"."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from catalog.models import Product
from catalog.selectors import SearchFilters, SimilarProduct, active_model_key, products_by_ids, search_similar
from shop import vision_adapter
from shop.core.timing import StageTimer


@dataclass(frozen=True)
class ProductHit:
    product: Product
    score: float
    image_id: int
    rank: int


def min_score_for(model_key: str) -> float:
    """The "confident match" threshold of a model key (SCAN_MIN_SCORE, per key or "*" for all)."""
    thresholds = settings.SCAN_MIN_SCORE
    return thresholds.get(model_key, thresholds.get("*", 0.0))


def hits_for(similar: list[SimilarProduct]) -> list[ProductHit]:
    products = products_by_ids([s.product_id for s in similar])
    return [
        ProductHit(product=products[s.product_id], score=s.score, image_id=s.image_id, rank=rank)
        for rank, s in enumerate(similar, start=1)
        if s.product_id in products
    ]


def _search(vector, model_key: str, k: int, filters: SearchFilters | None) -> list[SimilarProduct]:
    return search_similar(vector=vector, model_key=model_key, k=k, filters=filters, ef_search=settings.SEARCH_EF_SEARCH)


def search_by_vector(*, vector, model_key: str, k: int = 10, filters: SearchFilters | None = None) -> list[ProductHit]:
    return hits_for(_search(vector, model_key, k, filters))


def search_by_picture(*, picture, k: int = 10, filters: SearchFilters | None = None) -> tuple[str, list[ProductHit]]:
    """A product-like picture (one item): its main item against the catalog, with the active model."""
    key = active_model_key()
    vector = vision_adapter.get_embedder(key).embed_images([vision_adapter.main_item_view(picture)])[0]
    return key, search_by_vector(vector=vector, model_key=key, k=k, filters=filters)


@dataclass
class PhotoItem:
    """An item found in a photo and the products nearest to it."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of the photo
    category: str
    score: float
    whole_image: bool
    colors: list[dict]
    matches: list[SimilarProduct]  # best first
    confident: bool  # the best match reached the model's threshold


def search_photo(
    *, picture, filters: SearchFilters | None = None, k: int | None = None, timer: StageTimer | None = None
) -> tuple[list[PhotoItem], str, bool]:
    """Shop the look: detect the items of a photo, embed each (masked onto a studio background, as
    catalog pictures are indexed) and search the catalog for each. Returns (items, model key, pretrained)."""
    timer = timer or StageTimer()
    k = k or settings.SCAN_RESULTS_PER_ITEM
    key = active_model_key()
    embedder = vision_adapter.get_embedder(key)
    with timer.stage("detect"):
        detected = vision_adapter.detect(picture, embedder=embedder, max_items=settings.SCAN_MAX_ITEMS)
    with timer.stage("colors"):
        colors = [
            [
                {"name": c.name, "hex": c.hex, "share": round(c.share, 3)}
                for c in vision_adapter.dominant_colors(picture, box=d.box, mask=d.mask)
            ]
            for d in detected
        ]
    with timer.stage("embed"):
        vectors = embedder.embed_images([vision_adapter.item_crop(picture, d.box, d.mask) for d in detected])
    threshold = min_score_for(key)
    items = []
    with timer.stage("knn"):
        for found, item_colors, vector in zip(detected, colors, vectors, strict=True):
            matches = _search(vector, key, k, filters)
            x0, y0, x1, y1 = found.box
            items.append(
                PhotoItem(
                    box=(
                        round(x0 / picture.width, 4),
                        round(y0 / picture.height, 4),
                        round(x1 / picture.width, 4),
                        round(y1 / picture.height, 4),
                    ),
                    category=found.category,
                    score=round(float(found.score), 4),
                    whole_image=found.whole_image,
                    colors=item_colors,
                    matches=matches,
                    confident=bool(matches) and matches[0].score >= threshold,
                )
            )
    return items, key, bool(embedder.pretrained)
