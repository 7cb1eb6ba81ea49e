"""Signals other apps hook into; carts and orders know nothing of their receivers.

`order_placed(sender=Order, order=order)` is sent once per order whose payment succeeded, inside
the order's transaction, after the order, its lines and the stock decrement are written and before
the commit. A receiver's writes (for example campaign attribution) commit or roll back with the
order, and it sees `order.lines` and `order.total` as stored. A receiver that raises undoes the
order: the charge was keyed by the request's Idempotency-Key (if any), the cart, its contents and
the attempt, so the shopper's retry of that checkout is not charged twice. Keep receivers short: the variants stay locked until the commit.
"""

from django.dispatch import Signal

order_placed = Signal()
