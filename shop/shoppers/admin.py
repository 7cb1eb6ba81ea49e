from django.contrib import admin

from shop.shoppers.models import Shopper


@admin.register(Shopper)
class ShopperAdmin(admin.ModelAdmin):
    list_display = ("id", "platform", "app_version", "locale", "created_at")
    list_filter = ("platform",)
    readonly_fields = ("id", "user", "platform", "app_version", "locale", "created_at")
    search_fields = ("id",)
