"""The budgets of a card payment nest (docs/operations.md, "Timeouts"): billing asks the
card provider at most twice per payment (the token, the charge), each call bounded;
orders waits for billing longer than both; the gateway waits for orders longer still. So
a provider that is slow makes billing answer a pending payment while orders and the
gateway still wait, and the buyer gets the pending payment, not a 503."""

from __future__ import annotations

from billing.dependencies import CARD_GATEWAY_TIMEOUT_SECONDS
from billing.service import BillingService
from gateway.service import GatewayService
from mercato import config
from mercato.topology import BY_NAME
from orders.service import OrdersService

PROVIDER_CALLS_PER_PAYMENT = 2


def _budget(service: str, key: str) -> float:
    return float(config.load(BY_NAME[service].config_path)[key])


def test_each_outer_budget_exceeds_the_inner_ones():
    card = _budget("billing", CARD_GATEWAY_TIMEOUT_SECONDS)
    orders_billing = _budget("orders", "ORDERS_BILLING_TIMEOUT_SECONDS")
    gateway_orders = _budget("gateway", "GATEWAY_ORDERS_TIMEOUT_SECONDS")
    assert PROVIDER_CALLS_PER_PAYMENT * card < orders_billing < gateway_orders


def test_the_proxies_of_the_payment_path_read_their_own_budgets():
    assert OrdersService.billing._setting == "ORDERS_BILLING_TIMEOUT_SECONDS"
    assert GatewayService.orders._setting == "GATEWAY_ORDERS_TIMEOUT_SECONDS"
    assert BillingService.card_gateway is not None
