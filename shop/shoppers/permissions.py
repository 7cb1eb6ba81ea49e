from rest_framework.permissions import BasePermission

from shop.shoppers.selectors import shopper_for_user


class IsShopper(BasePermission):
    """The request carries a shopper's token; `request.shopper` is set for the view."""

    message = "A shopper token is required: register with POST /api/v1/shoppers/."

    def has_permission(self, request, view) -> bool:
        request.shopper = shopper_for_user(user=request.user)
        return request.shopper is not None
