"""Bills and cost analysis on PostgreSQL (billing's migrated schema, its own unit of
work outside nameko, an in-memory card processor): a month of payments by balance,
credit and card, full and partial refunds, payments in other projects, months and
accounts; every figure is checked against the journal entries themselves. Also the
handlers that feed the bills (``orders.order.created``, the enterprise projects'
events) and the queries refused naming their field."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from billing import bills, domain, usecases
from billing.bill_repository import BillRepository
from billing.invoice_repository import InvoiceRepository
from billing.models import metadata
from billing.repository import BillingRepository
from billing.service import BillingService
from billing.tests.fakes import who
from billing.tests.support import BUYER, GOOD_CARD, REASON, RESELLER, usd
from billing.tests.test_refunds import PostgresBooks
from billing.tests.test_service import ANN, billing, pay  # noqa: F401  (a running billing)
from billing.tests.test_service import top_up as top_up_by_rpc
from mercato.contracts import billing as contract
from mercato.contracts.envelope import new_envelope
from mercato.errors import ServiceUnavailable, ValidationError
from mercato.identity import Caller
from mercato.money import Money
from mercato.standalone import standalone_unit_of_work
from mercato.transport import rpc
from mercato.validation import dump, load
from mercato_testing.interface import publish_event, wait_for

OTHER = "acc_other"
MARKETING = "eps_0a1b2c3d4e5f40718293a4b5c6d7e8f9"
CRM, DB = "prd_crm", "prd_db"
PRODUCTS = {CRM: "Northwind CRM", DB: "Contoso DB"}
NOVEMBER = dt.datetime(2026, 11, 3, 10, 0, tzinfo=dt.UTC)
DECEMBER = dt.datetime(2026, 12, 2, 8, 0, tzinfo=dt.UTC)


class Ledger(PostgresBooks):
    """The books, with orders paid in a project and what billing heard of them."""

    def order(
        self,
        order_id: str,
        amount: int,
        method: str = domain.BALANCE,
        *,
        project: str = "default",
        product: str = CRM,
        buyer: str = BUYER,
        payer: str | None = None,
        known: bool = True,
    ) -> dict:
        """``orders.order.created`` (unless ``known`` is False), then the payment."""
        payer = payer or buyer
        if known:
            bills.record_billed_order(
                self.uow,
                created(order_id, amount, project=project, product=product, buyer=buyer),
                created_at=self.clock.now(),
            )
            self.uow.commit()
        caller = who(buyer, "buyer", reseller=payer if payer != buyer else None)
        payment = usecases.pay_order(
            self.uow,
            self.clock,
            self.gateway,
            caller=caller,
            order_id=order_id,
            account_id=buyer,
            payer_account_id=payer,
            amount=usd(amount),
            enterprise_project_id=project,
            payment_method=method,
            card=GOOD_CARD if method == domain.CREDIT_CARD else None,
        )
        assert payment["status"] == "succeeded", payment
        return payment

    def bill(self, month: str, account_id: str = BUYER, orders: Any = None, **query: Any) -> dict:
        data = load(contract.BillsQuery, {"month": month, **query})
        view = bills.list_bills(self.uow, account_id=account_id, orders=orders, **data)
        self.uow.rollback()
        return dump(contract.BillPage, view)

    def costs(
        self, first: str, last: str, group_by: str, account_id: str = BUYER, orders: Any = None
    ) -> dict:
        data = load(contract.CostAnalysisQuery, {"from": first, "to": last, "group_by": group_by})
        view = bills.cost_analysis(
            self.uow,
            account_id=account_id,
            from_day=data["from"],
            to_day=data["to"],
            group_by=data["group_by"],
            orders=orders,
        )
        self.uow.rollback()
        return dump(contract.CostAnalysisResponse, view)

    def ledger_sums(self, account_id: str, start: dt.datetime, end: dt.datetime) -> dict:
        """Per project, the net of the account's payment and refund entries, read
        straight from ``journal_entries`` (the statement's sign turned: a charge
        positive)."""
        rows = self.uow.session.execute(
            sa.text(
                "SELECT enterprise_project_id, -sum(amount) FROM journal_entries "
                "WHERE account_id = :account AND kind IN ('payment', 'refund') "
                "AND created_at >= :start AND created_at < :end "
                "GROUP BY enterprise_project_id"
            ),
            {"account": account_id, "start": start, "end": end},
        ).all()
        self.uow.rollback()
        return {project: int(total) for project, total in rows}


def created(
    order_id: str,
    amount: int,
    *,
    project: str = "default",
    product: str = CRM,
    buyer: str = BUYER,
    type_: str = "purchase",
) -> dict:
    """``orders.order.created``'s data, as the handler gets it."""
    return {
        "order_id": order_id,
        "account_id": buyer,
        "payer_account_id": buyer,
        "enterprise_project_id": project,
        "amount_due": usd(amount),
        "lines": [
            {
                "id": f"oln_{order_id}",
                "product_id": product,
                "product_name": PRODUCTS[product],
                "seller_account_id": "acc_seller",
                "specification_id": "spc_1",
                "specification_name": "Standard",
                "delivery_method": "saas",
                "service_supervision": False,
                "billing_mode": "yearly_monthly",
                "period": {"unit": "month", "count": 1},
                "quantity": 1,
                "unit_price": usd(amount),
                "amount": usd(amount),
            }
        ],
        "payment_deadline": dt.datetime(2026, 12, 31, tzinfo=dt.UTC),
        "type": type_,
        "subscription_id": None,
    }


