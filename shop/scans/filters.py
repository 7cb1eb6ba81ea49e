"""Search filters as the API takes them, as a scan stores them, and as the search selector wants them."""

from __future__ import annotations

from decimal import Decimal

from rest_framework import serializers

from catalog.models import Brand, Category
from catalog.selectors import SearchFilters, catalog_currencies
from shop import vision_adapter


def color_choices() -> tuple[str, ...]:
    return vision_adapter.color_names()


class SearchFiltersSerializer(serializers.Serializer):
    category = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, max_length=20, help_text="category ids (with sub-categories)"
    )
    brand = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, max_length=20)
    price_min = serializers.DecimalField(max_digits=10, decimal_places=2, min_value=Decimal(0), required=False)
    price_max = serializers.DecimalField(max_digits=10, decimal_places=2, min_value=Decimal(0), required=False)
    in_stock = serializers.BooleanField(required=False, default=False)
    color = serializers.ListField(child=serializers.CharField(max_length=20), required=False, max_length=8)
    currency = serializers.RegexField(
        r"^[A-Za-z]{3}$", required=False,
        help_text="ISO 4217 code of the prices in price_min/price_max (needed when the catalog sells in several)",
    )

    def validate_category(self, value):
        missing = set(value) - set(Category.objects.filter(id__in=value).values_list("id", flat=True))
        if missing:
            raise serializers.ValidationError(f"unknown categories: {sorted(missing)}")
        return value

    def validate_brand(self, value):
        missing = set(value) - set(Brand.objects.filter(id__in=value).values_list("id", flat=True))
        if missing:
            raise serializers.ValidationError(f"unknown brands: {sorted(missing)}")
        return value

    def validate_color(self, value):
        names = color_choices()
        unknown = [c for c in value if c.lower() not in names]
        if unknown:
            raise serializers.ValidationError(f"unknown colours {unknown}; use: {', '.join(names)}")
        return [c.lower() for c in value]

    def validate(self, attrs):
        low, high = attrs.get("price_min"), attrs.get("price_max")
        if low is not None and high is not None and low > high:
            raise serializers.ValidationError({"price_max": "must be at least price_min"})
        if "currency" in attrs or low is not None or high is not None:
            # A price means nothing without its currency: 50 would have matched 50 EUR and 50 JPY alike.
            sold_in = catalog_currencies()
            currency = attrs.get("currency", "").upper()
            if currency and currency not in sold_in:
                raise serializers.ValidationError(
                    {"currency": f"the catalog sells in {', '.join(sold_in) or 'no currency yet'}, not {currency}"}
                )
            if not currency and len(sold_in) > 1:
                raise serializers.ValidationError(
                    {"currency": f"say which currency the prices are in: the catalog sells in {', '.join(sold_in)}"}
                )
            if currency or sold_in:
                attrs["currency"] = currency or sold_in[0]
        return attrs


def filters_to_json(validated: dict) -> dict:
    return {key: (str(value) if isinstance(value, Decimal) else value) for key, value in validated.items()}


def filters_from_json(data: dict) -> SearchFilters:
    return SearchFilters(
        category_ids=list(data.get("category", [])),
        brand_ids=list(data.get("brand", [])),
        price_min=Decimal(data["price_min"]) if data.get("price_min") is not None else None,
        price_max=Decimal(data["price_max"]) if data.get("price_max") is not None else None,
        in_stock=bool(data.get("in_stock", False)),
        colors=list(data.get("color", [])),
        currency=data.get("currency") or None,
    )
