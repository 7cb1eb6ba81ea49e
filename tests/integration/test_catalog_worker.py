"""A product saved in admin becomes searchable through a real vision worker on Redis."""

import time

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile

from catalog.models import ImageEmbedding, Product
from catalog.search import search_by_picture
from shop import vision_adapter
from tests.catalog import factories
from tests.conftest import REDIS_TEST_BROKER, TEST_MODEL_KEY, celery_publishing_to, wait_until

pytestmark = pytest.mark.integration


def test_a_product_saved_in_admin_is_found_after_the_vision_worker_indexes_it(client, worker_process):
    user = get_user_model().objects.create_superuser("merch", "merch@example.com", "a-long-password-1")
    client.force_login(user)
    category = factories.category("Skirts")
    for color in ("blue", "yellow"):  # other products already indexed
        factories.product(color=color, shape="skirt", category_=category)
    picture = factories.picture_bytes(shape="skirt", color="red", pattern="checks", second="white", seed=5)
    env = {"CELERY_BROKER_URL": REDIS_TEST_BROKER, "VISION_MODEL": TEST_MODEL_KEY}
    with worker_process(env, queues="vision") as worker, celery_publishing_to(REDIS_TEST_BROKER):
        saved_at = time.monotonic()
        response = client.post(
            "/admin/catalog/product/add/",
            {
                "title": "Checked red skirt",
                "category": category.pk,
                "attributes": "{}",
                "active": "on",
                "variants-TOTAL_FORMS": "1",
                "variants-INITIAL_FORMS": "0",
                "variants-0-sku": "CRS-S",
                "variants-0-options": "{}",
                "variants-0-price": "49.00",
                "variants-0-currency": "EUR",
                "variants-0-stock": "2",
                "images-TOTAL_FORMS": "1",
                "images-INITIAL_FORMS": "0",
                "images-0-image": SimpleUploadedFile("skirt.jpg", picture, content_type="image/jpeg"),
                "images-0-position": "0",
            },
        )
        assert response.status_code == 302
        product = Product.objects.get(title="Checked red skirt")

        def found():
            assert worker.poll() is None, worker.log_path.read_text()
            _, hits = search_by_picture(picture=vision_adapter.decode(picture).image, k=1)
            return hits and hits[0].product.id == product.id

        wait_until(found, timeout=120, interval=0.25, message="the saved product to be searchable")
        elapsed = time.monotonic() - saved_at
    print(f"saved in admin -> searchable in {elapsed:.1f}s")
    # Every image of the catalog, including the two made before the worker started, is indexed once.
    assert ImageEmbedding.objects.filter(model_key=TEST_MODEL_KEY).count() == 3
    assert product.images.get().index_state == "indexed"
