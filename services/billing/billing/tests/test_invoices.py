"""Invoices on PostgreSQL (billing's migrated schema, its own units of work outside
nameko, an in-memory card processor and catalog): the rules of a request, each
refusal naming its orders; issuing by the sweep (numbers without gaps, two sweeps at
once, a catalog that fails); the PDF read back and compared with the journal entries,
and its first page rendered to an image; return, reissue, and another buyer kept out."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import eventlet
import pypdfium2 as pdfium
import pytest
import sqlalchemy as sa

from billing import domain, invoices
from billing.bill_repository import BillRepository
from billing.invoice_pdf import format_amount
from billing.invoice_repository import InvoiceRepository
from billing.models import BilledOrder, metadata
from billing.repository import BillingRepository
from billing.tests.fakes import who
from billing.tests.support import BUYER, GOOD_CARD, GRACE, RESELLER, START
from billing.tests.test_refunds import PostgresBooks
from mercato.contracts import billing as contract
from mercato.errors import (
    BusinessRuleViolation,
    Conflict,
    NotFound,
    ServiceUnavailable,
    ValidationError,
)
from mercato.money import Money
from mercato.standalone import standalone_unit_of_work
from mercato.validation import dump, load
from mercato_testing import interface

OTHER_BUYER = "acc_other_buyer"
SELLER, OTHER_SELLER = "acc_seller_acme", "acc_seller_zeta"
ARTIFACTS = Path(__file__).resolve().parents[4] / "var" / "test-artifacts"
SELLERS = {
    SELLER: {
        "id": SELLER,
        "company_name": "Acme Cloud Ltd",
        "email": "sales@acme.test",
        "mobile": "+86 755 2878 0808",
        "support_range": "Mon-Fri 09:00-18:00 UTC+8",
    },
    OTHER_SELLER: {
        "id": OTHER_SELLER,
        "company_name": "Zeta Software",
        "email": "hello@zeta.test",
        "mobile": None,
        "support_range": None,
    },
}
DETAILS = {
    "title": "Contoso Trading Ltd",
    "tax_id": "91440300MA5G8X2K1P",
    "address": "1 Harbour Road, Nanshan, Shenzhen",
    "email": "accounts@contoso.test",
}


class FakeCatalog:
    """The catalog's ``get_seller``: fails ``failures`` times first, optionally
    yielding to other green threads on each call."""

    def __init__(self, failures: int = 0, pause: float = 0.0) -> None:
        self.failures = failures
        self.pause = pause
        self.calls: list[str] = []

    def get_seller(self, seller_account_id: str) -> dict[str, Any]:
        self.calls.append(seller_account_id)
        if self.pause:
            eventlet.sleep(self.pause)
        if self.failures:
            self.failures -= 1
            raise ServiceUnavailable("catalog did not answer get_seller within 10s")
        return dict(SELLERS[seller_account_id])


class InvoiceBooks(PostgresBooks):
    """The books, orders billing heard of, and the invoice use cases as the service
    calls them."""

    def order(
        self,
        order_id: str,
        amount: int,
        *,
        seller: str = SELLER,
        buyer: str = BUYER,
        payer: str | None = None,
        product: str = "Northwind CRM",
        paid: bool = True,
        method: str = domain.BALANCE,
        known: bool = True,
    ) -> dict | None:
        """What ``orders.order.created`` told billing (unless ``known`` is False), then
        (``paid``) its payment."""
        payer = payer or buyer
        if known:
            self.uow.session.add(
                BilledOrder(
                    order_id=order_id,
                    account_id=buyer,
                    payer_account_id=payer,
                    enterprise_project_id="default",
                    type="purchase",
                    subscription_id=None,
                    seller_account_id=seller,
                    product_id=f"prd_{product.split()[0].lower()}",
                    product_name=product,
                    lines=[line(order_id, product, amount)],
                    amount=amount,
                    currency="USD",
                    created_at=self.clock.now(),
                )
            )
            self.uow.commit()
        if not paid:
            return None
        if payer != buyer:
            method = domain.RESELLER
        return self.pay(
            order_id,
            amount,
            method,
            payer=payer,
            caller=who(buyer, "buyer", reseller=payer if payer != buyer else None),
        )

    def request(
        self, order_ids: list[str], account_id: str = BUYER, orders: Any = None, **changes: Any
    ) -> dict:
        data = load(contract.InvoiceRequest, {"order_ids": order_ids, **DETAILS, **changes})
        try:
            view = invoices.request_invoice(
                self.uow, self.clock, account_id=account_id, request=data, orders=orders
            )
        finally:
            self.uow.rollback()
        return dump(contract.InvoiceResponse, view)

    def issue(self, catalog: FakeCatalog | None = None) -> int:
        return invoices.issue_due(self.uow, self.clock, catalog or FakeCatalog())

    def invoice(self, invoice_id: str, account_id: str = BUYER) -> dict:
        try:
            view = invoices.get_invoice(self.uow, account_id=account_id, invoice_id=invoice_id)
        finally:
            self.uow.rollback()
        return dump(contract.InvoiceResponse, view)

    def pdf(self, invoice_id: str, account_id: str = BUYER) -> bytes:
        try:
            answer = invoices.get_invoice_pdf(
                self.uow, account_id=account_id, invoice_id=invoice_id
            )
        finally:
            self.uow.rollback()
        answer = dump(contract.InvoicePdfResponse, answer)
        assert answer["content_type"] == "application/pdf"
        assert answer["filename"] == f"{self.invoice(invoice_id)['number']}.pdf"
        return base64.b64decode(answer["content_base64"])

    def give_back(self, invoice_id: str, account_id: str = BUYER, reason: str = "Wrong tax id"):
        try:
            view = invoices.return_invoice(
                self.uow, self.clock, account_id=account_id, invoice_id=invoice_id, reason=reason
            )
        finally:
            self.uow.rollback()
        return dump(contract.InvoiceResponse, view)

    def reissue(self, invoice_id: str, account_id: str = BUYER, **changes: Any) -> dict:
        data = load(contract.InvoiceReissueRequest, changes)
        try:
            view = invoices.reissue_invoice(
                self.uow, self.clock, account_id=account_id, invoice_id=invoice_id, changes=data
            )
        finally:
            self.uow.rollback()
        return dump(contract.InvoiceResponse, view)

    def listed(self, account_id: str = BUYER, **query: Any) -> dict:
        data = load(contract.InvoiceQuery, query)
        try:
            view = invoices.list_invoices(self.uow, account_id=account_id, **data)
        finally:
            self.uow.rollback()
        return dump(contract.InvoicePage, view)

    def paid_per_order(self) -> dict[str, int]:
        """What each order's payment took, from the journal entries themselves."""
        rows = self.uow.session.execute(
            sa.text("SELECT order_id, -amount FROM journal_entries WHERE kind = 'payment'")
        ).all()
        self.uow.rollback()
        return {order_id: int(amount) for order_id, amount in rows}

    def count(self, sql: str, **params: Any) -> int:
        return int(self.scalar(sql, **params))


