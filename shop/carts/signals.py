"""Signals other apps hook into; carts and orders know nothing of their receivers.

`order_placed(sender=Order, order=order)` is sent once per order whose payment succeeded, inside the
transaction that records the payment (`shop.carts.services.order_settle`), after the order is marked
paid and its cart closed, and before the commit. A receiver's writes (for example campaign attribution)
commit or roll back with that record, and it sees `order.lines` and `order.total` as stored. A receiver
that raises leaves the order pending payment: the order was committed before the charge, so the
shopper's retry of that checkout (or the reconciliation sweep) records the same charge again, never a
second one. Keep receivers short: the order stays locked until the commit.
"""

from django.dispatch import Signal

order_placed = Signal()
