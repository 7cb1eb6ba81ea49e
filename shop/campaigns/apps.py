from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "shop.campaigns"
    label = "campaigns"

    def ready(self) -> None:
        from shop.campaigns import signals  # noqa: F401  artwork files follow their creative
        from shop.campaigns.attribution import attribute_order
        from shop.carts.signals import order_placed

        def attribute(sender, order, **kwargs):
            attribute_order(order=order)

        order_placed.connect(attribute, weak=False, dispatch_uid="campaigns.attribute_order")