def line(order_id: str, product: str, amount: int) -> dict:
    """An order line as ``orders.order.created`` carries it."""
    return {
        "id": f"oln_{order_id}",
        "product_id": f"prd_{product.split()[0].lower()}",
        "product_name": product,
        "seller_account_id": SELLER,
        "specification_id": "spec_std",
        "specification_name": "Standard, 10 users",
        "delivery_method": "saas",
        "service_supervision": False,
        "billing_mode": "yearly_monthly",
        "period": {"unit": "year", "count": 1},
        "quantity": 1,
        "unit_price": {"amount": amount, "currency": "USD"},
        "amount": {"amount": amount, "currency": "USD"},
    }


@contextlib.contextmanager
def unit_of_work(url: str) -> Iterator[Any]:
    with standalone_unit_of_work(
        url,
        metadata,
        service_name="billing",
        command="test",
        repositories={
            "billing": BillingRepository,
            "invoices": InvoiceRepository,
            "bills": BillRepository,
        },
    ) as uow:
        yield uow


@pytest.fixture
def database(databases) -> str:
    return databases.fresh("billing")


@pytest.fixture
def books(database):
    with unit_of_work(database) as uow:
        books = InvoiceBooks(uow)
        books.gateway.charge("seed", books.gateway.card(GOOD_CARD["token"]), Money(100_000, "USD"))
        books.top_up(500_000)
        books.grant_credit(50_000, account_id=RESELLER)
        yield books


def sample(name: str, **labels: str) -> float:
    return interface.sample(name, service="billing", **labels)


def flat(text: str) -> str:
    """The page's text without its line breaks and spaces (a long order id wraps in its
    table cell)."""
    return re.sub(r"\s+", "", text)


def page_text(pdf: bytes) -> str:
    document = pdfium.PdfDocument(pdf)
    try:
        return "\n".join(page.get_textpage().get_text_range() for page in document)
    finally:
        document.close()


# -- requests ---------------------------------------------------------------------------


