"""The catalog's use cases on an in-memory repository: the rules of its flows, in
milliseconds (the same flows run on PostgreSQL in test_service.py)."""

from __future__ import annotations

import pytest

from catalog import usecases
from catalog.tests.fakes import FakeCatalogRepository
from catalog.tests.support import (
    BUYER,
    OPERATOR,
    OTHER_BUYER,
    OTHER_SELLER,
    SELLER,
    START,
    product_payload,
    quote_of,
)
from mercato.clock import ManualClock
from mercato.errors import BusinessRuleViolation, Conflict, NotFound, ValidationError
from mercato_testing.fakes import FakeUnitOfWork


@pytest.fixture
def clock():
    return ManualClock(START)


def set_profile(uow, clock, **changes) -> dict:
    profile = {
        "company_name": "Acme Cloud Ltd",
        "email": "sales@acme.example",
        "mobile": None,
        "support_range": None,
        "currency": None,
        **changes,
    }
    return usecases.upsert_seller_profile(uow, clock, account_id=SELLER.account_id, **profile)


@pytest.fixture
def uow(clock):
    """A unit of work on an empty catalog but for SELLER's profile, committed."""
    unit = FakeUnitOfWork(catalog=FakeCatalogRepository())
    set_profile(unit, clock)
    return unit


def draft(uow, clock, seller=SELLER, **overrides) -> dict:
    return usecases.create_product(
        uow,
        clock,
        seller_account_id=seller.account_id,
        product=product_payload(**overrides),
    )


def listed(uow, clock, **overrides) -> dict:
    product = draft(uow, clock, **overrides)
    return usecases.publish_product(
        uow, clock, seller_account_id=SELLER.account_id, product_id=product["id"]
    )


def status_of(uow, product_id) -> str:
    return uow.catalog.product_status(product_id)


# -- products' moves -----------------------------------------------------------------


def test_a_seller_creates_a_draft_priced_in_its_currency(uow, clock):
    product = draft(uow, clock)
    assert product["status"] == "draft" and product["published_at"] is None
    assert product["lowest_price"] == {"amount": 3, "currency": "USD"}
    assert product["billing_modes"] == ["yearly_monthly", "pay_per_use", "one_time"]
    assert product["seller"]["company_name"] == "Acme Cloud Ltd"
    assert uow.committed_event_types() == []


def test_a_seller_without_a_profile_is_told_to_set_one_up(uow, clock):
    with pytest.raises(BusinessRuleViolation) as raised:
        draft(uow, clock, seller=OTHER_SELLER)
    assert raised.value.code == "SELLER_PROFILE_REQUIRED"


@pytest.mark.parametrize("method", ["license", "professional_service"])
def test_an_unsupervised_license_or_professional_service_is_refused_and_not_saved(
    uow, clock, method
):
    commits = uow.commits
    with pytest.raises(ValidationError) as raised:
        draft(uow, clock, delivery_method=method, service_supervision=False)
    assert list(raised.value.fields) == ["service_supervision"]
    assert uow.commits == commits
    assert uow.catalog.seller_products(SELLER.account_id, 1, 10).total == 0
    supervised = draft(uow, clock, delivery_method=method, service_supervision=True)
    assert supervised["service_supervision"] is True


def test_publishing_a_draft_announces_it_in_the_same_commit(uow, clock):
    product = draft(uow, clock)
    commits = uow.commits
    clock.advance(minutes=5)
    published = usecases.publish_product(
        uow, clock, seller_account_id=SELLER.account_id, product_id=product["id"]
    )
    assert published["status"] == "published"
    assert published["published_at"] == clock.now()
    assert uow.commits == commits + 1
    [event] = uow.committed_events("catalog.product.published")
    assert event.subject == product["id"] and event.account_id == SELLER.account_id
    assert event.data["status"] == "published"
    assert event.data["lowest_price"] == {"amount": 3, "currency": "USD"}


@pytest.mark.parametrize("status", ["published", "delisted"])
def test_publishing_anything_but_a_draft_is_refused_and_changes_nothing(uow, clock, status):
    product = listed(uow, clock)
    if status == "delisted":
        usecases.delist_product(uow, clock, product_id=product["id"], reason="retired")
    events = uow.committed_event_types()
    with pytest.raises(Conflict, match=f"the product is {status}; publish needs it draft"):
        usecases.publish_product(
            uow, clock, seller_account_id=SELLER.account_id, product_id=product["id"]
        )
    uow.rollback()
    assert status_of(uow, product["id"]) == status
    assert uow.committed_event_types() == events


def test_a_saas_draft_without_its_endpoint_stays_a_draft(uow, clock):
    product = draft(uow, clock, saas_endpoint_url=None)
    with pytest.raises(BusinessRuleViolation) as raised:
        usecases.publish_product(
            uow, clock, seller_account_id=SELLER.account_id, product_id=product["id"]
        )
    assert raised.value.code == "SAAS_ENDPOINT_REQUIRED"
    uow.rollback()
    assert status_of(uow, product["id"]) == "draft"
    assert uow.committed_event_types() == []


