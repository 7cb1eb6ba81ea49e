from shop.shoppers.models import Shopper


def shopper_for_user(*, user) -> Shopper | None:
    return Shopper.objects.filter(user=user).first() if user.is_authenticated else None