def project_event(project_id: str, name: str, revision: int, status: str = "enabled") -> dict:
    return {
        "account_id": BUYER,
        "enterprise_project_id": project_id,
        "name": name,
        "description": "",
        "type": "commercial",
        "status": status,
        "revision": revision,
        "updated_at": NOVEMBER,
    }


@pytest.fixture
def ledger(databases):
    with standalone_unit_of_work(
        databases.fresh("billing"),
        metadata,
        service_name="billing",
        command="test",
        repositories={
            "billing": BillingRepository,
            "bills": BillRepository,
            "invoices": InvoiceRepository,
        },
    ) as uow:
        ledger = Ledger(uow)
        ledger.clock.set(NOVEMBER)
        ledger.gateway.charge(
            "seed", ledger.gateway.card(GOOD_CARD["token"]), Money(100_000, "USD")
        )
        ledger.top_up(100_000)  # a top-up is no bill line
        ledger.grant_credit(50_000)
        ledger.grant_credit(50_000, account_id=OTHER)
        ledger.grant_credit(50_000, account_id=RESELLER)
        yield ledger
        audit = usecases.audit_ledger(uow)
        assert audit["balanced"], audit


def refund(ledger: Ledger, payment: dict, amount: int) -> dict:
    view = usecases.refund_payment(
        ledger.uow,
        ledger.clock,
        ledger.gateway,
        payment_id=payment["id"],
        order_id=payment["order_id"],
        account_id=payment["account_id"],
        amount=usd(amount),
        reason=REASON,
    )
    ledger.uow.commit()
    assert view["status"] == "succeeded", view
    return view


@pytest.fixture
def two_months(ledger):
    """November: balance, credit and card payments in two projects, a full and a
    partial refund, another account's payment and a reseller's payment for the buyer;
    December: a payment and a partial refund of a November payment."""
    bills.keep_enterprise_project(ledger.uow, project_event(MARKETING, "Marketing", 2))
    ledger.uow.commit()
    paid = {
        "a": ledger.order("ord_a", 10_000, domain.BALANCE),
        "b": ledger.order("ord_b", 2_550, domain.CREDIT, project=MARKETING, product=DB),
        "c": ledger.order("ord_c", 7_777, domain.CREDIT_CARD, project=MARKETING),
        "d": ledger.order("ord_d", 4_000, domain.BALANCE, product=DB),
    }
    ledger.clock.advance(hours=1)
    refund(ledger, paid["c"], 7_777)  # in full, from the card
    refund(ledger, paid["d"], 1_500)  # in part, to the balance
    ledger.order("ord_other", 9_999, domain.CREDIT, buyer=OTHER)
    ledger.order("ord_r", 1_234, domain.RESELLER, payer=RESELLER)
    ledger.clock.set(dt.datetime(2026, 11, 30, 23, 59, 59, tzinfo=dt.UTC))  # still November
    paid["e"] = ledger.order("ord_e", 300, domain.BALANCE, known=False)

    ledger.clock.set(DECEMBER)
    ledger.order("ord_f", 5_000, domain.BALANCE)
    refund(ledger, paid["b"], 550)  # booked to ord_b's project, in December
    return paid


