from django.apps import AppConfig


class ScansConfig(AppConfig):
    name = "shop.scans"
    label = "scans"