def test_a_request_names_each_order_that_cannot_be_invoiced_and_why(books):
    books.order("ord_ok", 10_000)
    books.order("ord_unpaid", 2_000, paid=False)
    books.refund(books.order("ord_refunded", 3_000))
    books.order("ord_by_reseller", 4_000, payer=RESELLER)
    books.order("ord_invoiced", 5_000)
    first = books.request(["ord_invoiced"])
    requested_before = sample("mercato_invoices_total", status="requested")

    with pytest.raises(Conflict) as refused:
        books.request(["ord_ok", "ord_unpaid", "ord_refunded", "ord_by_reseller", "ord_invoiced"])

    assert refused.value.code == "CONFLICT"
    assert refused.value.fields == {
        "order_ids": [
            "ord_unpaid: not_paid",
            "ord_refunded: refunded",
            "ord_by_reseller: paid_by_reseller",
            f"ord_invoiced: {invoices.ALREADY_INVOICED}",
        ]
    }
    # nothing written; the good order alone is invoiced
    assert books.count("SELECT count(*) FROM invoices") == 1
    assert sample("mercato_invoices_total", status="requested") == requested_before
    alone = books.request(["ord_ok"])
    assert alone["status"] == "requested" and alone["id"] != first["id"]
    assert alone["orders"] == [
        {
            "order_id": "ord_ok",
            "product_name": "Northwind CRM",
            "amount": {"amount": 10_000, "currency": "USD"},
        }
    ]
    assert (alone["number"], alone["seller"], alone["issued_at"]) == (None, None, None)
    assert alone["amount"] == {"amount": 10_000, "currency": "USD"}
    assert {key: alone[key] for key in DETAILS} == DETAILS
    (event,) = [e for e in books.of_type(invoices.INVOICE_REQUESTED) if e["subject"] == alone["id"]]
    assert event["data"]["order_ids"] == ["ord_ok"]
    assert event["data"]["seller_account_id"] == SELLER
    assert sample("mercato_invoices_total", status="requested") == requested_before + 1


def test_a_pending_card_refund_also_keeps_the_order_off_an_invoice(books):
    payment = books.order("ord_card", 6_000, method=domain.CREDIT_CARD)
    books.uow.session.execute(
        sa.text(
            "INSERT INTO refunds (id, payment_id, order_id, account_id, payer_account_id, "
            "payment_method, amount, currency, status, reason, created_at, updated_at) "
            "VALUES ('rfd_p', :payment, 'ord_card', :buyer, :buyer, 'credit_card', 6000, "
            "'USD', 'pending', 'cancelled', :now, :now)"
        ),
        {"payment": payment["id"], "buyer": BUYER, "now": START},
    )
    books.uow.commit()
    with pytest.raises(Conflict) as refused:
        books.request(["ord_card"])
    assert refused.value.fields == {"order_ids": ["ord_card: refunded"]}


def test_an_order_of_another_buyer_or_unknown_to_billing_is_not_found(books):
    books.order("ord_mine", 1_000)
    books.order("ord_theirs", 1_000, buyer=OTHER_BUYER, paid=False)
    for order_ids in (["ord_mine", "ord_theirs"], ["ord_mine", "ord_never_heard_of"]):
        with pytest.raises(NotFound):
            books.request(order_ids)
    assert books.count("SELECT count(*) FROM invoices") == 0


class FakeOrders:
    """orders' ``order_facts``: what ``orders.order.created`` said of each order it
    knows (as JSON has it), unknown ones left out; ``failing`` raises as a silent one."""

    def __init__(self, *order_ids: str, failing: bool = False) -> None:
        self.known = set(order_ids)
        self.failing = failing
        self.calls: list[list[str]] = []

    def order_facts(self, order_ids: list[str]) -> dict:
        self.calls.append(list(order_ids))
        if self.failing:
            raise ServiceUnavailable("orders did not answer order_facts within 5s")
        return {
            "orders": [
                {
                    "order_id": order_id,
                    "account_id": BUYER,
                    "payer_account_id": BUYER,
                    "enterprise_project_id": "default",
                    "amount_due": {"amount": 2_500, "currency": "USD"},
                    "lines": [line(order_id, "Acme Backup", 2_500)],
                    "payment_deadline": "2026-11-28T09:00:00+00:00",
                    "type": "purchase",
                    "subscription_id": None,
                    "created_at": START.isoformat(),
                }
                for order_id in order_ids
                if order_id in self.known
            ]
        }


def test_a_paid_order_billing_never_heard_of_is_asked_of_orders_once(books):
    books.order("ord_known", 1_000)
    books.order("ord_early", 2_500, known=False)  # paid before orders.order.created came
    books.order("ord_unpaid", 700, paid=False, known=False)
    books.order("ord_later", 900, known=False)
    silent = FakeOrders(failing=True)
    with pytest.raises(NotFound):  # orders did not answer: as billing knows it
        books.request(["ord_known", "ord_early"], orders=silent)
    orders = FakeOrders("ord_early", "ord_unpaid", "ord_later")

    invoice = books.request(["ord_known", "ord_early"], orders=orders)

    assert orders.calls == [["ord_early"]]  # once, for the unknown paid orders only
    assert [(o["order_id"], o["product_name"]) for o in invoice["orders"]] == [
        ("ord_early", "Acme Backup"),
        ("ord_known", "Northwind CRM"),
    ]
    assert invoice["amount"] == {"amount": 3_500, "currency": "USD"}
    row = books.uow.session.get(BilledOrder, "ord_early")
    assert (row.account_id, row.seller_account_id, row.created_at) == (BUYER, SELLER, START)
    books.uow.rollback()
    # neither an order the caller did not pay nor another buyer's is asked about
    with pytest.raises(NotFound):
        books.request(["ord_unpaid"], orders=orders)
    with pytest.raises(NotFound):
        books.request(["ord_later"], OTHER_BUYER, orders=orders)
    assert orders.calls == [["ord_early"]]
    assert books.issue() == 1
    assert "Acme Backup" in page_text(books.pdf(invoice["id"]))


