import numpy as np
import pytest
from django.db import connection

from catalog.models import EmbeddingModel, ImageEmbedding, Product
from catalog.search import search_by_picture
from catalog.selectors import SearchFilters, search_similar
from catalog.services import embedding_model_enable, hnsw_index_name
from catalog.tasks import index_dirty_images
from tests.catalog import factories
from tests.conftest import TEST_MODEL_KEY


def _unit(v):
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture
def vector_catalog(transactional_db):
    """600 products with clustered vectors under the test key, its HNSW index built, and 6
    products (1 %) in a category of their own, far from the query's cluster."""
    embedding_model_enable(key=TEST_MODEL_KEY, activate=True)
    rng = np.random.default_rng(3)
    common, rare = factories.category("Common"), factories.category("Rare")
    centre = _unit(rng.normal(size=512))
    far = _unit(-centre + 0.1 * rng.normal(size=512))
    products = []
    for n in range(600):
        in_rare = n % 100 == 0
        product = factories.product(category_=rare if in_rare else common, images=0)
        products.append(product)
        image = product.images.create(image=f"products/fake-{n}.jpg", sha256=f"{n:064d}", index_state="indexed")
        base = far if in_rare else centre
        ImageEmbedding.objects.create(
            image=image, model_key=TEST_MODEL_KEY, embedding=_unit(base + 0.3 * rng.normal(size=512)), sha256=image.sha256
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE catalog_imageembedding")
    return {"centre": centre, "rare": rare, "common": common, "products": products}


def test_the_key_has_its_partial_hnsw_index(vector_catalog):
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", [hnsw_index_name(TEST_MODEL_KEY)])
        (definition,) = cursor.fetchone()
    assert "USING hnsw" in definition
    assert "(embedding)::vector(512)" in definition and "vector_cosine_ops" in definition
    assert f"WHERE ((model_key)::text = '{TEST_MODEL_KEY}'" in definition


def test_a_selective_filter_returns_exactly_k_when_k_exist(vector_catalog):
    query = vector_catalog["centre"]
    rare = vector_catalog["rare"]
    hits = search_similar(vector=query, model_key=TEST_MODEL_KEY, k=5, filters=SearchFilters(category_ids=[rare.id]))
    assert len(hits) == 5
    assert {Product.objects.get(id=h.product_id).category_id for h in hits} == {rare.id}
    # All six exist: asking for ten returns the six, never fewer than exist.
    hits = search_similar(vector=query, model_key=TEST_MODEL_KEY, k=10, filters=SearchFilters(category_ids=[rare.id]))
    assert len(hits) == 6
    unfiltered = search_similar(vector=query, model_key=TEST_MODEL_KEY, k=10)
    assert len(unfiltered) == 10
    assert [h.score for h in unfiltered] == sorted((h.score for h in unfiltered), reverse=True)
    assert rare.id not in {Product.objects.get(id=h.product_id).category_id for h in unfiltered}


def test_price_and_stock_filters_apply_to_variants(vector_catalog):
    products = vector_catalog["products"]
    cheap_in_stock = products[1:4]
    for product in products:
        product.variants.update(price="80.00", stock=0)
    for product in cheap_in_stock:
        product.variants.update(price="12.50", stock=2)
    hits = search_similar(
        vector=vector_catalog["centre"],
        model_key=TEST_MODEL_KEY,
        k=10,
        filters=SearchFilters(price_max=20, in_stock=True),
    )
    assert sorted(h.product_id for h in hits) == sorted(p.id for p in cheap_in_stock)


def test_inactive_products_are_never_returned(vector_catalog):
    hits = search_similar(vector=vector_catalog["centre"], model_key=TEST_MODEL_KEY, k=3)
    Product.objects.filter(id=hits[0].product_id).update(active=False)
    again = search_similar(vector=vector_catalog["centre"], model_key=TEST_MODEL_KEY, k=3)
    assert hits[0].product_id not in {h.product_id for h in again}
    assert len(again) == 3


def test_one_result_per_product_even_when_several_images_match(db):
    red = factories.product(color="red", images=3)
    factories.product(color="blue")
    factories.product(color="green", shape="skirt")
    index_dirty_images()
    picture = red.images.first().image
    with picture.open("rb") as f:
        from shop import vision_adapter

        decoded = vision_adapter.decode(f.read()).image
    key, hits = search_by_picture(picture=decoded, k=3)
    assert key == TEST_MODEL_KEY
    assert [hit.product.id for hit in hits][0] == red.id
    assert len({hit.product.id for hit in hits}) == len(hits) == 3
    assert hits[0].score > 0.99  # the very picture


def test_switching_the_model_key_keeps_search_answering(transactional_db):
    products = [factories.product(color=c) for c in ("red", "blue", "yellow")]
    index_dirty_images()
    query = factories.picture_bytes(color="blue", seed=99)
    from shop import vision_adapter

    picture = vision_adapter.decode(query).image

    # A second key back-fills (eager worker here) while search keeps using the first.
    embedding_model_enable(key="tiny-test")
    assert ImageEmbedding.objects.filter(model_key="tiny-test").count() == 3
    key, hits = search_by_picture(picture=picture, k=3)
    assert key == TEST_MODEL_KEY and hits[0].product.id == products[1].id

    from catalog.services import embedding_model_activate, embedding_model_drop

    embedding_model_activate(key="tiny-test")
    key, hits = search_by_picture(picture=picture, k=3)
    assert key == "tiny-test" and len(hits) == 3

    assert embedding_model_drop(key=TEST_MODEL_KEY) == 3
    assert not ImageEmbedding.objects.filter(model_key=TEST_MODEL_KEY).exists()
    assert list(EmbeddingModel.objects.values_list("key", flat=True)) == ["tiny-test"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_indexes WHERE indexname = %s", [hnsw_index_name(TEST_MODEL_KEY)])
        assert cursor.fetchone()[0] == 0
    key, hits = search_by_picture(picture=picture, k=3)
    assert key == "tiny-test" and len(hits) == 3


def test_the_active_model_cannot_be_dropped(db):
    embedding_model_enable(key=TEST_MODEL_KEY, activate=True)
    from catalog.services import embedding_model_drop

    with pytest.raises(ValueError, match="active"):
        embedding_model_drop(key=TEST_MODEL_KEY)
