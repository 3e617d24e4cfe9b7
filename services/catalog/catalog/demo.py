"""Demo products: a seller's catalogue of published products, inserted in bulk.

``seed_demo_products(uow, seller_account_id="acc_…", count=10_000)`` gives a seller
(created if missing) ``count`` published products across every category, delivery
method and billing mode, with prices from $1 to $5,000, in a few seconds; the
benchmark seeds with it and ``make run`` may too. The products are built by the same
rules as ``create_product`` (``domain.check_product``) but written with
multi-row inserts, and they announce nothing: seeding is not a seller's act.
The same ``seed`` and ``count`` give the same products (ids aside).

Every saas product is delivered by one seller endpoint: ``saas_endpoint_url``, else
``$DEMO_SELLER_SAAS_URL``, else ``http://127.0.0.1:8300/saas`` (where the reference
seller app listens in ``make run``).
"""

from __future__ import annotations

import datetime as dt
import os
import random
from typing import Any

from catalog import domain
from catalog.repository import CatalogRepository
from mercato.clock import Clock, SystemClock
from mercato.db import new_id

CATEGORIES = (
    "security",
    "storage",
    "database",
    "devops",
    "ai",
    "networking",
    "analytics",
    "collaboration",
)
BRANDS = ("Nimbus", "Acme", "Orbit", "Granite", "Helix", "Quartz", "Lumen", "Vertex", "Cobalt")
QUALITIES = ("Secure", "Rapid", "Managed", "Smart", "Open", "Elastic", "Private", "Unified")
NOUNS = {
    "security": ("Firewall", "Vault", "Scanner", "Shield"),
    "storage": ("Backup", "Archive", "Sync", "Drive"),
    "database": ("PostgreSQL", "MySQL", "Cache", "Warehouse"),
    "devops": ("Pipeline", "Registry", "Monitor", "Runner"),
    "ai": ("Vision", "Assistant", "Translator", "Forecaster"),
    "networking": ("Gateway", "Balancer", "VPN", "CDN"),
    "analytics": ("Dashboard", "Insights", "Reports", "Lakehouse"),
    "collaboration": ("Wiki", "Chat", "Meetings", "Tickets"),
}
# what each delivery method sells by: (billing mode, period unit) pairs
PRICING = {
    "license": ((domain.YEARLY_MONTHLY, domain.MONTH), (domain.YEARLY_MONTHLY, domain.YEAR)),
    "saas": (
        (domain.YEARLY_MONTHLY, domain.MONTH),
        (domain.YEARLY_MONTHLY, domain.YEAR),
        (domain.PAY_PER_USE, domain.HOUR),
    ),
    "image": ((domain.PAY_PER_USE, domain.HOUR), (domain.YEARLY_MONTHLY, domain.MONTH)),
    "professional_service": ((domain.ONE_TIME, None),),
}
# a price's amount relative to the month's
FACTORS = {domain.MONTH: 1.0, domain.YEAR: 10.0, domain.HOUR: 0.005, None: 20.0}
BATCH = 2000
SAAS_URL_ENV = "DEMO_SELLER_SAAS_URL"
DEFAULT_SAAS_URL = "http://127.0.0.1:8300/saas"
# what every demo image deploys: an image the demo cloud has (``make run`` registers it
# in the simulated cloud), on flavors it offers, with a web server's security group
DEMO_IMAGE = {
    "image_id": os.environ.get("DEMO_IMAGE_ID", "mkp-demo-ubuntu-22.04"),
    "flavors": ["s6.medium.2", "s6.large.2"],
    "min_system_disk_gb": 40,
    "recommended_security_group": {
        "name": "mkp-demo-web",
        "rules": [
            {
                "direction": "ingress",
                "protocol": "tcp",
                "port_range": "22",
                "remote_ip_prefix": "0.0.0.0/0",
            },
            {
                "direction": "ingress",
                "protocol": "tcp",
                "port_range": "443",
                "remote_ip_prefix": "0.0.0.0/0",
            },
        ],
    },
}
DEMO_CLOUD_PRICES = (
    domain.CloudPrice(domain.HOUR, (("s6.large.2", 8), ("s6.medium.2", 4)), 1, 1),
    domain.CloudPrice(domain.MONTH, (("s6.large.2", 4800), ("s6.medium.2", 2400)), 10, 300),
)


def _specifications(rng: random.Random, delivery_method: str) -> list[domain.Specification]:
    monthly = rng.randrange(100, 25_000)  # $1 to $250 a month
    quantity = (
        domain.Quantity("users", 1, rng.choice((50, 100, 1000)))
        if delivery_method in ("license", "saas")
        else None
    )
    return [
        domain.Specification(
            name=name,
            prices=tuple(
                domain.Price(mode, unit, max(1, round(monthly * scale * FACTORS[unit])))
                for mode, unit in PRICING[delivery_method]
            ),
            quantity=quantity,
            image=DEMO_IMAGE if delivery_method == domain.IMAGE else None,
            cloud_prices=DEMO_CLOUD_PRICES if delivery_method == domain.IMAGE else (),
        )
        for name, scale in (("Standard", 1), ("Enterprise", 3))
    ]