def test_the_orders_of_an_invoice_are_of_one_seller(books):
    books.order("ord_acme", 1_000)
    books.order("ord_zeta", 2_000, seller=OTHER_SELLER, product="Zeta Notes")
    with pytest.raises(BusinessRuleViolation) as refused:
        books.request(["ord_acme", "ord_zeta"])
    assert refused.value.code == invoices.SELLERS_DIFFER
    assert refused.value.fields == {
        "order_ids": [f"ord_acme: seller {SELLER}", f"ord_zeta: seller {OTHER_SELLER}"]
    }
    assert books.count("SELECT count(*) FROM invoices") == 0


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"order_ids": []}, "order_ids"),
        ({"order_ids": [f"ord_{n}" for n in range(51)]}, "order_ids"),
        ({"order_ids": ["ord_1", "ord_1"]}, "order_ids"),
        ({"order_ids": "ord_1"}, "order_ids"),
        ({"title": ""}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"tax_id": "x" * 65}, "tax_id"),
        ({"address": ""}, "address"),
        ({"email": "not-an-email"}, "email"),
        ({"currency": "USD"}, "currency"),
    ],
)
def test_a_bad_request_is_refused_naming_the_field(changes, field):
    with pytest.raises(ValidationError) as refused:
        load(contract.InvoiceRequest, {"order_ids": ["ord_1"], **DETAILS, **changes})
    assert list(refused.value.fields) == [field]


def test_two_requests_for_the_same_order_at_once_one_wins_the_other_is_a_conflict(books, database):
    books.order("ord_contested", 7_000)
    books.order("ord_other", 1_000)
    with unit_of_work(database) as rival:
        # the rival has written its invoice and not committed it yet
        rival_books = InvoiceBooks(rival)
        data = load(contract.InvoiceRequest, {"order_ids": ["ord_contested"], **DETAILS})
        uncommitted = invoices._new_invoice(
            BUYER,
            SELLER,
            [rival.invoices.standings(["ord_contested"])["ord_contested"]],
            details=data,
            now=rival_books.clock.now(),
        )
        assert rival.invoices.add_invoice(*uncommitted)

        # the request sees no live invoice yet, and waits on the index for the rival
        late = eventlet.spawn(books.request, ["ord_other", "ord_contested"])
        eventlet.sleep(0.5)
        rival.commit()
        with pytest.raises(Conflict) as refused:
            late.wait()

    assert refused.value.fields == {"order_ids": ["ord_contested: already_invoiced"]}
    # nothing half written: the rival's invoice alone, ord_other free
    assert books.count("SELECT count(*) FROM invoices") == 1
    assert books.count("SELECT count(*) FROM invoice_orders WHERE order_id = 'ord_other'") == 0
    assert books.request(["ord_other"])["status"] == "requested"


def test_requests_racing_for_an_order_give_one_invoice(books, database):
    books.order("ord_race", 7_000)
    outcomes: list[str] = []

    def ask() -> None:
        with unit_of_work(database) as uow:
            try:
                InvoiceBooks(uow).request(["ord_race"])
                outcomes.append("requested")
            except Conflict as refused:
                assert refused.fields == {"order_ids": ["ord_race: already_invoiced"]}
                outcomes.append("conflict")

    threads = [eventlet.spawn(ask) for _ in range(4)]
    for thread in threads:
        thread.wait()
    assert sorted(outcomes) == ["conflict"] * 3 + ["requested"]
    assert books.count("SELECT count(*) FROM invoices") == 1


# -- issuing ----------------------------------------------------------------------------


