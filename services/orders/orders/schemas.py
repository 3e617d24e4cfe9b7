"""What orders' own answers add to its contract (``mercato.contracts.orders``, where its
RPCs' request and answer schemas live)."""

from marshmallow import fields

from mercato.contracts.orders import OrderResponse
from mercato.validation import page_of


class OrderOut(OrderResponse):
    """An order as orders' RPCs answer it: the contract's order and whether a payment
    of it is still being settled (billing has not said yet how a card payment ended)."""

    payment_pending = fields.Boolean()


OrderPage = page_of(OrderOut)