def seed_demo_products(
    uow,
    *,
    seller_account_id: str,
    count: int,
    company_name: str = "Demo Seller Co",
    clock: Clock | None = None,
    seed: int = 0,
    saas_endpoint_url: str | None = None,
) -> list[str]:
    """Insert ``count`` published products of the seller and commit; answer their ids.

    Product ``i`` was published ``i`` seconds before ``clock.now()``, so "newest"
    has no ties. The saas ones are delivered by ``saas_endpoint_url`` (default
    ``$DEMO_SELLER_SAAS_URL`` or ``DEFAULT_SAAS_URL``).
    """
    endpoint = saas_endpoint_url or os.environ.get(SAAS_URL_ENV) or DEFAULT_SAAS_URL
    domain.check_saas_endpoint(domain.SAAS, endpoint)
    # a script's unit of work need not declare the catalog's repository (the benchmark's
    # does not), so seeding makes its own around the session
    catalog = CatalogRepository(uow.session)
    now = (clock or SystemClock()).now()
    catalog.add_seller_if_missing(seller_account_id, company_name, domain.seller_currency(), now)
    seller = catalog.seller(seller_account_id)
    assert seller is not None
    rng = random.Random(seed)  # noqa: S311 - demo data, not a secret
    delivery_methods = tuple(PRICING)
    ids: list[str] = []
    for start in range(0, count, BATCH):
        products: list[dict[str, Any]] = []
        specifications: list[dict[str, Any]] = []
        prices: list[dict[str, Any]] = []
        for index in range(start, min(count, start + BATCH)):
            category = CATEGORIES[index % len(CATEGORIES)]
            delivery_method = delivery_methods[(index // len(CATEGORIES)) % len(delivery_methods)]
            name = (
                f"{rng.choice(BRANDS)} {rng.choice(QUALITIES)} "
                f"{rng.choice(NOUNS[category])} {index + 1}"
            )
            summary = f"{name}: {category} {delivery_method.replace('_', ' ')} for your cloud."
            description = (
                f"{name} is a {rng.choice(QUALITIES).lower()} {category} product, "
                f"delivered as {delivery_method.replace('_', ' ')}. "
                f"It runs on ECS and scales with your team."
            )
            specs = _specifications(rng, delivery_method)
            saas_endpoint_url = endpoint if delivery_method == domain.SAAS else None
            # licenses and professional services always; a third of the saas products
            supervised = delivery_method in domain.ALWAYS_SUPERVISED or (
                delivery_method == domain.SAAS and index % 3 == 0
            )
            domain.check_product(
                delivery_method=delivery_method,
                service_supervision=supervised,
                saas_endpoint_url=saas_endpoint_url,
                specifications=specs,
            )
            published_at = now - dt.timedelta(seconds=index)
            product_id = new_id("prd")
            ids.append(product_id)
            products.append(
                {
                    "id": product_id,
                    "seller_account_id": seller.account_id,
                    "name": name,
                    "summary": summary,
                    "description": description,
                    "category": category,
                    "delivery_method": delivery_method,
                    "service_supervision": supervised,
                    "product_guide_url": f"https://docs.example.com/demo/{index + 1}",
                    "saas_endpoint_url": saas_endpoint_url,
                    "request_template": None,
                    "terms": "Demo terms: this product is for trying Mercato out.",
                    "status": domain.PUBLISHED,
                    "currency": seller.currency,
                    "lowest_price": domain.lowest_price(specs),
                    "delist_reason": None,
                    "created_at": published_at,
                    "updated_at": published_at,
                    "published_at": published_at,
                    "delisted_at": None,
                    "search_name": domain.normalise_text(name),
                    "search_seller": domain.normalise_text(seller.company_name),
                    "search_body": domain.normalise_text(f"{summary}\n{description}"),
                }
            )
            for position, spec in enumerate(specs):
                spec_id = new_id("spc")
                specifications.append(
                    {
                        "id": spec_id,
                        "product_id": product_id,
                        "position": position,
                        "name": spec.name,
                        "quantity_name": spec.quantity.name if spec.quantity else None,
                        "quantity_min": spec.quantity.min if spec.quantity else None,
                        "quantity_max": spec.quantity.max if spec.quantity else None,
                        "image": spec.image,
                        "cloud_prices": [price.to_dict() for price in spec.cloud_prices] or None,
                    }
                )
                prices.extend(
                    {
                        "specification_id": spec_id,
                        "product_id": product_id,
                        "billing_mode": price.billing_mode,
                        "period_unit": price.period_unit,
                        "amount": price.amount,
                    }
                    for price in spec.prices
                )
        catalog.insert_many(products, specifications, prices)
    catalog.refresh_statistics()
    uow.commit()
    return ids