def test_the_sweep_issues_numbers_in_sequence_without_gaps_per_year(books):
    for n in range(3):
        books.order(f"ord_{n}", 1_000 * (n + 1))
    requested = []
    for n in range(3):
        requested.append(books.request([f"ord_{n}"]))
        books.clock.advance(dt.timedelta(seconds=1))  # issued in the order asked
    issued_before = sample("mercato_invoices_total", status="issued")

    assert books.issue() == 3

    numbers = [books.invoice(invoice["id"])["number"] for invoice in requested]
    assert numbers == ["INV-2026-000001", "INV-2026-000002", "INV-2026-000003"]
    assert sample("mercato_invoices_total", status="issued") == issued_before + 3
    assert sample("mercato_invoices_pending") == 0
    first = books.invoice(requested[0]["id"])
    assert first["status"] == "issued" and first["issued_at"] is not None
    assert first["seller"] == SELLERS[SELLER]
    events = books.of_type(invoices.INVOICE_ISSUED)
    assert [event["data"]["number"] for event in events] == numbers
    assert books.issue() == 0  # nothing due twice

    # a new year starts again at 1
    books.clock.advance(dt.timedelta(days=40))
    books.order("ord_next_year", 500)
    next_year = books.request(["ord_next_year"])
    books.issue()
    assert books.invoice(next_year["id"])["number"] == "INV-2027-000001"
    assert books.count("SELECT last FROM invoice_number_counters WHERE year = 2026") == 3


def test_two_sweeps_at_once_issue_each_invoice_once_and_skip_no_number(books, database):
    for n in range(12):
        books.order(f"ord_{n}", 100 + n)
        books.request([f"ord_{n}"])

    def sweep() -> int:
        with unit_of_work(database) as uow:
            sweeper = InvoiceBooks(uow)
            return invoices.issue_due(
                uow, sweeper.clock, FakeCatalog(pause=0.01), batch=5
            ) + invoices.issue_due(uow, sweeper.clock, FakeCatalog(pause=0.01), batch=5)

    counts = [thread.wait() for thread in [eventlet.spawn(sweep), eventlet.spawn(sweep)]]

    assert sum(counts) <= 12
    books.issue()  # whatever the two batches of 5 left
    numbers = sorted(
        row[0] for row in books.uow.session.execute(sa.text("SELECT number FROM invoices")).all()
    )
    books.uow.rollback()
    assert numbers == [f"INV-2026-{n:06d}" for n in range(1, 13)]
    assert books.count("SELECT count(*) FROM invoice_documents") == 12
    assert len(books.of_type(invoices.INVOICE_ISSUED)) == 12


def test_a_catalog_that_fails_is_asked_again_later(books):
    books.order("ord_1", 1_000)
    invoice = books.request(["ord_1"])
    failures_before = sample("mercato_invoice_issue_failures_total")
    catalog = FakeCatalog(failures=1)

    assert books.issue(catalog) == 0

    assert books.invoice(invoice["id"])["status"] == "requested"
    assert sample("mercato_invoice_issue_failures_total") == failures_before + 1
    assert sample("mercato_invoices_pending") == 1
    assert books.count("SELECT issue_attempts FROM invoices") == 1
    assert books.count("SELECT count(*) FROM invoice_number_counters") == 0  # no number used
    # backed off: not asked again at once
    assert books.issue(catalog) == 0 and catalog.calls == [SELLER]
    books.clock.advance(invoices.retry_delay(0) + dt.timedelta(seconds=1))
    assert books.issue(catalog) == 1
    assert books.invoice(invoice["id"])["number"] == "INV-2026-000001"
    assert invoices.retry_delay(1) == 2 * invoices.retry_delay(0)
    assert invoices.retry_delay(50) == invoices.RETRY_AT_MOST


def test_an_invoice_whose_issue_raises_backs_off_and_gives_its_number_back(books, monkeypatch):
    books.order("ord_1", 1_000)
    invoice = books.request(["ord_1"])

    def broken(data):
        raise RuntimeError("renderer broke")

    monkeypatch.setattr(invoices.invoice_pdf, "render", broken)
    assert books.issue() == 0
    assert books.count("SELECT coalesce(max(last), 0) FROM invoice_number_counters") == 0
    monkeypatch.undo()
    books.clock.advance(dt.timedelta(minutes=1))
    assert books.issue() == 1
    assert books.invoice(invoice["id"])["number"] == "INV-2026-000001"


# -- the PDF ----------------------------------------------------------------------------


