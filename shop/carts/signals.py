"""Signals other apps hook into; carts and orders know nothing of their receivers.

`order_placed(sender=Order, order=order)` is sent once per order whose payment succeeded, inside the
transaction that records the payment (`shop.carts.services.order_settle`), after the order is marked
paid and its cart closed, and before the commit; it sees `order.lines` and `order.total` as stored.
The receivers run in one savepoint: their writes (for example campaign attribution) commit with the
payment's record. A receiver that raises stops the sending (later receivers do not run) and rolls back
the receivers' writes, logged, never the record of money taken (before, a failing receiver left a
charged order pending). Keep receivers short: the order stays locked until the commit.
"""

from django.dispatch import Signal

order_placed = Signal()