def figures(totals: list[dict]) -> dict[str, tuple[str, int, int, int]]:
    return {
        total["enterprise_project_id"]: (
            total["enterprise_project_name"],
            total["charges"]["amount"],
            total["refunds"]["amount"],
            total["net"]["amount"],
        )
        for total in totals
    }


def test_a_month_s_bill_is_its_charges_and_refunds_summed_per_project(ledger, two_months):
    bill = ledger.bill("2026-11")

    lines = [
        (
            line["kind"],
            line["order_id"],
            line["enterprise_project_id"],
            line["amount"]["amount"],
            line["payment_method"],
        )
        for line in bill["items"]
    ]
    assert lines == [
        ("charge", "ord_a", "default", 10_000, "balance"),
        ("charge", "ord_b", MARKETING, 2_550, "credit"),
        ("charge", "ord_c", MARKETING, 7_777, "credit_card"),
        ("charge", "ord_d", "default", 4_000, "balance"),
        ("refund", "ord_c", MARKETING, -7_777, "credit_card"),
        ("refund", "ord_d", "default", -1_500, "balance"),
        ("charge", "ord_e", "default", 300, "balance"),
    ]
    assert (bill["total"], bill["page"], bill["page_size"], bill["month"]) == (7, 1, 20, "2026-11")
    first = bill["items"][0]
    assert first["id"].startswith("txn_")
    assert (first["product_id"], first["product_name"], first["order_type"]) == (
        CRM,
        "Northwind CRM",
        "purchase",
    )
    assert first["enterprise_project_name"] == "default"  # no copy of default: its id
    assert first["buyer_account_id"] == BUYER
    assert first["occurred_at"] == NOVEMBER.isoformat()
    # an order billing never heard of is billed all the same, without its product
    last = bill["items"][-1]
    assert (last["product_id"], last["product_name"], last["order_type"]) == (None, None, None)

    assert figures(bill["totals"]) == {
        "default": ("default", 14_300, -1_500, 12_800),
        MARKETING: ("Marketing", 10_327, -7_777, 2_550),
    }
    assert bill["total_net"] == usd(15_350)
    # to the cent what the journal entries say
    november = ledger.ledger_sums(BUYER, dt.datetime(2026, 11, 1, tzinfo=dt.UTC), DECEMBER)
    assert {key: value[3] for key, value in figures(bill["totals"]).items()} == november


def test_a_refund_stays_in_its_payment_s_project_and_month_of_its_own(ledger, two_months):
    bill = ledger.bill("2026-12")

    assert [
        (line["kind"], line["order_id"], line["enterprise_project_id"], line["amount"]["amount"])
        for line in bill["items"]
    ] == [("charge", "ord_f", "default", 5_000), ("refund", "ord_b", MARKETING, -550)]
    assert figures(bill["totals"]) == {
        "default": ("default", 5_000, 0, 5_000),
        MARKETING: ("Marketing", 0, -550, -550),
    }
    assert bill["total_net"] == usd(4_450)
    assert ledger.ledger_sums(
        BUYER, DECEMBER.replace(day=1, hour=0), dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    ) == {"default": 5_000, MARKETING: -550}
    assert ledger.bill("2026-10")["items"] == []
    assert ledger.bill("2026-10")["total_net"] == usd(0)


def test_a_bill_is_the_payer_s_own(ledger, two_months):
    other = ledger.bill("2026-11", account_id=OTHER)
    assert [line["order_id"] for line in other["items"]] == ["ord_other"]
    assert other["total_net"] == usd(9_999)

    reseller = ledger.bill("2026-11", account_id=RESELLER)
    (line,) = reseller["items"]
    assert (line["order_id"], line["buyer_account_id"], line["payment_method"]) == (
        "ord_r",
        BUYER,
        "reseller",
    )
    assert reseller["total_net"] == usd(1_234)
    assert "ord_r" not in [line["order_id"] for line in ledger.bill("2026-11")["items"]]