def test_the_pdf_reads_back_the_ledgers_amounts_seller_buyer_number_and_lines(books):
    books.order("ord_7e1d2c3b4a5f46e7d8c9b0a1f2e3d4c5", 129_900)
    books.order("ord_8f2e3d4c5b6a47f8e9d0c1b2a3f4e5d6", 4_550, product="Acme Backup")
    invoice = books.request(
        ["ord_7e1d2c3b4a5f46e7d8c9b0a1f2e3d4c5", "ord_8f2e3d4c5b6a47f8e9d0c1b2a3f4e5d6"]
    )
    books.issue()
    issued = books.invoice(invoice["id"])

    text = page_text(books.pdf(invoice["id"]))

    paid = books.paid_per_order()
    for order in issued["orders"]:
        assert order["amount"]["amount"] == paid[order["order_id"]]
        assert format_amount(paid[order["order_id"]], "USD") in text
        assert order["order_id"] in flat(text)
    total = sum(paid.values())
    assert total == 134_450
    assert issued["amount"] == {"amount": total, "currency": "USD"}
    assert f"Total: {format_amount(total, 'USD')} USD" in text  # 1,344.50
    assert "1,299.00" in text and "45.50" in text and "1,344.50" in text
    for expected in (
        "Invoice",
        issued["number"],
        f"Issue date: {START:%Y-%m-%d}",
        "Acme Cloud Ltd",
        "sales@acme.test",
        "+86 755 2878 0808",
        DETAILS["title"],
        DETAILS["tax_id"],
        DETAILS["address"],
        DETAILS["email"],
        "Northwind CRM",
        "Acme Backup",
        "Standard, 10",
        "1 year",
        "Currency: USD",
    ):
        assert expected in text, expected
    # kept as issued: the same bytes every time, and its digest with it
    pdf = books.pdf(invoice["id"])
    assert pdf == books.pdf(invoice["id"]) and pdf.startswith(b"%PDF-")
    assert books.scalar("SELECT sha256 FROM invoice_documents") == hashlib.sha256(pdf).hexdigest()


def test_the_first_page_renders_to_a_readable_image(books):
    books.order("ord_7e1d2c3b4a5f46e7d8c9b0a1f2e3d4c5", 129_900)
    invoice = books.request(["ord_7e1d2c3b4a5f46e7d8c9b0a1f2e3d4c5"])
    books.issue()
    pdf = books.pdf(invoice["id"])

    document = pdfium.PdfDocument(pdf)
    try:
        assert len(document) == 1
        page = document[0]
        width, height = page.get_size()
        assert (round(width), round(height)) == (595, 842)  # A4 in points
        assert "Invoice" in page.get_textpage().get_text_range()
        image = page.render(scale=2).to_pil().convert("L")
    finally:
        document.close()
    assert image.size == (1191, 1684)
    darkest, lightest = image.getextrema()
    assert (darkest, lightest) == (0, 255)
    inked = sum(count for value, count in enumerate(image.histogram()) if value < 128)
    assert 0.005 < inked / (image.size[0] * image.size[1]) < 0.2  # text, not blank, not black
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    image.save(ARTIFACTS / "invoice-page-1.png")


def test_the_pdf_of_an_invoice_not_issued_yet_is_a_conflict(books):
    books.order("ord_1", 1_000)
    invoice = books.request(["ord_1"])
    with pytest.raises(Conflict) as refused:
        books.pdf(invoice["id"])
    assert refused.value.fields == {"status": ["requested"]}


# -- return and reissue -----------------------------------------------------------------


def test_returning_an_issued_invoice_frees_its_orders(books):
    books.order("ord_1", 1_000)
    books.order("ord_2", 2_000)
    invoice = books.request(["ord_1", "ord_2"])
    with pytest.raises(Conflict) as not_issued:
        books.give_back(invoice["id"])
    assert not_issued.value.fields == {"status": ["requested"]}
    books.issue()
    returned_before = sample("mercato_invoices_total", status="returned")

    returned = books.give_back(invoice["id"], reason="The tax id was wrong.")

    assert returned["status"] == "returned"
    assert returned["return_reason"] == "The tax id was wrong."
    assert returned["returned_at"] is not None
    assert returned["number"] == "INV-2026-000001"
    assert sample("mercato_invoices_total", status="returned") == returned_before + 1
    (event,) = books.of_type(invoices.INVOICE_RETURNED)
    assert event["data"]["order_ids"] == ["ord_1", "ord_2"]
    assert event["data"]["reason"] == "The tax id was wrong."
    with pytest.raises(Conflict):
        books.give_back(invoice["id"])
    # the PDF stays as it was issued
    assert books.pdf(invoice["id"]).startswith(b"%PDF-")
    # its orders may be invoiced again, one at a time
    again = books.request(["ord_2"])
    assert again["status"] == "requested"
    assert books.listed()["total"] == 2
    assert [item["id"] for item in books.listed(status="returned")["items"]] == [invoice["id"]]


def test_a_returned_invoice_is_reissued_for_the_same_orders(books):
    books.order("ord_1", 1_000)
    books.order("ord_2", 2_000)
    invoice = books.request(["ord_1", "ord_2"])
    with pytest.raises(Conflict):
        books.reissue(invoice["id"])
    books.issue()
    books.give_back(invoice["id"])

    new = books.reissue(invoice["id"], title="Contoso Holdings Ltd")

    assert new["status"] == "requested" and new["reissue_of"] == invoice["id"]
    assert new["title"] == "Contoso Holdings Ltd" and new["tax_id"] == DETAILS["tax_id"]
    assert [order["order_id"] for order in new["orders"]] == ["ord_1", "ord_2"]
    assert new["amount"] == {"amount": 3_000, "currency": "USD"}
    old = books.invoice(invoice["id"])
    assert (old["status"], old["reissued_as"]) == ("reissued", new["id"])
    with pytest.raises(Conflict):
        books.reissue(invoice["id"])
    books.issue()
    reissued = books.invoice(new["id"])
    assert reissued["number"] == "INV-2026-000002"
    assert "Contoso Holdings Ltd" in page_text(books.pdf(new["id"]))
    requested = [e["data"] for e in books.of_type(invoices.INVOICE_REQUESTED)]
    assert requested[-1]["reissue_of"] == invoice["id"]


