from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters

from shop.carts.models import Cart, CartLine, Order, OrderLine
from shop.carts.services import CartError, order_cancel, order_fulfil, order_reconcile


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class OrderLineInline(ReadOnlyInline):
    model = OrderLine
    fields = ("sku", "title", "options", "unit_price", "currency", "quantity", "line_total", "scan")
    readonly_fields = fields


def _apply(modeladmin, request, queryset, service, done: str) -> None:
    changed = 0
    for order in queryset:
        try:
            service(order=order)
            changed += 1
        except CartError as exc:
            modeladmin.message_user(request, f"Order {order.id}: {exc.detail}", messages.WARNING)
        except Exception as exc:  # the payment provider unreachable or refusing the request
            modeladmin.message_user(request, f"Order {order.id}: the payment provider failed ({exc!r:.200}).",
                                    messages.ERROR)
    if changed:
        modeladmin.message_user(request, f"{changed} order(s) {done}.", messages.SUCCESS)


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("id", "status", "total", "currency", "item_count", "shopper", "created_at")
    list_filter = ("status", "currency")
    search_fields = ("id", "payment_reference", "lines__sku")
    date_hierarchy = "created_at"
    inlines = (OrderLineInline,)
    actions = ("cancel_orders", "fulfil_orders", "reconcile_orders")
    readonly_fields = (
        "id", "shopper", "cart", "status", "currency", "subtotal", "total", "item_count", "payment_provider",
        "payment_reference", "payment_failure_reason", "refund_reference", "created_at", "paid_at", "fulfilled_at",
        "cancelled_at",
    )  # fmt: skip
    list_select_related = ("shopper",)

    def get_changelist_instance(self, request):
        # the date drill-down builds its range itself: ?created_at__year=9999 (its year + 1) raised
        # ValueError, a 500; Django's answer to a bad lookup is its "?e=1" page
        try:
            return super().get_changelist_instance(request)
        except (ValueError, OverflowError) as exc:
            raise IncorrectLookupParameters(str(exc)) from exc

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Cancel the selected paid orders (refunds them, restores stock)", permissions=["change"])
    def cancel_orders(self, request, queryset):
        _apply(self, request, queryset, order_cancel, "cancelled")

    @admin.action(description="Settle the selected pending orders from what the payment provider knows",
                  permissions=["change"])
    def reconcile_orders(self, request, queryset):
        _apply(self, request, queryset, order_reconcile, "settled")

    @admin.action(description="Mark the selected paid orders fulfilled", permissions=["change"])
    def fulfil_orders(self, request, queryset):
        _apply(self, request, queryset, order_fulfil, "fulfilled")


class CartLineInline(ReadOnlyInline):
    model = CartLine
    fields = ("variant", "quantity", "scan", "created_at")
    readonly_fields = fields


@admin.register(Cart)
class CartAdmin(admin.ModelAdmin):
    list_display = ("id", "status", "shopper", "created_at", "updated_at", "closed_at")
    list_filter = ("status",)
    search_fields = ("id",)
    inlines = (CartLineInline,)
    list_select_related = ("shopper",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