def test_a_bill_of_one_project_and_its_pages(ledger, two_months):
    marketing = ledger.bill("2026-11", enterprise_project_id=MARKETING)
    assert [(line["kind"], line["order_id"]) for line in marketing["items"]] == [
        ("charge", "ord_b"),
        ("charge", "ord_c"),
        ("refund", "ord_c"),
    ]
    assert figures(marketing["totals"]) == {MARKETING: ("Marketing", 10_327, -7_777, 2_550)}
    assert marketing["total_net"] == usd(2_550)
    assert ledger.bill("2026-11", enterprise_project_id="eps_none")["total"] == 0

    second = ledger.bill("2026-11", page="2", page_size="3")
    assert [line["order_id"] for line in second["items"]] == ["ord_d", "ord_c", "ord_d"]
    assert second["total"] == 7
    # the totals are the whole month's on every page
    assert second["total_net"] == usd(15_350) and len(second["totals"]) == 2


def test_cost_analysis_by_project_product_and_month_matches_the_bills(ledger, two_months):
    def series(answer: dict) -> dict:
        return {
            point["key"]: (point["name"], point["amount"]["amount"]) for point in answer["series"]
        }

    by_project = ledger.costs("2026-11-01", "2026-12-31", "enterprise_project")
    assert series(by_project) == {
        "default": ("default", 12_800 + 5_000),
        MARKETING: ("Marketing", 2_550 - 550),
    }
    assert by_project["total"] == usd(19_800)
    assert (by_project["from"], by_project["to"], by_project["group_by"]) == (
        "2026-11-01",
        "2026-12-31",
        "enterprise_project",
    )
    assert by_project["currency"] == "USD"

    by_product = ledger.costs("2026-11-01", "2026-12-31", "product")
    assert series(by_product) == {
        CRM: ("Northwind CRM", 10_000 + 7_777 - 7_777 + 5_000),
        DB: ("Contoso DB", 2_550 - 550 + 4_000 - 1_500),
        None: (None, 300),  # ord_e: billing never heard what it was for
    }
    assert by_product["total"] == usd(19_800)

    by_month = ledger.costs("2026-11-01", "2026-12-31", "month")
    assert series(by_month) == {
        "2026-11": ("2026-11", ledger.bill("2026-11")["total_net"]["amount"]),
        "2026-12": ("2026-12", ledger.bill("2026-12")["total_net"]["amount"]),
    }
    # the last second of November is November's; to is included, whole
    assert ledger.costs("2026-11-30", "2026-11-30", "month")["total"] == usd(300)
    assert ledger.costs("2026-12-02", "2026-12-02", "month")["total"] == usd(4_450)
    assert ledger.costs("2026-11-01", "2026-11-02", "month") == {
        "from": "2026-11-01",
        "to": "2026-11-02",
        "group_by": "month",
        "currency": "USD",
        "series": [],
        "total": usd(0),
    }
    assert ledger.costs("2026-11-01", "2026-12-31", "month", account_id=OTHER)["total"] == usd(
        9_999
    )


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({}, "month"),
        ({"month": "2026-13"}, "month"),
        ({"month": "2026-1"}, "month"),
        ({"month": "November"}, "month"),
        ({"month": "2026-11", "page_size": "101"}, "page_size"),
        ({"month": "2026-11", "enterprise_project_id": "x" * 65}, "enterprise_project_id"),
        ({"month": "2026-11", "colour": "red"}, "colour"),
    ],
)
def test_a_bad_bills_query_is_refused_naming_its_field(query, field):
    with pytest.raises(ValidationError) as refused:
        load(contract.BillsQuery, query)
    assert list(refused.value.fields) == [field]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"to": "2026-11-30"}, "from"),
        ({"from": "2026-11-01"}, "to"),
        ({"from": "2026-11-31", "to": "2026-12-01"}, "from"),
        ({"from": "20261101", "to": "2026-12-01"}, "from"),
        ({"from": "2026-11-01", "to": "2026-12-1"}, "to"),
        ({"from": "2026-11-02", "to": "2026-11-01"}, "to"),
        ({"from": "2025-01-01", "to": "2026-01-02"}, "to"),  # 367 days
        ({"from": "2026-11-01", "to": "2026-11-30", "group_by": "seller"}, "group_by"),
    ],
)
def test_a_bad_cost_analysis_query_is_refused_naming_its_field(query, field):
    with pytest.raises(ValidationError) as refused:
        load(contract.CostAnalysisQuery, query)
    assert list(refused.value.fields) == [field]


