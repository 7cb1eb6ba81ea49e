from django.contrib.auth import get_user_model
from django.db import transaction
from rest_framework.authtoken.models import Token

from shop.shoppers.models import Shopper


@transaction.atomic
def shopper_register(*, platform: str, app_version: str = "", locale: str = "", region: str = "") -> tuple[Shopper, str]:
    """Create an anonymous shopper and the API token the device will send from now on."""
    if not region and "-" in locale.replace("_", "-"):
        region = locale.replace("_", "-").split("-")[-1]
    user = get_user_model().objects.create_user(username=f"shopper-{Token.generate_key()[:20]}")
    user.set_unusable_password()
    user.save(update_fields=["password"])
    shopper = Shopper.objects.create(
        user=user, platform=platform, app_version=app_version, locale=locale, region=region.upper()
    )
    token = Token.objects.create(user=user)
    return shopper, token.key