def test_another_sellers_product_is_not_found_to_publish(uow, clock):
    product = draft(uow, clock)
    with pytest.raises(NotFound):
        usecases.publish_product(
            uow, clock, seller_account_id=OTHER_SELLER.account_id, product_id=product["id"]
        )


def test_an_operator_delists_a_published_product_and_subscribers_hear_of_it(uow, clock):
    product = listed(uow, clock)
    clock.advance(hours=1)
    delisted = usecases.delist_product(uow, clock, product_id=product["id"], reason="retired")
    assert (delisted["status"], delisted["delist_reason"]) == ("delisted", "retired")
    assert delisted["delisted_at"] == clock.now()
    assert uow.committed_event_types() == [
        "catalog.product.published",
        "catalog.product.changed",
    ]
    assert uow.committed_events("catalog.product.changed")[0].data["status"] == "delisted"


def test_delisting_a_draft_is_refused_and_changes_nothing(uow, clock):
    product = draft(uow, clock)
    with pytest.raises(Conflict, match="delist needs it published"):
        usecases.delist_product(uow, clock, product_id=product["id"], reason="retired")
    uow.rollback()
    assert status_of(uow, product["id"]) == "draft"
    assert uow.committed_event_types() == []


def test_a_draft_is_seen_only_by_its_seller_and_operators(uow, clock):
    product = draft(uow, clock)
    for viewer in (SELLER, OPERATOR):
        assert usecases.product_details(uow, product_id=product["id"], viewer=viewer)["id"]
    for viewer in (None, BUYER, OTHER_SELLER):
        with pytest.raises(NotFound):
            usecases.product_details(uow, product_id=product["id"], viewer=viewer)


# -- sellers ---------------------------------------------------------------------------


def test_a_new_seller_account_gets_a_profile_without_committing(uow, clock):
    commits = uow.commits
    assert usecases.register_seller_account(
        uow, clock, account_id="acc_new", name="New Co", account_type="seller"
    )
    assert not usecases.register_seller_account(
        uow, clock, account_id="acc_buyer", name="Buyer", account_type="buyer"
    )
    assert uow.commits == commits  # the inbox commits it with the event
    assert usecases.seller_profile(uow, account_id="acc_new")["company_name"] == "New Co"
    with pytest.raises(NotFound):
        usecases.seller_profile(uow, account_id="acc_buyer")


def test_a_late_account_event_keeps_the_profile_the_seller_set(uow, clock):
    usecases.register_seller_account(
        uow, clock, account_id=SELLER.account_id, name="acme", account_type="seller"
    )
    assert usecases.seller_profile(uow, account_id=SELLER.account_id)["company_name"] == (
        "Acme Cloud Ltd"
    )


def test_a_renamed_seller_is_searchable_by_its_new_name(uow, clock):
    product = draft(uow, clock)
    set_profile(
        uow, clock, company_name="Nimbus Works", email=" Sales@Nimbus.example ", currency="USD"
    )
    profile = usecases.seller_profile(uow, account_id=SELLER.account_id)
    assert (profile["email"], profile["currency"]) == ("sales@nimbus.example", "USD")
    assert uow.catalog.product_page(product["id"]).search_seller == "nimbus works"


# -- saved lists -------------------------------------------------------------------------


def test_saving_a_product_twice_keeps_the_first_saved_at(uow, clock):
    product = listed(uow, clock)
    first = usecases.save_product(
        uow, clock, buyer_account_id=BUYER.account_id, product_id=product["id"]
    )
    clock.advance(minutes=3)
    again = usecases.save_product(
        uow, clock, buyer_account_id=BUYER.account_id, product_id=product["id"]
    )
    assert again == first == {"product_id": product["id"], "saved_at": START}
    saved = usecases.list_saved_products(
        uow, buyer_account_id=BUYER.account_id, page=1, page_size=20
    )
    assert saved["total"] == 1 and saved["items"][0]["saved_at"] == START
    empty = usecases.list_saved_products(
        uow, buyer_account_id=OTHER_BUYER.account_id, page=1, page_size=20
    )
    assert empty["total"] == 0


def test_only_a_published_product_can_be_saved(uow, clock):
    product = draft(uow, clock)
    for product_id in (product["id"], "prd_unknown"):
        with pytest.raises(NotFound):
            usecases.save_product(
                uow, clock, buyer_account_id=BUYER.account_id, product_id=product_id
            )
    uow.rollback()
    assert uow.catalog.saved_product(BUYER.account_id, product["id"]) is None


