import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from catalog.models import ImageEmbedding, Product, ProductImage
from catalog.search import search_by_vector
from catalog.selectors import active_model_key, product_index_status
from catalog.tasks import index_dirty_images
from tests.catalog import factories
from tests.conftest import TEST_MODEL_KEY


def _admin_add_product(client, category, picture: bytes, title="Red linen shirt"):
    data = {
        "title": title,
        "description": "",
        "category": category.pk,
        "brand": "",
        "attributes": "{}",
        "active": "on",
        "variants-TOTAL_FORMS": "1",
        "variants-INITIAL_FORMS": "0",
        "variants-0-sku": "RLS-M",
        "variants-0-options": '{"size": "M", "color": "red"}',
        "variants-0-price": "39.90",
        "variants-0-currency": "EUR",
        "variants-0-stock": "4",
        "images-TOTAL_FORMS": "1",
        "images-INITIAL_FORMS": "0",
        "images-0-image": SimpleUploadedFile("shirt.jpg", picture, content_type="image/jpeg"),
        "images-0-position": "0",
        "images-0-is_primary": "on",
    }
    return client.post("/admin/catalog/product/add/", data)


def test_an_image_saved_through_admin_gets_a_vector_once(staff):
    category = factories.category("Shirts")
    response = _admin_add_product(staff, category, factories.picture_bytes(color="red"))
    assert response.status_code == 302, response.content.decode()[:2000]
    product = Product.objects.get(title="Red linen shirt")
    image = product.images.get()
    assert image.index_state == ProductImage.IndexState.PENDING
    assert len(image.sha256) == 64
    assert product_index_status(product=product).state == "pending"

    assert index_dirty_images() == 1
    embedding = ImageEmbedding.objects.get(image=image)
    assert embedding.model_key == TEST_MODEL_KEY == active_model_key()
    assert len(embedding.embedding) == 512
    assert embedding.sha256 == image.sha256
    image.refresh_from_db()
    assert image.index_state == ProductImage.IndexState.INDEXED
    assert product_index_status(product=product).state == "indexed"

    # Running the task again, or indexing the same image again, writes nothing new.
    assert index_dirty_images() == 0
    from catalog.indexing import index_images

    result = index_images(image_ids=[image.id], model_keys=[TEST_MODEL_KEY])
    assert (result.embedded, result.skipped) == (0, 1)
    assert ImageEmbedding.objects.filter(image=image).count() == 1


