"""The demo seed (catalog.demo) on both backends, and its products through the service."""

import pytest
import sqlalchemy as sa

from catalog import demo, domain, usecases
from catalog.tests.support import (
    BUYER,
    START,
    rpc,
    sqlite_url,
    unit_of_work,
)
from mercato.clock import ManualClock
from mercato.errors import ValidationError

pytestmark = pytest.mark.interface


@pytest.fixture(params=["postgresql", "sqlite"])
def uow(request, databases, tmp_path):
    url = databases.fresh("catalog") if request.param == "postgresql" else sqlite_url(tmp_path)
    with unit_of_work(url) as unit:
        yield unit


def search(uow, **criteria):
    return usecases.search_products(uow, domain.SearchCriteria(page_size=100, **criteria))


def test_demo_products_are_published_varied_and_keep_every_rule(uow):
    ids = demo.seed_demo_products(
        uow, seller_account_id="acc_demo", count=120, clock=ManualClock(START)
    )

    assert len(set(ids)) == 120 and all(id.startswith("prd_") for id in ids)
    assert search(uow)["total"] == 120
    for category in demo.CATEGORIES:
        assert search(uow, category=category)["total"] == 15
    for method in domain.DELIVERY_METHODS:
        assert search(uow, delivery_method=method)["total"] > 0
    for mode in domain.BILLING_MODES:
        assert search(uow, billing_mode=mode)["total"] > 0
    assert 0 < search(uow, service_supervision=True)["total"] < 120
    names = set()
    for product_id in ids:
        details = usecases.product_details(uow, product_id=product_id, viewer=None)
        names.add(details["name"])
        specs = [
            domain.Specification(
                name=spec["name"],
                prices=tuple(
                    domain.Price(p["billing_mode"], p["period_unit"], p["price"]["amount"])
                    for p in spec["prices"]
                ),
                quantity=domain.Quantity(**spec["quantity"]) if spec["quantity"] else None,
            )
            for spec in details["specifications"]
        ]
        domain.check_specifications(specs)
        assert details["lowest_price"]["amount"] == domain.lowest_price(specs)
        assert details["status"] == "published" and details["published_at"] is not None
    assert len(names) == 120


def test_demo_products_are_found_by_their_words_and_seller(uow):
    demo.seed_demo_products(
        uow, seller_account_id="acc_demo", count=40, company_name="Demo Widgets", seed=7
    )
    assert search(uow, text=domain.parse_text_query("demo widgets"))["total"] == 40
    everything = search(uow)["items"]
    first_word = everything[0]["name"].split()[0]
    with_word = [item for item in everything if first_word in item["name"].split()]
    assert search(uow, text=domain.parse_text_query(first_word))["total"] == len(with_word)


def test_seeding_again_adds_products_to_the_same_seller(uow):
    demo.seed_demo_products(uow, seller_account_id="acc_demo", count=10)
    demo.seed_demo_products(
        uow, seller_account_id="acc_demo", count=10, company_name="ignored", seed=1
    )
    assert search(uow, seller_id="acc_demo")["total"] == 20
    assert usecases.seller_profile(uow, account_id="acc_demo")["company_name"] == "Demo Seller Co"
    outbox = uow.table("outbox_messages")
    assert uow.session.scalar(sa.select(sa.func.count()).select_from(outbox)) == 0, (
        "seeding announces nothing"
    )


def _endpoints(uow, ids):
    settings = [usecases.delivery_settings(uow, product_id=product_id) for product_id in ids]
    return {
        method: {
            item["saas_endpoint_url"] for item in settings if item["delivery_method"] == method
        }
        for method in domain.DELIVERY_METHODS
    }


def test_demo_saas_products_are_delivered_by_the_given_seller_endpoint(uow):
    ids = demo.seed_demo_products(
        uow,
        seller_account_id="acc_demo",
        count=40,
        saas_endpoint_url="https://seller.example.com/saas",
    )
    endpoints = _endpoints(uow, ids)
    assert endpoints.pop("saas") == {"https://seller.example.com/saas"}
    assert all(found == {None} for found in endpoints.values())


def test_demo_saas_products_default_to_the_reference_seller_app(uow, monkeypatch):
    monkeypatch.delenv(demo.SAAS_URL_ENV, raising=False)
    ids = demo.seed_demo_products(uow, seller_account_id="acc_demo", count=40)
    assert _endpoints(uow, ids)["saas"] == {"http://127.0.0.1:8300/saas"}
    monkeypatch.setenv(demo.SAAS_URL_ENV, "http://localhost:9000/saas")
    ids = demo.seed_demo_products(uow, seller_account_id="acc_demo", count=40, seed=1)
    assert _endpoints(uow, ids)["saas"] == {"http://localhost:9000/saas"}


def test_demo_seeding_refuses_an_endpoint_mercato_must_not_call(uow):
    with pytest.raises(ValidationError) as raised:
        demo.seed_demo_products(
            uow,
            seller_account_id="acc_demo",
            count=10,
            saas_endpoint_url="http://seller.example.com/saas",
        )
    assert list(raised.value.fields) == ["saas_endpoint_url"]
    assert search(uow)["total"] == 0


def test_the_service_sells_demo_products(catalog):
    config, _clock = catalog
    with unit_of_work(config["DATABASE_URL"]) as unit:
        ids = demo.seed_demo_products(unit, seller_account_id="acc_demo", count=30)
    with rpc(config, BUYER) as buyer:
        assert buyer.search_products({})["total"] == 30
        for product_id in ids[:8]:
            product = buyer.get_product(product_id)
            spec = product["specifications"][0]
            price = spec["prices"][0]
            period = (
                {"unit": price["period_unit"], "count": 1}
                if price["billing_mode"] == "yearly_monthly"
                else None
            )
            quote = buyer.quote(
                {
                    "product_id": product_id,
                    "specification_id": spec["id"],
                    "billing_mode": price["billing_mode"],
                    "period": period,
                    "quantity": 1,
                }
            )
            assert quote["amount"] == price["price"]
        buyer.save_product({"product_id": ids[0]})
        assert buyer.list_saved_products()["items"][0]["product_id"] == ids[0]