def test_a_product_not_on_the_list_cannot_be_removed(uow, clock):
    product = listed(uow, clock)
    with pytest.raises(NotFound):
        usecases.remove_saved_product(
            uow, buyer_account_id=BUYER.account_id, product_id=product["id"]
        )
    usecases.save_product(uow, clock, buyer_account_id=BUYER.account_id, product_id=product["id"])
    usecases.remove_saved_product(uow, buyer_account_id=BUYER.account_id, product_id=product["id"])
    assert uow.catalog.saved_product(BUYER.account_id, product["id"]) is None


# -- quotes ------------------------------------------------------------------------------


def quote(uow, product, **changes):
    return usecases.quote(uow, **quote_of(product, **changes))


def test_a_quote_prices_the_configuration_and_fixes_what_an_order_needs(uow, clock):
    product = listed(uow, clock)
    quoted = quote(uow, product)
    assert quoted["unit_price"] == {"amount": 1500, "currency": "USD"}
    assert quoted["amount"] == {"amount": 1500 * 3 * 10, "currency": "USD"}
    assert quoted["seller_company_name"] == "Acme Cloud Ltd"
    assert quoted["specification_name"] == "Standard"
    assert quoted["period"] == {"unit": "month", "count": 3}


def test_a_quote_of_a_product_not_for_sale_or_a_foreign_specification_is_not_found(uow, clock):
    product = listed(uow, clock)
    unpublished = draft(uow, clock)
    with pytest.raises(NotFound, match="product"):
        quote(uow, unpublished)
    with pytest.raises(NotFound, match="product"):
        quote(uow, {**product, "id": "prd_unknown"})
    with pytest.raises(NotFound, match="specification"):
        quote(uow, product, specification_id=unpublished["specifications"][0]["id"])
    usecases.delist_product(uow, clock, product_id=product["id"], reason="retired")
    with pytest.raises(NotFound, match="product"):
        quote(uow, product)


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"period": None}, ["period"]),
        ({"period": {"unit": "month", "count": 12}}, ["period.count"]),
        ({"quantity": 1001}, ["quantity"]),
        ({"billing_mode": "one_time"}, ["period"]),
    ],
)
def test_a_configuration_not_offered_is_refused_naming_the_field(uow, clock, changes, fields):
    product = listed(uow, clock)
    with pytest.raises(ValidationError) as raised:
        quote(uow, product, **changes)
    assert sorted(raised.value.fields) == fields


# -- request templates -----------------------------------------------------------------


def set_template(uow, clock, product_id, template, seller=SELLER) -> dict:
    return usecases.set_request_template(
        uow, clock, seller_account_id=seller.account_id, product_id=product_id, template=template
    )


def test_a_seller_sets_replaces_and_removes_its_products_request_template(uow, clock):
    product = listed(uow, clock)
    assert usecases.request_template(uow, product_id=product["id"]) == {
        "product_id": product["id"],
        "template": None,
    }
    clock.advance(minutes=1)
    answer = set_template(uow, clock, product["id"], "Company name:\nServers:")
    assert answer == {"product_id": product["id"], "template": "Company name:\nServers:"}
    assert usecases.request_template(uow, product_id=product["id"]) == answer
    [row] = usecases.list_seller_products(
        uow, seller_account_id=SELLER.account_id, page=1, page_size=10
    )["items"]
    assert row["request_template"] == "Company name:\nServers:"
    assert row["updated_at"] == clock.now()

    set_template(uow, clock, product["id"], "Servers:")
    assert usecases.request_template(uow, product_id=product["id"])["template"] == "Servers:"
    assert set_template(uow, clock, product["id"], "")["template"] is None
    assert usecases.request_template(uow, product_id=product["id"])["template"] is None
    assert uow.committed_event_types() == ["catalog.product.published"]


def test_a_draft_keeps_its_template_for_its_seller_and_supervision_sees_it_once_published(
    uow, clock
):
    product = draft(uow, clock)
    set_template(uow, clock, product["id"], "Which region?")
    with pytest.raises(NotFound):
        usecases.request_template(uow, product_id=product["id"])
    published = usecases.publish_product(
        uow, clock, seller_account_id=SELLER.account_id, product_id=product["id"]
    )
    assert published["request_template"] == "Which region?"
    assert usecases.request_template(uow, product_id=product["id"])["template"] == "Which region?"
    usecases.delist_product(uow, clock, product_id=product["id"], reason="retired")
    assert usecases.request_template(uow, product_id=product["id"])["template"] == "Which region?"


def test_another_sellers_product_or_an_unknown_one_has_no_template_to_set(uow, clock):
    product = listed(uow, clock)
    commits = uow.commits
    for seller, product_id in ((OTHER_SELLER, product["id"]), (SELLER, "prd_missing")):
        with pytest.raises(NotFound):
            set_template(uow, clock, product_id, "mine now", seller=seller)
    assert uow.commits == commits
    assert usecases.request_template(uow, product_id=product["id"])["template"] is None
    with pytest.raises(NotFound):
        usecases.request_template(uow, product_id="prd_missing")