def test_an_image_saved_while_the_broker_is_down_is_indexed_by_the_sweep(staff, monkeypatch, caplog,
                                                                         django_capture_on_commit_callbacks):
    from django.conf import settings
    from kombu.exceptions import OperationalError

    def broker_down(*args, **kwargs):
        raise OperationalError("[Errno 111] Connection refused")

    monkeypatch.setattr(index_dirty_images, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        response = _admin_add_product(staff, factories.category("Shirts"), factories.picture_bytes(color="red"))
    assert response.status_code == 302 and "indexing not queued" in caplog.text
    image = Product.objects.get(title="Red linen shirt").images.get()
    assert image.index_state == ProductImage.IndexState.PENDING
    sweep = settings.CELERY_BEAT_SCHEDULE["index-dirty-images"]
    assert sweep["task"] == index_dirty_images.name
    assert index_dirty_images() == 1  # what beat sends


def test_admin_rejects_a_file_that_is_not_a_picture(staff):
    category = factories.category("Shirts")
    response = _admin_add_product(staff, category, b"<svg xmlns='http://www.w3.org/2000/svg'/>")
    assert response.status_code == 200
    assert "Not a usable picture" in response.content.decode()
    assert not Product.objects.exists()


def test_a_new_file_on_an_image_marks_it_dirty_and_replaces_its_vector(db):
    product = factories.product(color="red")
    index_dirty_images()
    image = product.images.get()
    old_vector = ImageEmbedding.objects.get(image=image).embedding

    image.image.save("blue.jpg", io.BytesIO(factories.picture_bytes(color="blue")), save=False)
    image.save()
    assert image.index_state == ProductImage.IndexState.PENDING
    index_dirty_images()
    embedding = ImageEmbedding.objects.get(image=image)
    assert embedding.sha256 == image.sha256
    assert list(embedding.embedding) != list(old_vector)


def test_an_unreadable_picture_is_marked_failed_with_the_reason(db):
    product = factories.product()
    image = product.images.get()
    with image.image.open("wb") as f:
        f.write(b"\xff\xd8\xff\xe0 truncated")
    index_dirty_images()
    image.refresh_from_db()
    assert image.index_state == ProductImage.IndexState.FAILED
    assert image.index_error
    status = product_index_status(product=product)
    assert status.state == "failed" and status.error == image.index_error


def test_a_busy_storage_leaves_a_picture_pending_and_a_refused_one_fails_alone(db, monkeypatch):
    """S3 answering SlowDown (after botocore's own retries), or refusing credentials or access (a
    deploy's IAM mistake, mended later), is not the picture's fault: it stays pending for the next run.
    A picture whose storage class cannot be read (InvalidObjectState) fails alone, not its batch."""
    from botocore.exceptions import ClientError
    from django.core.files.storage import storages

    busy, denied, refused, fine = (factories.product(title=title).images.get()
                                   for title in ("Busy", "Denied", "Refused", "Fine"))
    storage_class = type(storages["default"])
    real_open = storage_class.open
    answers = {busy.image.name: ("SlowDown", 503), denied.image.name: ("AccessDenied", 403),
               refused.image.name: ("InvalidObjectState", 403)}

    def s3_open(storage, name, mode="rb"):
        if name in answers:
            code, status = answers[name]
            raise ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")
        return real_open(storage, name, mode)

    with monkeypatch.context() as patched:
        patched.setattr(storage_class, "open", s3_open)
        index_dirty_images()
    for image in (busy, denied, refused, fine):
        image.refresh_from_db()
    assert fine.index_state == ProductImage.IndexState.INDEXED
    assert refused.index_state == ProductImage.IndexState.FAILED and "InvalidObjectState" in refused.index_error
    for image in (busy, denied):
        assert image.index_state == ProductImage.IndexState.PENDING and not ImageEmbedding.objects.filter(image=image)
    index_dirty_images()  # the storage answers again
    for image in (busy, denied):
        image.refresh_from_db()
        assert image.index_state == ProductImage.IndexState.INDEXED and ImageEmbedding.objects.filter(image=image)


def test_deleting_an_image_or_a_product_removes_its_vectors(db):
    first, second = factories.product(images=2), factories.product()
    index_dirty_images()
    assert ImageEmbedding.objects.count() == 3
    first.images.first().delete()
    assert ImageEmbedding.objects.filter(image__product=first).count() == 1
    first.delete()
    assert list(ImageEmbedding.objects.values_list("image__product", flat=True)) == [second.id]


def test_reindex_action_queues_and_rebuilds(staff):
    product = factories.product()
    index_dirty_images()
    response = staff.post(
        "/admin/catalog/product/", {"action": "reindex", "_selected_action": [product.pk]}, follow=True
    )
    assert "1 images queued for indexing" in response.content.decode()
    assert product.images.get().index_state == ProductImage.IndexState.PENDING
    # Until the worker has embedded it again, the product is still found with its vector as it was.
    before = ImageEmbedding.objects.get(image__product=product)
    assert search_by_vector(vector=before.embedding, model_key=before.model_key)[0].product.id == product.id
    index_dirty_images()
    assert product_index_status(product=product).state == "indexed"
    after = ImageEmbedding.objects.get(image__product=product)
    assert after.sha256 == product.images.get().sha256 and after.created_at > before.created_at


def test_product_list_shows_index_status_and_model(staff):
    factories.product(title="Indexed tee")
    index_dirty_images()
    factories.product(title="Waiting tee")
    page = staff.get("/admin/catalog/product/").content.decode()
    assert "indexed (1/1, color-texture-v1)" in page
    assert "pending (0/1, color-texture-v1)" in page
    assert "Search model: <strong>color-texture-v1</strong>" in page


def test_reindex_all_replaces_vectors_in_place_and_a_run_cut_short_loses_none(db, monkeypatch):
    """`reindex --all` deleted every vector of the key first: search found nothing until it finished,
    and a run cut short left pictures marked indexed without a vector, never embedded again."""
    import pytest

    import catalog.management.commands.reindex as reindex

    products = [factories.product(), factories.product()]
    index_dirty_images()
    key = active_model_key()
    before = dict(ImageEmbedding.objects.filter(model_key=key).values_list("image_id", "created_at"))
    assert len(before) == 2

    def cut_short(**kwargs):
        raise KeyboardInterrupt  # Ctrl-C, a deploy, the OOM killer

    with monkeypatch.context() as patched:
        patched.setattr(reindex, "index_images", cut_short)
        with pytest.raises(KeyboardInterrupt):
            call_command("reindex", "--all", verbosity=0)
    assert dict(ImageEmbedding.objects.filter(model_key=key).values_list("image_id", "created_at")) == before

    call_command("reindex", "--all", "--batch-size", "1", verbosity=0)
    after = dict(ImageEmbedding.objects.filter(model_key=key).values_list("image_id", "created_at"))
    assert set(after) == set(before) and all(after[i] > before[i] for i in before)  # each one written again
    assert all(product_index_status(product=p).state == "indexed" for p in products)


class _CutShort:
    """An embedder whose task runs out of time in the middle of a batch."""
    pretrained = False

    def embed_images(self, pictures):
        from celery.exceptions import SoftTimeLimitExceeded

        raise SoftTimeLimitExceeded()


def test_a_batch_cut_short_by_the_tasks_time_limit_stays_pending_not_failed(db, monkeypatch):
    """The soft time limit is an Exception: it was caught as the model's failure, and the batch's
    pictures were failed for good (the sweep only looks at pending ones): out of search until re-indexed."""
    import pytest
    from celery.exceptions import SoftTimeLimitExceeded

    from shop import vision_adapter

    image = factories.product().images.get()
    with monkeypatch.context() as patched:
        patched.setattr(vision_adapter, "get_embedder", lambda key=None: _CutShort())
        with pytest.raises(SoftTimeLimitExceeded):
            index_dirty_images()
    image.refresh_from_db()
    assert image.index_state == ProductImage.IndexState.PENDING and not image.index_error
    assert index_dirty_images() == 1  # the next run embeds it


@pytest.mark.parametrize("load_error", ["weights", "out of memory"])
def test_a_worker_without_the_models_weights_leaves_pictures_pending(db, monkeypatch, load_error):
    """A worker deployed before its weights, or one whose model does not build (out of memory), fails
    no picture: the pictures are fine, and once the model loads the sweep indexes them. (A model that
    did not build failed every picture of the batch for good.)"""
    from shop import vision_adapter

    image = factories.product().images.get()

    def no_weights(key=None):
        if load_error == "weights":
            raise vision_adapter.WeightsUnavailable("clip-vit-b-32: VISION_WEIGHTS_PATH=/opt/models/x.pt does not exist")
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: not enough memory")

    import catalog.indexing

    read = []
    with monkeypatch.context() as patched:
        patched.setattr(vision_adapter, "get_embedder", no_weights)
        patched.setattr(catalog.indexing, "_load_pictures", lambda images, result: read.extend(images) or {})
        assert index_dirty_images() == 0
        with pytest.raises(CommandError, match="cannot be used in this process, the pictures left stay pending"):
            call_command("reindex", verbosity=0)  # said, not "0 pictures embedded, 0 failed"
    assert read == []  # no picture read from storage for nothing (the sweep would read them all every 10 min)
    image.refresh_from_db()
    assert image.index_state == ProductImage.IndexState.PENDING and not image.index_error
    assert index_dirty_images() == 1


class _Wrapped:
    """The real embedder, with something happening when it embeds."""

    def __init__(self, embedder, before):
        self._embedder, self._before = embedder, before

    def __getattr__(self, name):
        return getattr(self._embedder, name)

    def embed_images(self, pictures):
        self._before()
        return self._embedder.embed_images(pictures)


def test_a_worker_out_of_memory_while_embedding_fails_no_picture(db, monkeypatch):
    """Memory short on the worker (PyTorch's allocator) failed the batch's pictures for good: the
    sweep looks at pending ones only, so 16 products stayed out of search until re-indexed by hand."""
    from shop import vision_adapter

    images = [factories.product().images.get() for _ in range(2)]
    real = vision_adapter.get_embedder

    def out_of_memory():
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: not enough memory: "
                           "you tried to allocate 9437184 bytes.")

    with monkeypatch.context() as patched:
        patched.setattr(vision_adapter, "get_embedder", lambda key=None: _Wrapped(real(key), out_of_memory))
        assert index_dirty_images() == 0
    assert {ProductImage.objects.get(id=image.id).index_state for image in images} == {ProductImage.IndexState.PENDING}
    assert index_dirty_images() == 2


