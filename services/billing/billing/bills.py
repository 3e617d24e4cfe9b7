"""Bills and cost analysis: what an account was charged and refunded, per UTC month
and enterprise project, and its net spending over some UTC days grouped by project,
product or month. The SQL (and every sum) is in ``billing.bill_repository``
(``uow.bills``).

A bill is the payer's statement: the journal entries of its payments and refunds
(top-ups buy nothing and are no bill lines), so a reseller's bill holds its customers'
orders. A refund is booked to its payment's project, wherever the resource has moved
since. The lines name the product from ``billed_orders`` (``orders.order.created``)
and the project from billing's copy of iam-agency's projects (``enterprise_projects``,
kept from ``iam_agency.enterprise_project.*``); a project not copied yet is named by
its id (so ``default`` reads "default").
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from billing import domain
from billing.bill_repository import DEFAULT_PROJECT_ID, BillLine, ProjectTotal, SeriesPoint
from mercato.contracts.billing import parse_day, parse_month
from mercato.contracts.orders import MAX_ORDER_FACTS
from mercato.money import money

_log = logging.getLogger(__name__)

_LINE_KINDS = {domain.PAYMENT_ENTRY: "charge", domain.REFUND_ENTRY: "refund"}


# -- what feeds the bills ----------------------------------------------------------------


class OrderFacts(Protocol):
    """orders' ``order_facts``: what ``orders.order.created`` said of each order asked
    about (``{"orders": [{…, "created_at"}]}``, unknown ones left out)."""

    def order_facts(self, order_ids: list[str]) -> Mapping[str, Any]: ...


def learn_orders(uow, orders: OrderFacts | None, order_ids: Iterable[str]) -> int:
    """Orders billing has no ``billed_orders`` row of (``orders.order.created`` not
    consumed yet, or published before billing consumed it): asked of orders, once for
    all of them (at most ``MAX_ORDER_FACTS``), with no transaction open, and kept as
    the event handler keeps them. An orders that does not answer is logged and nothing
    is kept (the caller goes on with what billing has). Answers how many were kept."""
    wanted = sorted(set(order_ids))[:MAX_ORDER_FACTS]
    uow.rollback()
    if not wanted or orders is None:
        return 0
    try:
        answer = orders.order_facts(wanted)
    except Exception:
        _log.warning("orders did not answer order_facts for %s", wanted, exc_info=True)
        return 0
    kept = 0
    for facts in answer.get("orders") or ():
        if facts.get("order_id") in wanted:
            created_at = dt.datetime.fromisoformat(str(facts["created_at"]))
            kept += record_billed_order(uow, facts, created_at=created_at)
    uow.commit()
    return kept


def record_billed_order(uow, order: dict[str, Any], *, created_at: dt.datetime) -> bool:
    """Keep what an order was for (``orders.order.created``'s data), once: a repeat
    changes nothing. The product, seller and type a bill line shows are the first
    line's (an order is for one product). True when it was recorded now."""
    lines = order["lines"]
    first = lines[0] if lines else {}
    return uow.bills.add_billed_order(
        {
            "order_id": order["order_id"],
            "account_id": order["account_id"],
            "payer_account_id": order["payer_account_id"],
            "enterprise_project_id": order["enterprise_project_id"],
            "type": order["type"],
            "subscription_id": order.get("subscription_id"),
            "seller_account_id": first.get("seller_account_id", ""),
            "product_id": first.get("product_id", ""),
            "product_name": first.get("product_name", ""),
            "lines": _plain(lines),
            "amount": order["amount_due"]["amount"],
            "currency": order["amount_due"]["currency"],
            "created_at": created_at,
        }
    )


def keep_enterprise_project(uow, project: dict[str, Any]) -> bool:
    """Copy a project as iam-agency announced it (``EnterpriseProjectV1``) when its
    revision is newer than the copy's: an older event arriving late changes nothing.
    True when the copy changed."""
    return uow.bills.keep_project(
        {
            "account_id": project["account_id"],
            "project_id": project["enterprise_project_id"],
            "name": project["name"],
            "type": project["type"],
            "status": project["status"],
            "revision": project["revision"],
            "updated_at": project["updated_at"],
        }
    )


# -- bills -------------------------------------------------------------------------------


def list_bills(
    uow,
    *,
    account_id: str,
    month: str,
    enterprise_project_id: str | None,
    page: int,
    page_size: int,
    orders: OrderFacts | None = None,
) -> dict[str, Any]:
    """The bill of one UTC month: a page of its lines (oldest first) and the month's
    totals per project (over every page), each summed by the database, both read from
    one snapshot. A line of an order billing never heard of is asked of ``orders``
    (``learn_orders``) and the page read again."""
    start = parse_month(month)
    end = _next_month(start)
    lines, totals = _bill(uow, account_id, start, end, enterprise_project_id, page, page_size)
    unknown = [line.order_id for line in lines.items if line.order_id and line.order_type is None]
    if unknown and learn_orders(uow, orders, unknown):
        lines, totals = _bill(uow, account_id, start, end, enterprise_project_id, page, page_size)
    currency = totals[0].currency if totals else domain.account_currency()
    view = lines.view(_line_view)
    view["month"] = month
    view["totals"] = [_total_view(total) for total in totals]
    view["total_net"] = money(sum(total.charges + total.refunds for total in totals), currency)
    return view


def _bill(
    uow,
    account_id: str,
    start: dt.datetime,
    end: dt.datetime,
    project_id: str | None,
    page: int,
    page_size: int,
) -> tuple[Any, list[ProjectTotal]]:
    bills = uow.bills
    uow.rollback()
    bills.read_one_snapshot()
    try:
        lines = bills.bill_lines(account_id, start, end, project_id, page, page_size)
        totals = bills.project_totals(account_id, start, end, project_id)
    finally:
        uow.rollback()
    return lines, totals


def cost_analysis(
    uow,
    *,
    account_id: str,
    from_day: str,
    to_day: str,
    group_by: str,
    orders: OrderFacts | None = None,
) -> dict[str, Any]:
    """Net spending (charges less refunds) from ``from_day`` to ``to_day`` (UTC days,
    both included) per project, product or UTC month, summed by the database. By
    product, the orders billing never heard of are asked of ``orders`` first."""
    start = _midnight(parse_day(from_day))
    end = _midnight(parse_day(to_day) + dt.timedelta(days=1))
    if group_by == "product" and orders is not None:
        learn_orders(uow, orders, uow.bills.unknown_orders(account_id, start, end, MAX_ORDER_FACTS))
    series = uow.bills.cost_series(account_id, start, end, group_by)
    currency = series[0].currency if series else domain.account_currency()
    return {
        "from_": from_day,
        "to": to_day,
        "group_by": group_by,
        "currency": currency,
        "series": [_point_view(point, group_by) for point in series],
        "total": money(sum(point.amount for point in series), currency),
    }


# -- views -------------------------------------------------------------------------------


def project_name(project_id: str, name: str | None) -> str:
    """A project's name from billing's copy; its id until the copy is there (so
    ``default`` is "default")."""
    if name is not None:
        return name
    return DEFAULT_PROJECT_ID if project_id == DEFAULT_PROJECT_ID else project_id


def _line_view(line: BillLine) -> dict[str, Any]:
    return {
        "id": line.txn_id,
        "kind": _LINE_KINDS[line.kind],
        "order_id": line.order_id,
        "order_type": line.order_type,
        "product_id": line.product_id,
        "product_name": line.product_name,
        "buyer_account_id": line.buyer_account_id,
        "enterprise_project_id": line.enterprise_project_id,
        "enterprise_project_name": project_name(
            line.enterprise_project_id, line.enterprise_project_name
        ),
        "amount": money(line.amount, line.currency),
        "payment_method": line.payment_method,
        "occurred_at": line.occurred_at,
    }


def _total_view(total: ProjectTotal) -> dict[str, Any]:
    return {
        "buyer_account_id": total.buyer_account_id,
        "enterprise_project_id": total.enterprise_project_id,
        "enterprise_project_name": project_name(
            total.enterprise_project_id, total.enterprise_project_name
        ),
        "charges": money(total.charges, total.currency),
        "refunds": money(total.refunds, total.currency),
        "net": money(total.charges + total.refunds, total.currency),
    }


def _point_view(point: SeriesPoint, group_by: str) -> dict[str, Any]:
    name = point.name
    if group_by == "enterprise_project" and point.key is not None:
        name = project_name(point.key, point.name)
    return {"key": point.key, "name": name, "amount": money(point.amount, point.currency)}


def _next_month(start: dt.datetime) -> dt.datetime:
    return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _plain(value: Any) -> Any:
    """The event's loaded data as JSON keeps it (times as RFC 3339)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value
