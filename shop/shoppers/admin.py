from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.template.response import TemplateResponse

from shop.shoppers.models import Shopper
from shop.shoppers.services import DELETED_SHOPPER_ID, shopper_delete


@admin.register(Shopper)
class ShopperAdmin(admin.ModelAdmin):
    list_display = ("id", "platform", "app_version", "locale", "created_at")
    list_filter = ("platform",)
    # not the user behind the device's token: the users admin lists staff only (see StaffUserAdmin)
    fields = readonly_fields = ("id", "platform", "app_version", "locale", "region", "created_at")
    search_fields = ("id",)
    actions = ("erase",)

    def has_delete_permission(self, request, obj=None):
        # Django's cascade would delete the ad scans' attributions (the campaigns' history) and leave
        # the photos in storage: a shopper is erased as the app's DELETE /shoppers/me erases one
        return False

    def has_erase_permission(self, request):
        return request.user.has_perm("shoppers.delete_shopper")

    @admin.action(description="Erase the selected shoppers (as the app's DELETE /shoppers/me)", permissions=["erase"])
    def erase(self, request, queryset):
        shoppers = list(queryset.exclude(id=DELETED_SHOPPER_ID))
        if len(shoppers) < queryset.count():
            self.message_user(request, "The deleted-shopper row holds erased shoppers' orders; it is kept.",
                              messages.WARNING)
        if not shoppers:
            return None
        if request.POST.get("confirm") != "yes":
            context = {**self.admin_site.each_context(request), "title": "Erase shoppers", "shoppers": shoppers,
                       "opts": self.model._meta, "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME}
            return TemplateResponse(request, "admin/shoppers/shopper/erase_confirmation.html", context)
        for shopper in shoppers:
            shopper_delete(shopper=shopper)
        self.message_user(request, f"Erased {len(shoppers)} shoppers.", messages.SUCCESS)
        return None


admin.site.unregister(get_user_model())


@admin.register(get_user_model())
class StaffUserAdmin(UserAdmin):
    """Staff accounts. The users behind shoppers' device tokens are left out: deleting one would
    cascade to its shopper past `shopper_delete` (see ShopperAdmin.erase)."""

    def get_queryset(self, request):
        return super().get_queryset(request).filter(shopper__isnull=True)