def test_a_product_deleted_while_its_picture_is_embedded_stops_nothing(transactional_db, monkeypatch):
    """Its vector's insert failed the whole run at the commit: the other pictures of the batch got no
    vector, and the continuation was never sent."""
    from shop import vision_adapter

    doomed, kept = factories.product(), factories.product()
    ImageEmbedding.objects.all().delete()  # indexed at once when saved (on commit, eager here): again, pending
    ProductImage.objects.update(index_state=ProductImage.IndexState.PENDING)
    real = vision_adapter.get_embedder
    with monkeypatch.context() as patched:
        patched.setattr(vision_adapter, "get_embedder",
                        lambda key=None: _Wrapped(real(key), lambda: Product.objects.filter(pk=doomed.pk).delete()))
        assert index_dirty_images() == 1
    assert kept.images.get().index_state == ProductImage.IndexState.INDEXED
    assert ImageEmbedding.objects.filter(image__product=kept).count() == 1 and ImageEmbedding.objects.count() == 1


def test_a_backlog_longer_than_a_tasks_time_is_continued_by_the_next_run(db, settings, monkeypatch):
    """A run stops starting batches past half its soft time limit and sends its continuation; before,
    it ran on into the limit (and a back-fill was killed there, never resumed)."""
    settings.INDEX_BATCH_SIZE = 2
    settings.VISION_TASK_SOFT_TIME_LIMIT = 0  # every run is past its time after its first batch
    images = [factories.product().images.get() for _ in range(5)]
    sent = []
    monkeypatch.setattr(index_dirty_images, "delay", lambda *args: sent.append(args))
    assert index_dirty_images() == 2
    assert len(sent) == 1
    while sent:
        index_dirty_images(*sent.pop())
    assert all(ProductImage.objects.get(id=image.id).index_state == ProductImage.IndexState.INDEXED
               for image in images)


