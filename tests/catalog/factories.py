"""Catalog objects for tests, with real pictures drawn by the demo generator."""

from __future__ import annotations

import itertools

from django.core.files.base import ContentFile

from catalog.demo import DemoLook, draw_product, jpeg_bytes
from catalog.models import Brand, Category, Product, ProductImage, Variant

_counter = itertools.count(1)


def picture_bytes(shape="tshirt", color="red", pattern="solid", second="white", seed=1) -> bytes:
    return jpeg_bytes(draw_product(DemoLook(shape, color, second, pattern, 0.9), seed=seed))


def category(name="Tops", parent=None) -> Category:
    slug = f"{name.lower()}-{next(_counter)}"
    return Category.objects.create(name=name, slug=slug, parent=parent)


def product(*, title=None, category_=None, brand=None, price="19.99", stock=5, color="red", images=1, **look):
    n = next(_counter)
    item = Product.objects.create(
        title=title or f"product {n}",
        category=category_ or category(),
        brand=brand,
        handle=f"p-{n}",
    )
    Variant.objects.create(product=item, sku=f"SKU-{n}", price=price, stock=stock, options={"color": color})
    for position in range(images):
        image = ProductImage(product=item, position=position, is_primary=position == 0)
        data = picture_bytes(color=color, seed=n * 10 + position, **look)
        image.image.save(f"p{n}-{position}.jpg", ContentFile(data), save=False)
        image.save()
    return item


def brand(name="Northwind") -> Brand:
    return Brand.objects.get_or_create(name=name, defaults={"slug": name.lower()})[0]
