from rest_framework import serializers

from catalog.models import Product


def absolute_media_url(request, field_file) -> str | None:
    if not field_file:
        return None
    url = field_file.url
    return request.build_absolute_uri(url) if request is not None and url.startswith("/") else url


class ProductCardSerializer(serializers.Serializer):
    """A product as a result card: what the app needs to show it and add a variant to the cart."""

    id = serializers.IntegerField()
    title = serializers.CharField()
    brand = serializers.CharField(source="brand.name", allow_null=True, default=None)
    category = serializers.CharField(source="category.name")
    price = serializers.SerializerMethodField()
    currency = serializers.SerializerMethodField()
    image_url = serializers.SerializerMethodField()
    variants = serializers.SerializerMethodField()

    def _variants(self, product: Product):
        return list(product.variants.all())

    def get_price(self, product: Product) -> str | None:
        prices = [v.price for v in self._variants(product)]
        return str(min(prices)) if prices else None

    def get_currency(self, product: Product) -> str | None:
        variants = self._variants(product)
        return variants[0].currency if variants else None

    def get_image_url(self, product: Product) -> str | None:
        images = list(product.images.all())
        return absolute_media_url(self.context.get("request"), images[0].image) if images else None

    def get_variants(self, product: Product) -> list[dict]:
        return [
            {"id": v.id, "sku": v.sku, "options": v.options, "price": str(v.price), "in_stock": v.stock > 0}
            for v in self._variants(product)
        ]


class ProductHitSerializer(ProductCardSerializer):
    score = serializers.FloatField()
    rank = serializers.IntegerField()

    def to_representation(self, hit):
        card = ProductCardSerializer(hit.product, context=self.context).data
        return {**card, "score": round(hit.score, 4), "rank": hit.rank}
