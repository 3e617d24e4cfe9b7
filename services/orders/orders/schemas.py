"""What orders' own answers add to its contract (``mercato.contracts.orders``, where its
RPCs' request and answer schemas live)."""

from marshmallow import fields

from mercato.contracts.orders import (
    OrderBuyerResponse,
    OrderResponse,
    SellerOrderResponse,
    SellerUnsubscriptionResponse,
)
from mercato.validation import page_of


class OrderOut(OrderResponse):
    """An order as orders' RPCs answer it: the contract's order and whether a payment
    of it is still being settled (billing has not said yet how a card payment ended)."""

    payment_pending = fields.Boolean()


OrderPage = page_of(OrderOut)


class SellerOrderBuyerOut(OrderBuyerResponse):
    """The buyer as orders knows it: its account, and whether it shared its contact
    with the order. Its name and email are iam-agency's: the gateway adds them, the
    email only when ``shared_contact``."""

    shared_contact = fields.Boolean()


class SellerOrderOut(SellerOrderResponse):
    """An order of the seller's products as orders answers it (``get_seller_order``)."""

    buyer = fields.Nested(SellerOrderBuyerOut)


SellerOrderPage = page_of(SellerOrderOut)


# -- unsubscriptions -----------------------------------------------------------------


class SellerUnsubscriptionOut(SellerUnsubscriptionResponse):
    """A request as orders answers it to the seller: the buyer's account and whether it
    shared its contact; the gateway adds its name, and its email only when shared."""

    buyer = fields.Nested(SellerOrderBuyerOut)


SellerUnsubscriptionPage = page_of(SellerUnsubscriptionOut)
