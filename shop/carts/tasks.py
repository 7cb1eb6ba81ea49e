from django.conf import settings

from shop.carts.services import orders_reconcile
from shop.celery import default_task


@default_task
def reconcile_pending_orders() -> dict[str, int]:
    """Settle orders left pending payment (the checkout's process killed, the gateway's answer lost, the
    shopper gone) from what the payment provider knows of their charge. Idempotent: an order settled
    meanwhile is passed over."""
    return orders_reconcile(older_than_seconds=settings.CHECKOUT_PENDING_SECONDS)