def test_a_cost_analysis_spans_at_most_366_days_both_included():
    data = load(contract.CostAnalysisQuery, {"from": "2024-01-01", "to": "2024-12-31"})
    assert data == {"from": "2024-01-01", "to": "2024-12-31", "group_by": "enterprise_project"}
    # what the gateway passes on, the service loads again the same
    assert load(contract.CostAnalysisQuery, data) == data


# -- what feeds the bills ---------------------------------------------------------------


class _Service:
    """What billing's handlers use of the service: its name and its unit of work."""

    name = "billing"

    def __init__(self, uow) -> None:
        self.db = uow


def deliver(uow, handler, event_type: str, data: dict, *, event_id: str | None = None):
    """Deliver an event to one of billing's handlers through its inbox wrapper, as the
    broker would."""
    envelope = new_envelope(
        event_type,
        subject=data.get("order_id") or data["enterprise_project_id"],
        data=data,
        account_id=data["account_id"],
        correlation_id="test",
        causation_id=None,
        id=event_id,
    ).dump()
    assert handler(_Service(uow), envelope) is None  # neither retried nor dead-lettered
    return envelope


def test_an_order_created_is_billed_once(ledger):
    data = created("ord_1", 12_345, project=MARKETING, product=DB, type_="renewal")
    first = deliver(ledger.uow, BillingService.on_order_created, "orders.order.created", data)
    row = ledger.uow.bills.billed_order("ord_1")
    assert (
        row.account_id,
        row.enterprise_project_id,
        row.type,
        row.product_id,
        row.product_name,
        row.seller_account_id,
        row.amount,
        row.currency,
    ) == (BUYER, MARKETING, "renewal", DB, "Contoso DB", "acc_seller", 12_345, "USD")
    assert row.lines[0]["id"] == "oln_ord_1"
    ledger.uow.rollback()

    # the same event again (the inbox skips it), and another event of the same order
    deliver(
        ledger.uow,
        BillingService.on_order_created,
        "orders.order.created",
        data,
        event_id=first["id"],
    )
    changed = created("ord_1", 1, product=CRM)
    deliver(ledger.uow, BillingService.on_order_created, "orders.order.created", changed)
    assert bills.record_billed_order(ledger.uow, changed, created_at=DECEMBER) is False
    ledger.uow.rollback()

    row = ledger.uow.bills.billed_order("ord_1")
    assert (row.amount, row.product_id, row.enterprise_project_id) == (12_345, DB, MARKETING)
    assert ledger.scalar("SELECT count(*) FROM billed_orders") == 1


def test_the_copy_of_a_project_keeps_its_newest_revision(ledger):
    events = "iam_agency.enterprise_project"
    deliver(
        ledger.uow,
        BillingService.on_enterprise_project_created,
        f"{events}.created",
        project_event(MARKETING, "Marketing", 1),
    )
    deliver(
        ledger.uow,
        BillingService.on_enterprise_project_disabled,
        f"{events}.disabled",
        project_event(MARKETING, "Marketing", 3, status="disabled"),
    )
    # an older change arriving late changes nothing
    deliver(
        ledger.uow,
        BillingService.on_enterprise_project_enabled,
        f"{events}.enabled",
        project_event(MARKETING, "Old name", 2),
    )
    copy = ledger.uow.bills.project(BUYER, MARKETING)
    assert (copy.name, copy.status, copy.revision, copy.type) == (
        "Marketing",
        "disabled",
        3,
        "commercial",
    )
    ledger.uow.rollback()

    deliver(
        ledger.uow,
        BillingService.on_enterprise_project_enabled,
        f"{events}.enabled",
        project_event(MARKETING, "Campaigns", 4),
    )
    copy = ledger.uow.bills.project(BUYER, MARKETING)
    assert (copy.name, copy.status, copy.revision) == ("Campaigns", "enabled", 4)
    ledger.uow.rollback()

    ledger.order("ord_m", 700, project=MARKETING)
    (line,) = ledger.bill("2026-11")["items"]
    assert line["enterprise_project_name"] == "Campaigns"


