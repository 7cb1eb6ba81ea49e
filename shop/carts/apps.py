from django.apps import AppConfig


class CartsConfig(AppConfig):
    name = "shop.carts"
    label = "carts"

    def ready(self) -> None:
        from shop.carts import checks  # noqa: F401  registers the payment provider check