def test_a_reissue_is_refused_when_an_order_was_invoiced_again_meanwhile(books):
    books.order("ord_1", 1_000)
    books.order("ord_2", 2_000)
    invoice = books.request(["ord_1", "ord_2"])
    books.issue()
    books.give_back(invoice["id"])
    books.request(["ord_2"])

    with pytest.raises(Conflict) as refused:
        books.reissue(invoice["id"], email="new@contoso.test")

    assert refused.value.fields == {"order_ids": ["ord_2: already_invoiced"]}
    assert books.invoice(invoice["id"])["status"] == "returned"
    assert books.count("SELECT count(*) FROM invoices") == 2


def test_another_buyer_can_neither_see_nor_download_return_or_reissue_an_invoice(books):
    books.order("ord_1", 1_000)
    invoice = books.request(["ord_1"])
    books.issue()
    for attempt in (
        lambda: books.invoice(invoice["id"], OTHER_BUYER),
        lambda: books.pdf(invoice["id"], OTHER_BUYER),
        lambda: books.give_back(invoice["id"], OTHER_BUYER),
        lambda: books.reissue(invoice["id"], OTHER_BUYER),
        lambda: books.invoice("inv_unknown"),
    ):
        with pytest.raises(NotFound):
            attempt()
    assert books.listed(OTHER_BUYER)["total"] == 0
    assert books.invoice(invoice["id"])["status"] == "issued"


# -- refunds end invoices ---------------------------------------------------------------


def live_rows(books, invoice_id: str) -> int:
    return books.count(
        "SELECT count(*) FROM invoice_orders WHERE invoice_id = :id AND active", id=invoice_id
    )


def test_a_refund_cancels_the_requested_invoice_of_its_order(books):
    payment = books.order("ord_1", 1_000)
    books.order("ord_2", 2_000)
    invoice = books.request(["ord_1", "ord_2"])
    cancelled_before = sample("mercato_invoices_total", status="cancelled")

    books.refund(payment)

    cancelled = books.invoice(invoice["id"])
    assert (cancelled["status"], cancelled["number"]) == ("cancelled", None)
    assert cancelled["return_reason"] == "order ord_1 was refunded"
    assert live_rows(books, invoice["id"]) == 0
    (event,) = books.of_type(invoices.INVOICE_CANCELLED)
    assert event["subject"] == invoice["id"]
    assert event["data"]["order_ids"] == ["ord_1", "ord_2"]
    assert event["data"]["reason"] == "order ord_1 was refunded"
    assert sample("mercato_invoices_total", status="cancelled") == cancelled_before + 1
    assert [item["id"] for item in books.listed(status="cancelled")["items"]] == [invoice["id"]]
    # nothing to issue, no number used; the other order may be invoiced again
    assert books.issue() == 0
    assert books.count("SELECT count(*) FROM invoice_number_counters") == 0
    with pytest.raises(Conflict) as refused:
        books.request(["ord_1"])
    assert refused.value.fields == {"order_ids": ["ord_1: refunded"]}
    again = books.request(["ord_2"])
    assert books.issue() == 1
    assert books.invoice(again["id"])["number"] == "INV-2026-000001"


def test_an_order_refunded_unseen_by_its_refund_is_cancelled_at_issue_without_a_number(books):
    """The refund's transaction did not see the invoice (it committed beside the
    request): the sweep re-reads the orders under the invoice's lock."""
    payment = books.order("ord_1", 1_000)
    books.order("ord_2", 2_000)
    invoice = books.request(["ord_1"])
    books.uow.session.execute(
        sa.text(
            "INSERT INTO refunds (id, payment_id, order_id, account_id, payer_account_id, "
            "payment_method, amount, currency, status, reason, created_at, updated_at) "
            "VALUES ('rfd_race', :payment, 'ord_1', :buyer, :buyer, 'balance', 1000, "
            "'USD', 'succeeded', 'cancelled', :now, :now)"
        ),
        {"payment": payment["id"], "buyer": BUYER, "now": START},
    )
    books.uow.commit()
    cancelled_before = sample("mercato_invoices_total", status="cancelled")
    issued_before = sample("mercato_invoices_total", status="issued")

    assert books.issue() == 0

    cancelled = books.invoice(invoice["id"])
    assert (cancelled["status"], cancelled["number"]) == ("cancelled", None)
    assert cancelled["return_reason"] == "order ord_1 was refunded"
    assert live_rows(books, invoice["id"]) == 0
    assert books.of_type(invoices.INVOICE_ISSUED) == []
    assert len(books.of_type(invoices.INVOICE_CANCELLED)) == 1
    assert sample("mercato_invoices_total", status="cancelled") == cancelled_before + 1
    assert sample("mercato_invoices_total", status="issued") == issued_before
    assert sample("mercato_invoices_pending") == 0
    # the number that would have been used goes to the next invoice
    assert books.count("SELECT coalesce(max(last), 0) FROM invoice_number_counters") == 0
    following = books.request(["ord_2"])
    assert books.issue() == 1
    assert books.invoice(following["id"])["number"] == "INV-2026-000001"