# -- orders billing never heard of ------------------------------------------------------


class FakeOrders:
    """orders' ``order_facts``: what ``orders.order.created`` said (times as JSON has
    them), unknown orders left out; ``failing`` raises as a silent orders does."""

    def __init__(self, *facts: dict, failing: bool = False) -> None:
        self.facts = {
            data["order_id"]: {**bills._plain(data), "created_at": NOVEMBER.isoformat()}
            for data in facts
        }
        self.failing = failing
        self.calls: list[list[str]] = []

    def order_facts(self, order_ids: list[str]) -> dict:
        self.calls.append(list(order_ids))
        if self.failing:
            raise ServiceUnavailable("orders did not answer order_facts within 5s")
        return {"orders": [self.facts[key] for key in order_ids if key in self.facts]}


def test_a_bill_line_of_an_order_billing_never_heard_of_is_asked_of_orders(ledger, two_months):
    # ord_e was paid before billing heard of its creation
    silent = FakeOrders(failing=True)
    (last,) = ledger.bill("2026-11", orders=silent)["items"][-1:]
    assert (last["order_id"], last["product_name"]) == ("ord_e", None)  # answered all the same
    assert silent.calls == [["ord_e"]]

    orders = FakeOrders(created("ord_e", 300, product=DB))
    bill = ledger.bill("2026-11", orders=orders)

    last = bill["items"][-1]
    assert (last["order_id"], last["product_id"], last["product_name"], last["order_type"]) == (
        "ord_e",
        DB,
        "Contoso DB",
        "purchase",
    )
    assert orders.calls == [["ord_e"]]  # once, for the unknown orders of the page only
    assert ledger.scalar("SELECT count(*) FROM billed_orders WHERE order_id = 'ord_e'") == 1
    assert bill["total_net"] == usd(15_350)
    ledger.bill("2026-11", orders=orders)
    assert orders.calls == [["ord_e"]]  # kept: not asked again


def test_a_cost_analysis_by_product_asks_orders_for_the_orders_billing_never_heard_of(
    ledger, two_months
):
    before = ledger.costs("2026-11-01", "2026-11-30", "product")
    assert [point["key"] for point in before["series"]] == [CRM, DB, None]
    orders = FakeOrders(created("ord_e", 300, product=DB), created("ord_x", 1))

    after = ledger.costs("2026-11-01", "2026-11-30", "product", orders=orders)

    assert orders.calls == [["ord_e"]]
    assert {point["key"]: point["amount"]["amount"] for point in after["series"]} == {
        CRM: 10_000 + 7_777 - 7_777,
        DB: 2_550 + 4_000 - 1_500 + 300,
    }
    assert after["total"] == before["total"]


def test_a_bill_page_and_its_totals_are_read_from_one_snapshot(ledger, two_months, monkeypatch):
    """A payment committed between the page's statement and the totals' is in
    neither."""
    url = ledger.uow.session.get_bind().url.render_as_string(hide_password=False)
    totals = BillRepository.project_totals

    def after_a_payment(repository, *args, **kwargs):
        with standalone_unit_of_work(
            url,
            metadata,
            service_name="billing",
            command="test",
            repositories={"billing": BillingRepository, "invoices": InvoiceRepository},
        ) as uow:
            other = Ledger(uow)
            other.clock.set(NOVEMBER)
            other.order("ord_meanwhile", 1_000, known=False)
        return totals(repository, *args, **kwargs)

    monkeypatch.setattr(BillRepository, "project_totals", after_a_payment)
    bill = ledger.bill("2026-11")
    monkeypatch.undo()

    assert sum(line["amount"]["amount"] for line in bill["items"]) == 15_350
    assert bill["total_net"] == usd(15_350)
    assert ledger.bill("2026-11")["total_net"] == usd(16_350)  # there since


def test_a_reseller_s_totals_keep_each_customer_s_projects_apart(ledger, two_months):
    ledger.clock.set(NOVEMBER + dt.timedelta(days=1))
    ledger.order("ord_r2", 766, domain.RESELLER, buyer=OTHER, payer=RESELLER)

    reseller = ledger.bill("2026-11", account_id=RESELLER)

    assert [
        (total["buyer_account_id"], total["enterprise_project_id"], total["net"]["amount"])
        for total in reseller["totals"]
    ] == [(BUYER, "default", 1_234), (OTHER, "default", 766)]
    assert reseller["total_net"] == usd(2_000)
    # the account's own projects carry no buyer
    assert {total["buyer_account_id"] for total in ledger.bill("2026-11")["totals"]} == {None}


