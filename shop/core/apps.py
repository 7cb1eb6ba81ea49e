from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "shop.core"
    label = "core"
    verbose_name = "Operations"

    def ready(self) -> None:
        from django.core.signals import request_finished

        from shop.core.logging import bind_request_id

        request_finished.connect(lambda **_: bind_request_id(None), weak=False, dispatch_uid="clear_request_id")
