"""Staff input the admin used to turn into a 500: each is now an answer a merchandiser can act on."""

from datetime import timedelta

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from catalog.models import Product
from tests.catalog import factories


def test_a_date_drill_down_past_the_calendar_is_the_admins_bad_lookup_page(admin_client):
    for query in ("created_at__year=9999", "created_at__year=9999&created_at__month=12",
                  "created_at__year=2026&created_at__month=13"):
        response = admin_client.get(f"/admin/carts/order/?{query}")
        assert response.status_code == 302 and response["Location"].endswith("?e=1"), query
    assert admin_client.get("/admin/carts/order/?e=1").status_code == 200
    today = timezone.localdate() - timedelta(days=1)
    assert admin_client.get(f"/admin/carts/order/?created_at__year={today.year}").status_code == 200


def test_a_search_for_a_nul_is_a_400_not_a_500(admin_client):
    for path in ("/admin/catalog/product/", "/admin/carts/order/", "/admin/shoppers/shopper/"):
        response = admin_client.get(path + "?q=%00")
        assert response.status_code == 400 and response.json()["code"] == "null_character", path
    assert admin_client.get("/admin/catalog/product/?q=shirt").status_code == 200


def test_json_with_a_nul_is_the_forms_error_and_nothing_is_saved(admin_client):
    category = factories.category("Shirts")
    data = {
        "title": "Red linen shirt", "description": "", "category": category.pk, "brand": "",
        "attributes": '{"material": "linen\\u0000"}', "active": "on",
        "variants-TOTAL_FORMS": "1", "variants-INITIAL_FORMS": "0", "variants-0-sku": "RLS-M",
        "variants-0-options": '{"size": "M", "color\\u0000": "red"}', "variants-0-price": "39.90",
        "variants-0-currency": "EUR", "variants-0-stock": "4",
        "images-TOTAL_FORMS": "1", "images-INITIAL_FORMS": "0", "images-0-position": "0", "images-0-is_primary": "on",
        "images-0-image": SimpleUploadedFile("shirt.jpg", factories.picture_bytes(color="red"), content_type="image/jpeg"),
    }  # fmt: skip
    response = admin_client.post("/admin/catalog/product/add/", data)
    assert response.status_code == 200
    assert response.content.decode().count("may not hold a NUL character") == 2
    assert not Product.objects.exists()
