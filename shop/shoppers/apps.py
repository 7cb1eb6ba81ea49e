from django.apps import AppConfig


class ShoppersConfig(AppConfig):
    name = "shop.shoppers"
    label = "shoppers"
