import io
from datetime import timedelta

from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from catalog.models import Category, ImageEmbedding, Product, ProductImage
from shop import vision_adapter
from vision.synthetic import place_on_background


def test_seed_demo_builds_an_indexed_catalog_of_300_products_in_15_categories(db):
    call_command("seed_demo", verbosity=0)
    assert Product.objects.count() >= 300
    leaf_categories = Category.objects.filter(children__isnull=True, products__isnull=False).distinct()
    assert leaf_categories.count() >= 15
    assert not ProductImage.objects.exclude(index_state="indexed").exists()
    assert ImageEmbedding.objects.count() == ProductImage.objects.count()
    colors = {v["color"] for p in Product.objects.all()[:50] for v in p.variants.values_list("options", flat=True)}
    assert len(colors) > 5
    # ... and 60 days of marketing history that the ROI report turns into figures.
    from django.utils import timezone

    from shop.campaigns.models import AdCreative, Campaign
    from shop.campaigns.reports import CampaignRoiReport

    assert Campaign.objects.count() == 4
    assert AdCreative.objects.filter(rating__gte=1, features__isnull=False).count() == 12
    today = timezone.localdate()
    totals = [c.total for c in CampaignRoiReport(start=today - timedelta(days=59), end=today).generate()]
    assert all(t.scans > 0 and t.spend > 0 and t.orders > 0 for t in totals)
    assert any(t.roi > 0 for t in totals) and any(t.roi < 0 for t in totals)
    # Loading again when the catalog has products changes nothing.
    before = Product.objects.count()
    call_command("seed_demo", if_empty=True, verbosity=0)
    assert Product.objects.count() == before


def test_try_a_photo_finds_the_product_in_a_photo(staff):
    call_command("seed_demo", per_category=2, no_marketing=True, verbosity=0)
    product = Product.objects.get(handle="demo-handbag-bags-01")
    with product.images.first().image.open("rb") as f:
        shot = vision_adapter.decode(f.read()).image
    photo = place_on_background(shot, seed=4).image
    upload = io.BytesIO()
    photo.save(upload, "JPEG", quality=85)
    response = staff.post(
        "/admin/catalog/product/try-a-photo/",
        {"photo": SimpleUploadedFile("street.jpg", upload.getvalue(), content_type="image/jpeg"), "k": 5},
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "Items found and their top products (color-texture-v1)" in page
    first_item = page[page.index("Item 1:") : page.index("Item 2:")]
    assert product.title in first_item[: first_item.index("#2 ·")]


def test_try_a_photo_rejects_a_non_picture_with_a_message(staff):
    response = staff.post(
        "/admin/catalog/product/try-a-photo/",
        {"photo": SimpleUploadedFile("doc.pdf", b"%PDF-1.4 ...", content_type="image/jpeg"), "k": 5},
    )
    assert response.status_code == 200
    assert "Not a usable picture" in response.content.decode()


def test_models_command_enables_switches_and_drops(transactional_db, capsys):
    call_command("seed_demo", per_category=1, no_marketing=True, verbosity=0)
    images = ProductImage.objects.count()
    call_command("models", "enable", "tiny-test")
    assert ImageEmbedding.objects.filter(model_key="tiny-test").count() == images  # eager back-fill
    call_command("models", "activate", "tiny-test")
    call_command("models", "drop", "color-texture-v1")
    out = capsys.readouterr().out
    assert "search now uses tiny-test" in out
    assert f"* tiny-test            dim 64   vectors {images}/{images}" in out
    assert not ImageEmbedding.objects.filter(model_key="color-texture-v1").exists()