# -- in a running billing, over the broker ----------------------------------------------


@pytest.mark.interface
def test_the_rpcs_answer_the_bill_and_refuse_a_bad_query_naming_its_field(billing):  # noqa: F811
    """A running billing: orders.order.created over the broker (twice), the order paid
    by RPC, then list_bills and cost_analysis as the gateway calls them."""
    data = created("ord_rpc", 4_200, product=DB)
    data["account_id"] = data["payer_account_id"] = ANN["account_id"]
    publish_event(
        billing.config["AMQP_URI"], "orders.order.created", data, subject="ord_rpc", times=2
    )
    wait_for(
        lambda: (
            billing.scalar("SELECT count(*) FROM billed_orders WHERE order_id = 'ord_rpc'") == 1
        ),
        "the order's creation to be recorded",
    )
    top_up_by_rpc(billing, ANN, 5_000)
    assert pay(billing, ANN, "ord_rpc", 4_200, "balance")["status"] == "succeeded"
    month = billing.clock.now().strftime("%Y-%m")

    with billing.rpc(ANN) as service:
        bill = service.list_bills({"month": month})
        costs = service.cost_analysis(
            {"from": f"{month}-01", "to": f"{month}-28", "group_by": "product"}
        )
        with pytest.raises(ValidationError) as bad_month:
            service.list_bills({"month": "2026-13"})
        with pytest.raises(ValidationError) as bad_grouping:
            service.cost_analysis({"from": "2026-11-01", "to": "2026-11-02", "group_by": "x"})
        with pytest.raises(ValidationError) as bad_span:
            service.cost_analysis({"from": "2025-01-01", "to": "2026-11-02"})

    (line,) = bill["items"]
    assert (line["kind"], line["product_name"], line["amount"], line["order_type"]) == (
        "charge",
        "Contoso DB",
        usd(4_200),
        "purchase",
    )
    assert bill["total_net"] == usd(4_200)
    assert costs["series"] == [{"key": DB, "name": "Contoso DB", "amount": usd(4_200)}]
    assert costs["from"] == f"{month}-01"
    assert list(bad_month.value.fields) == ["month"]
    assert list(bad_grouping.value.fields) == ["group_by"]
    assert list(bad_span.value.fields) == ["to"]
    assert billing.scalar("SELECT count(*) FROM billed_orders") == 1


class OrdersAnswering:
    """orders' ``order_facts`` in a running container: records who asked."""

    name = "orders"
    caller = Caller()
    asked: list = []

    @rpc
    def order_facts(self, order_ids):
        identity = self.caller.require()
        OrdersAnswering.asked.append((identity.account_id, identity.is_service, order_ids))
        facts = created("ord_unheard", 2_100, product=DB)
        facts["account_id"] = facts["payer_account_id"] = ANN["account_id"]
        return {
            "orders": [
                {**bills._plain(facts), "created_at": NOVEMBER.isoformat()}
                for order_id in order_ids
                if order_id == "ord_unheard"
            ]
        }


@pytest.mark.interface
def test_a_running_billing_asks_orders_as_itself_for_an_order_it_never_heard_of(
    billing,  # noqa: F811
    container_factory,
):
    OrdersAnswering.asked = []
    container_factory(OrdersAnswering, billing.config).start()
    top_up_by_rpc(billing, ANN, 5_000)
    assert pay(billing, ANN, "ord_unheard", 2_100, "balance")["status"] == "succeeded"
    month = billing.clock.now().strftime("%Y-%m")

    with billing.rpc(ANN) as service:
        (line,) = service.list_bills({"month": month})["items"]
        again = service.list_bills({"month": month})

    assert (line["product_id"], line["product_name"]) == (DB, "Contoso DB")
    assert again["items"] == [line]
    # asked once, as billing's own work (orders answers no person)
    assert OrdersAnswering.asked == [("svc_billing", True, ["ord_unheard"])]
    assert billing.scalar("SELECT count(*) FROM billed_orders") == 1
