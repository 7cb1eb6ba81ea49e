import io

from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from catalog.models import Product
from shop import vision_adapter
from shop.shoppers.services import shopper_register
from vision.synthetic import place_on_background


def jpeg(image, **save) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88, **save)
    return out.getvalue()


def post_scan(client, data: bytes, name="photo.jpg", content_type="image/jpeg", **extra):
    """POST a photo to /api/v1/scans/ as the app does (multipart); `fields=` adds form fields."""
    upload = SimpleUploadedFile(name, data, content_type=content_type)
    return client.post("/api/v1/scans/", {"photo": upload, **extra.pop("fields", {})}, format="multipart", **extra)


def street_photo_of(product: Product, seed: int = 3) -> bytes:
    """A photo made by placing a catalog product's picture on a background."""
    with product.images.first().image.open("rb") as f:
        shot = vision_adapter.decode(f.read()).image
    return jpeg(place_on_background(shot, seed=seed).image)


def new_shopper_client() -> APIClient:
    shopper, token = shopper_register(platform="android")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    client.shopper = shopper
    return client