def test_a_refund_returns_the_issued_invoice_of_its_order(books):
    payment = books.order("ord_1", 1_000)
    books.order("ord_2", 2_000)
    invoice = books.request(["ord_1", "ord_2"])
    books.issue()
    returned_before = sample("mercato_invoices_total", status="returned")

    books.refund(payment)

    returned = books.invoice(invoice["id"])
    assert (returned["status"], returned["number"]) == ("returned", "INV-2026-000001")
    assert returned["return_reason"] == "order ord_1 was refunded"
    assert returned["returned_at"] is not None
    assert live_rows(books, invoice["id"]) == 0
    (event,) = books.of_type(invoices.INVOICE_RETURNED)
    assert event["data"]["number"] == "INV-2026-000001"
    assert event["data"]["reason"] == "order ord_1 was refunded"
    assert books.of_type(invoices.INVOICE_CANCELLED) == []
    assert sample("mercato_invoices_total", status="returned") == returned_before + 1
    # a reissue would invoice the refunded order again: refused
    with pytest.raises(Conflict) as refused:
        books.reissue(invoice["id"])
    assert refused.value.fields == {"order_ids": ["ord_1: refunded"]}
    assert books.pdf(invoice["id"]).startswith(b"%PDF-")  # as it was issued


def test_a_card_refund_ends_the_invoice_once_the_processor_confirms_it(books):
    payment = books.order("ord_card", 7_500, method=domain.CREDIT_CARD)
    invoice = books.request(["ord_card"])
    books.issue()
    books.gateway.silent_refunds = 1

    assert books.refund(payment)["status"] == "pending"
    assert books.invoice(invoice["id"])["status"] == "issued"  # not refunded yet

    books.clock.advance(GRACE * 2)
    assert books.recover() == 1

    returned = books.invoice(invoice["id"])
    assert (returned["status"], returned["return_reason"]) == (
        "returned",
        "order ord_card was refunded",
    )
    assert live_rows(books, invoice["id"]) == 0


# -- the sweep and a failing seller -----------------------------------------------------


def test_a_seller_the_catalog_failed_for_is_not_asked_again_in_the_same_sweep(books):
    for n in range(3):
        books.order(f"ord_{n}", 1_000)
        books.request([f"ord_{n}"])
        books.clock.advance(dt.timedelta(seconds=1))
    books.order("ord_zeta", 500, seller=OTHER_SELLER)
    zeta = books.request(["ord_zeta"])
    failures_before = sample("mercato_invoice_issue_failures_total")
    catalog = FakeCatalog(failures=1)

    assert books.issue(catalog) == 1  # the other seller's

    assert catalog.calls == [SELLER, OTHER_SELLER]
    assert sample("mercato_invoice_issue_failures_total") == failures_before + 3
    assert books.count("SELECT count(*) FROM invoices WHERE issue_attempts = 1") == 3
    assert books.invoice(zeta["id"])["number"] == "INV-2026-000001"
    books.clock.advance(invoices.retry_delay(0) + dt.timedelta(seconds=1))
    assert books.issue(catalog) == 3


def test_a_failure_is_counted_only_when_the_invoice_was_backed_off(books, monkeypatch):
    books.order("ord_1", 1_000)
    invoice = books.request(["ord_1"])
    failures_before = sample("mercato_invoice_issue_failures_total")

    def lease_lost_then_broke(uow, clock, invoice_id, lease_until, seller):
        # another sweep took the invoice over (this one's lease ran out), then this fails
        uow.session.execute(
            sa.text("UPDATE invoices SET issue_claimed_until = NULL WHERE id = :id"),
            {"id": invoice_id},
        )
        uow.commit()
        raise RuntimeError("renderer broke")

    monkeypatch.setattr(invoices, "_issue", lease_lost_then_broke)
    assert books.issue() == 0

    assert sample("mercato_invoice_issue_failures_total") == failures_before
    assert books.count("SELECT issue_attempts FROM invoices WHERE id = :id", id=invoice["id"]) == 0