def test_a_back_fill_is_continued_and_a_lost_one_resumed_by_the_sweep(db, settings, monkeypatch):
    from catalog.models import EmbeddingModel
    from catalog.tasks import backfill_model, resume_backfills

    [factories.product().images.get() for _ in range(3)]
    index_dirty_images()
    EmbeddingModel.objects.create(key="tiny-test", dim=vision_adapter_dim("tiny-test"), index_name="x")
    settings.INDEX_BATCH_SIZE = 2
    settings.VISION_TASK_SOFT_TIME_LIMIT = 0
    sent = []
    monkeypatch.setattr(backfill_model, "delay", lambda *args: sent.append(args))
    assert resume_backfills() == 1 and sent == [("tiny-test",)]  # its message was lost: the sweep sends it
    assert backfill_model(*sent.pop()) == 2
    (continuation,) = sent
    assert continuation[0] == "tiny-test"
    assert backfill_model(*sent.pop()) == 1 and not sent
    assert ImageEmbedding.objects.filter(model_key="tiny-test").count() == 3
    assert resume_backfills() == 0


def vision_adapter_dim(key):
    from shop import vision_adapter

    return vision_adapter.model_dim(key)


def test_only_one_indexing_run_at_a_time(db):
    """Each committed import row queues a run: they all embedded the same lowest pending pictures."""
    from django.db import connections

    from catalog.tasks import _INDEXING_LOCK

    image = factories.product().images.get()
    other = connections.create_connection("default")  # another worker's run, in progress
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, 0)", [_INDEXING_LOCK])
        assert index_dirty_images() == 0
        image.refresh_from_db()
        assert image.index_state == ProductImage.IndexState.PENDING
    finally:
        other.close()  # its lock goes with its connection
    assert index_dirty_images() == 1


def test_the_product_list_asks_as_many_queries_for_50_products_as_for_5(staff):
    """The index status column asked the vectors of each row's pictures: 100 more queries a page."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def page_queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert staff.get("/admin/catalog/product/").status_code == 200
        return len(captured)

    for _ in range(5):
        factories.product()
    index_dirty_images()
    few = page_queries()
    for _ in range(45):
        factories.product()
    index_dirty_images()
    page = staff.get("/admin/catalog/product/").content.decode()
    assert page.count("indexed (1/1, color-texture-v1)") == 50
    assert page_queries() == few


def test_the_product_list_prices_name_their_currency(staff):
    """The price column showed "9.00–1500.00" for a product sold at 9 USD and 1,500 JPY."""
    from catalog.models import Variant

    euros = factories.product(price="19.99")
    Variant.objects.create(product=euros, sku=f"{euros.handle}-b", price="25.00", options={"color": "blue"})
    mixed = factories.product(price="9.00")
    mixed.variants.update(currency="USD")
    Variant.objects.create(product=mixed, sku=f"{mixed.handle}-b", price="1500.00", currency="JPY")

    page = staff.get("/admin/catalog/product/").content.decode()

    assert "19.99–25.00 EUR" in page
    assert "in JPY, USD" in page and "9.00–1500.00" not in page
