from rest_framework import serializers

from catalog.models import Variant
from shop.carts.models import MAX_LINE_QUANTITY, Order, OrderLine
from shop.scans.selectors import scans_of


def money(**kwargs) -> serializers.DecimalField:
    """Money leaves as a string with two decimal places, never as a float. Wide enough for any cart
    (99 of each variant at the highest price; checkout refuses a total its order could not hold)."""
    return serializers.DecimalField(max_digits=20, decimal_places=2, coerce_to_string=True, read_only=True, **kwargs)


class ShopperScanField(serializers.PrimaryKeyRelatedField):
    """A scan id that must be one of the requesting shopper's own scans."""

    default_error_messages = {"does_not_exist": "No scan of yours has this id."}

    def __init__(self, **kwargs):
        super().__init__(pk_field=serializers.UUIDField(), **kwargs)

    def get_queryset(self):
        return scans_of(shopper=self.context["shopper"])


class CartItemAddInputSerializer(serializers.Serializer):
    variant_id = serializers.PrimaryKeyRelatedField(queryset=Variant.objects.select_related("product"))
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_LINE_QUANTITY, default=1)
    scan_id = ShopperScanField(required=False, allow_null=True, help_text="the scan the shopper added it from")


class CartLineUpdateInputSerializer(serializers.Serializer):
    quantity = serializers.IntegerField(min_value=0, max_value=MAX_LINE_QUANTITY, help_text="0 removes the line")


class CartLineSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    variant_id = serializers.IntegerField()
    sku = serializers.CharField(source="variant.sku")
    product_id = serializers.IntegerField(source="variant.product_id")
    title = serializers.CharField(source="variant.product.title")
    options = serializers.JSONField(source="variant.options")
    unit_price = money(source="variant.price")
    quantity = serializers.IntegerField()
    line_total = money()
    currency = serializers.CharField(source="variant.currency")
    scan_id = serializers.UUIDField(allow_null=True)
    in_stock = serializers.SerializerMethodField(help_text="the product is sold and the stock covers the quantity")

    def get_in_stock(self, line) -> bool:
        return line.variant.product.active and line.variant.stock >= line.quantity


class CartSerializer(serializers.Serializer):
    """A CartSummary."""

    id = serializers.UUIDField(source="cart.id")
    currency = serializers.CharField(allow_null=True, help_text="null while the cart is empty, or when its lines' "
                                     "prices are in several currencies")
    lines = CartLineSerializer(many=True)
    item_count = serializers.IntegerField()
    subtotal = money(allow_null=True, help_text="null when the lines' prices are in several currencies")
    updated_at = serializers.DateTimeField(source="cart.updated_at")


class OrderLineSerializer(serializers.ModelSerializer):
    variant_id = serializers.IntegerField(read_only=True, allow_null=True)
    product_id = serializers.IntegerField(read_only=True, allow_null=True)
    scan_id = serializers.UUIDField(read_only=True, allow_null=True)

    class Meta:
        model = OrderLine
        fields = (
            "id", "variant_id", "product_id", "sku", "title", "options", "unit_price", "currency", "quantity",
            "line_total", "scan_id",
        )  # fmt: skip


class OrderSerializer(serializers.ModelSerializer):
    lines = OrderLineSerializer(many=True)

    class Meta:
        model = Order
        fields = (
            "id", "status", "currency", "subtotal", "total", "item_count", "payment_reference",
            "payment_failure_reason", "created_at", "paid_at", "fulfilled_at", "cancelled_at", "lines",
        )  # fmt: skip


class OrderPlaceInputSerializer(serializers.Serializer):
    payment_token = serializers.CharField(
        max_length=200, help_text="from the payment provider's SDK; tok_visa in tests"
    )
    expected_total = serializers.DecimalField(
        max_digits=12, decimal_places=2, required=False, min_value=0,
        help_text="the total the app showed; another total at checkout (a price changed meanwhile) is "
                  "409 price_changed, with nothing charged")
    expected_currency = serializers.RegexField(
        r"^[A-Z]{3}$", required=False, help_text="the currency the app showed, with expected_total")
