"""The catalog's rules. No nameko, no SQL.

- what a product's specifications and prices may be (``check_specifications``);
- what a product's delivery needs: a saas product, and only it, has the endpoint
  Mercato calls to deliver it (``check_product``), and cannot be published without
  one (``ProductLifecycle.publish``); licenses and professional services are always
  delivered under service supervision (``check_supervision``);
- a product's life: draft -> published -> delisted (``PRODUCT``), one method per move
  on the product, each recording the event that announces it (``ProductLifecycle``);
- what a configuration costs (``price_configuration``): the price that orders fix;
  for an image, with its cloud resources itemised (``price_deployment``): servers,
  disks and EIP bandwidth beside the image's own price;
- how search text is matched (``normalise_text``, ``parse_text_query``): one
  tokeniser, here, for the stored documents and for the buyer's ``q``, so PostgreSQL
  and SQLite match the same products and nothing a buyer types is read as syntax.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mercato.contracts.catalog import MAX_PRICE_AMOUNT, MAX_QUANTITY, RELEVANCE
from mercato.domain import RecordsEvents, StateMachine
from mercato.errors import BusinessRuleViolation, ValidationError
from mercato.money import Money, marketplace_currency
from mercato.terms import (
    BILLING_MODES,
    DELISTED,
    DRAFT,
    HOUR,
    IMAGE,
    LICENSE,
    MONTH,
    ONE_TIME,
    PAY_PER_USE,
    PROFESSIONAL_SERVICE,
    PUBLISHED,
    SAAS,
    YEAR,
    YEARLY_MONTHLY,
)
from mercato.terms import DELIVERY_METHODS as DELIVERY_METHODS
from mercato.validation import DEFAULT_PAGE_SIZE
from seller_interface import validate_endpoint_url

# the period units a price of each billing mode may have (None: no period)
PERIOD_UNITS_OF_MODE: dict[str, tuple[str | None, ...]] = {
    YEARLY_MONTHLY: (MONTH, YEAR),
    PAY_PER_USE: (HOUR,),
    ONE_TIME: (None,),
}
# how many periods a yearly/monthly purchase may run: 1-11 months or 1-5 years
PERIOD_COUNTS: dict[str, tuple[int, int]] = {MONTH: (1, 11), YEAR: (1, 5)}


def seller_currency() -> str:
    """The currency sellers price in: the marketplace's one (``MARKETPLACE_CURRENCY``),
    so that every order placed can be charged."""
    return marketplace_currency()


MAX_QUERY_TERMS = 16

# What is delivered this way is only done once the buyer accepts it: a license is
# activated with the seller's help and a professional service is work the buyer signs
# off, so both always go through a supervision flow (request, delivery, acceptance).
ALWAYS_SUPERVISED = (LICENSE, PROFESSIONAL_SERVICE)

PRODUCT_PUBLISHED = "catalog.product.published"
PRODUCT_CHANGED = "catalog.product.changed"


@dataclass(frozen=True)
class Price:
    billing_mode: str
    period_unit: str | None
    amount: int


@dataclass(frozen=True)
class Quantity:
    """A specification's quantity dimension, e.g. ``users`` from 1 to 1000."""

    name: str
    min: int
    max: int


@dataclass(frozen=True)
class CloudPrice:
    """What one server's cloud resources cost per ``period_unit``: a server of each
    flavor, a GB of disk, a Mbit/s of EIP bandwidth (minor units)."""

    period_unit: str
    flavors: tuple[tuple[str, int], ...]
    disk_gb: int
    eip_mbps: int

    def of_flavor(self, flavor_id: str) -> int | None:
        return dict(self.flavors).get(flavor_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "period_unit": self.period_unit,
            "flavors": dict(self.flavors),
            "disk_gb": self.disk_gb,
            "eip_mbps": self.eip_mbps,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CloudPrice:
        return cls(
            period_unit=data["period_unit"],
            flavors=tuple(sorted(data["flavors"].items())),
            disk_gb=data["disk_gb"],
            eip_mbps=data["eip_mbps"],
        )


@dataclass(frozen=True)
class Specification:
    name: str
    prices: tuple[Price, ...]
    quantity: Quantity | None = None
    id: str | None = None
    # an image product's: what it deploys (``ImageSchema``'s fields) and what the cloud
    # resources of a deployment cost
    image: dict[str, Any] | None = None
    cloud_prices: tuple[CloudPrice, ...] = ()

    def cloud_price(self, period_unit: str | None) -> CloudPrice | None:
        return next((p for p in self.cloud_prices if p.period_unit == period_unit), None)

    def price_for(self, billing_mode: str, period_unit: str | None) -> Price | None:
        for price in self.prices:
            if price.billing_mode == billing_mode and price.period_unit == period_unit:
                return price
        return None

    def offers(self, billing_mode: str) -> bool:
        return any(price.billing_mode == billing_mode for price in self.prices)


@dataclass(frozen=True)
class Period:
    unit: str
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"unit": self.unit, "count": self.count}


@dataclass(frozen=True)
class PricedConfiguration:
    """What a configuration costs: ``amount`` is what the buyer pays for it (for
    pay-per-use, the price of one hour)."""

    billing_mode: str
    period: Period | None
    quantity: int
    unit_price: Money
    amount: Money


@dataclass(frozen=True)
class Quotable:
    """What a quote reads of a product: the one specification it prices (None when that
    is not the product's) and the few product and seller fields an order keeps."""

    product_id: str
    product_name: str
    status: str
    currency: str
    seller_account_id: str
    seller_company_name: str
    delivery_method: str
    service_supervision: bool
    product_guide_url: str | None
    specification: Specification | None


class _Errors:
    """Broken rules by field name, raised together as one ValidationError."""

    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}

    def add(self, name: str, message: str) -> None:
        self.fields.setdefault(name, []).append(message)

    def raise_if_any(self) -> None:
        if self.fields:
            names = ", ".join(sorted(self.fields))
            raise ValidationError(f"invalid request: check {names}", self.fields)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _describe_units(billing_mode: str) -> str:
    units = [unit for unit in PERIOD_UNITS_OF_MODE[billing_mode] if unit]
    if not units:
        return f"must be empty for {billing_mode}"
    return f"must be {' or '.join(units)} for {billing_mode}"


def check_product(
    *,
    delivery_method: str,
    service_supervision: bool,
    saas_endpoint_url: str | None,
    specifications: Sequence[Specification],
) -> None:
    """Every rule a new product keeps (``check_supervision``, ``check_saas_endpoint``
    and ``check_specifications``), broken ones raised together as one
    ValidationError."""
    errors = _Errors()
    _check_supervision(errors, delivery_method, service_supervision)
    _check_saas_endpoint(errors, delivery_method, saas_endpoint_url)
    _check_specifications(errors, specifications)
    _check_images(errors, delivery_method, specifications)
    errors.raise_if_any()


def cloud_unit(billing_mode: str, period_unit: str | None) -> str:
    """The period unit an image's cloud resources are priced by: a term's own unit; by
    the hour for pay-per-use and for a one-time image (its servers run pay-per-use,
    the order prices their first hour, as pay-per-use orders do)."""
    return period_unit if billing_mode == YEARLY_MONTHLY and period_unit else HOUR


def _check_images(
    errors: _Errors, delivery_method: str, specifications: Sequence[Specification]
) -> None:
    """An image product's specifications each say what they deploy and what its cloud
    resources cost for every period unit they are priced by (``cloud_unit``), every
    flavor included. Other products' specifications have neither."""
    for index, spec in enumerate(specifications):
        base = f"specifications.{index}"
        if delivery_method != IMAGE:
            if spec.image is not None:
                errors.add(f"{base}.image", "only an image product's specifications have one")
            if spec.cloud_prices:
                errors.add(
                    f"{base}.cloud_prices", "only an image product's specifications have them"
                )
            continue
        if spec.image is None:
            errors.add(f"{base}.image", "is required for an image product")
            continue
        units = [p.period_unit for p in spec.cloud_prices]
        if len(set(units)) != len(units):
            errors.add(f"{base}.cloud_prices", "must have one price per period unit")
        for price in spec.prices:
            unit = cloud_unit(price.billing_mode, price.period_unit)
            if spec.cloud_price(unit) is None:
                errors.add(
                    f"{base}.cloud_prices",
                    f"must price the cloud resources per {unit} for its {price.billing_mode} price",
                )
        for position, cloud_price in enumerate(spec.cloud_prices):
            missing = [f for f in spec.image["flavors"] if cloud_price.of_flavor(f) is None]
            if missing:
                errors.add(
                    f"{base}.cloud_prices.{position}.flavors",
                    f"must price every flavor of the image; missing {', '.join(missing)}",
                )


def check_supervision(delivery_method: str, service_supervision: bool) -> None:
    """A license or a professional service is always supervised
    (``ALWAYS_SUPERVISED``); ValidationError naming ``service_supervision`` otherwise.
    A saas or image product may be either."""
    errors = _Errors()
    _check_supervision(errors, delivery_method, service_supervision)
    errors.raise_if_any()


def _check_supervision(errors: _Errors, delivery_method: str, supervised: bool) -> None:
    if delivery_method in ALWAYS_SUPERVISED and not supervised:
        errors.add(
            "service_supervision",
            f"must be true for {delivery_method.replace('_', ' ')} products: the buyer "
            "accepts their delivery",
        )


def check_saas_endpoint(delivery_method: str, saas_endpoint_url: str | None) -> None:
    """A saas product's endpoint, the one HTTPS JSON POST URL Mercato calls to deliver
    it (``seller_interface``); ValidationError naming ``saas_endpoint_url``.

    Only a saas product has one; it may be left out of a draft (``publish`` asks for
    it). It must be a URL Mercato will call: https, or plain http to a loopback host
    (127.0.0.1, ::1, localhost) for a seller's own tests; no credentials, no fragment.
    """
    errors = _Errors()
    _check_saas_endpoint(errors, delivery_method, saas_endpoint_url)
    errors.raise_if_any()


def _check_saas_endpoint(errors: _Errors, delivery_method: str, url: str | None) -> None:
    if url is None:
        return
    if delivery_method != SAAS:
        errors.add("saas_endpoint_url", "only a saas product has an endpoint")
        return
    try:
        validate_endpoint_url(url)
    except ValueError as exc:
        errors.add("saas_endpoint_url", str(exc))


def check_specifications(specifications: Sequence[Specification]) -> None:
    """Every rule a product's specifications keep; ValidationError naming each field.

    At least one specification, names unique; each with at least one price, no two
    prices of one specification with the same (billing_mode, period_unit), the period
    unit one its billing mode allows, amounts whole numbers from 0 to
    ``MAX_PRICE_AMOUNT`` minor units; a quantity dimension from at least 1 to a
    maximum no lower than its minimum.
    """
    errors = _Errors()
    _check_specifications(errors, specifications)
    errors.raise_if_any()


def _check_specifications(errors: _Errors, specifications: Sequence[Specification]) -> None:
    if not specifications:
        errors.add("specifications", "must have at least one specification")
    names: set[str] = set()
    for index, spec in enumerate(specifications):
        base = f"specifications.{index}"
        if spec.name.casefold() in names:
            errors.add(f"{base}.name", "must be unique within the product")
        names.add(spec.name.casefold())
        if not spec.prices:
            errors.add(f"{base}.prices", "must have at least one price")
        seen: set[tuple[str, str | None]] = set()
        for position, price in enumerate(spec.prices):
            where = f"{base}.prices.{position}"
            if price.billing_mode not in BILLING_MODES:
                errors.add(f"{where}.billing_mode", f"must be one of {', '.join(BILLING_MODES)}")
            elif price.period_unit not in PERIOD_UNITS_OF_MODE[price.billing_mode]:
                errors.add(f"{where}.period_unit", _describe_units(price.billing_mode))
            key = (price.billing_mode, price.period_unit)
            if key in seen:
                errors.add(
                    where,
                    "another price of this specification has the same billing_mode and period_unit",
                )
            seen.add(key)
            if not _is_int(price.amount):
                errors.add(f"{where}.amount", "must be a whole number of minor units")
            elif not 0 <= price.amount <= MAX_PRICE_AMOUNT:
                errors.add(f"{where}.amount", f"must be between 0 and {MAX_PRICE_AMOUNT}")
        quantity = spec.quantity
        if quantity is not None:
            if not _is_int(quantity.min) or quantity.min < 1:
                errors.add(f"{base}.quantity.min", "must be at least 1")
            if not _is_int(quantity.max) or quantity.max > MAX_QUANTITY:
                errors.add(f"{base}.quantity.max", f"must be at most {MAX_QUANTITY}")
            elif _is_int(quantity.min) and quantity.max < quantity.min:
                errors.add(f"{base}.quantity.max", "must not be less than min")


def lowest_price(specifications: Sequence[Specification]) -> int:
    """The lowest amount of any price of any specification: what search filters and
    sorts on ("from $15")."""
    return min(price.amount for spec in specifications for price in spec.prices)


# A product's life in the catalog: a seller publishes its draft, an operator delists it.
PRODUCT = StateMachine(
    "product",
    {
        "publish": ((DRAFT,), PUBLISHED),
        "delist": ((PUBLISHED,), DELISTED),
    },
)


class ProductLifecycle(RecordsEvents):
    """A product's moves (``PRODUCT``), mixed into the mapped ``catalog.models.Product``:
    each refuses a move its status does not allow (Conflict) and records the event that
    announces it, for the use case to emit in the same transaction."""

    if TYPE_CHECKING:
        id: str
        seller_account_id: str
        name: str
        category: str
        delivery_method: str
        saas_endpoint_url: str | None
        status: str
        currency: str
        lowest_price: int
        delist_reason: str | None
        updated_at: dt.datetime
        published_at: dt.datetime | None
        delisted_at: dt.datetime | None

    def publish(self, now: dt.datetime) -> None:
        """Draft -> published, by its seller: buyers can find, quote and buy it. 422
        SAAS_ENDPOINT_REQUIRED for a saas product without its endpoint, which buyers
        could order but Mercato could not deliver."""
        status = PRODUCT.move("publish", self.status)
        if self.delivery_method == SAAS and not self.saas_endpoint_url:
            raise BusinessRuleViolation(
                "a saas product needs its saas_endpoint_url (the endpoint Mercato calls to "
                "deliver it) before it can be published",
                code="SAAS_ENDPOINT_REQUIRED",
            )
        self.status = status
        self.published_at = self.updated_at = now
        self._announce(PRODUCT_PUBLISHED)

    def delist(self, reason: str, now: dt.datetime) -> None:
        """Published -> delisted, by an operator: buyers no longer find, quote or save
        it; ``reason`` is kept and shown to its seller."""
        self.status = PRODUCT.move("delist", self.status)
        self.delisted_at = self.updated_at = now
        self.delist_reason = reason
        self._announce(PRODUCT_CHANGED)

    def snapshot(self) -> dict[str, Any]:
        """The data of the catalog.product.* events (mercato.contracts.catalog)."""
        return {
            "product_id": self.id,
            "seller_account_id": self.seller_account_id,
            "name": self.name,
            "delivery_method": self.delivery_method,
            "category": self.category,
            "status": self.status,
            "lowest_price": Money(self.lowest_price, self.currency).to_dict(),
        }

    def _announce(self, event_type: str) -> None:
        self.record(
            event_type, subject=self.id, account_id=self.seller_account_id, data=self.snapshot()
        )


def price_configuration(
    spec: Specification,
    *,
    currency: str,
    billing_mode: str,
    period: Period | None,
    quantity: int | None,
) -> PricedConfiguration:
    """The price of ``quantity`` of ``spec`` under ``billing_mode``.

    yearly_monthly: unit price of the period's unit x period count x quantity;
    one_time: unit price x quantity; pay_per_use: hourly rate x quantity, the price of
    one hour. ``quantity`` defaults to 1. ValidationError naming ``billing_mode``,
    ``period``, ``period.unit``, ``period.count`` or ``quantity`` otherwise.
    """
    errors = _Errors()
    quantity = 1 if quantity is None else quantity
    price: Price | None = None
    if not spec.offers(billing_mode):
        errors.add("billing_mode", "is not offered by this specification")
    elif billing_mode == YEARLY_MONTHLY:
        if period is None:
            errors.add("period", "is required for yearly_monthly")
        elif period.unit not in PERIOD_COUNTS:
            errors.add("period.unit", "must be month or year")
        else:
            low, high = PERIOD_COUNTS[period.unit]
            if not low <= period.count <= high:
                errors.add("period.count", f"must be between {low} and {high} for {period.unit}")
            price = spec.price_for(billing_mode, period.unit)
            if price is None:
                errors.add("period.unit", f"this specification has no {period.unit} price")
    elif period is not None:
        errors.add("period", f"must be empty for {billing_mode}")
    else:
        price = spec.price_for(billing_mode, PERIOD_UNITS_OF_MODE[billing_mode][0])
    bounds = spec.quantity
    if bounds is None:
        if quantity != 1:
            errors.add("quantity", "must be 1: this specification has no quantity dimension")
    elif not bounds.min <= quantity <= bounds.max:
        errors.add("quantity", f"must be between {bounds.min} and {bounds.max}")
    errors.raise_if_any()
    assert price is not None  # every other case raised above
    periods = period.count if period is not None else 1
    return PricedConfiguration(
        billing_mode=billing_mode,
        period=period,
        quantity=quantity,
        unit_price=Money(price.amount, currency),
        amount=Money(price.amount * periods * quantity, currency),
    )


@dataclass(frozen=True)
class ChargeLine:
    """One line of a price breakdown."""

    item: str  # product, image, servers, disks, eip
    description: str
    quantity: int
    unit_price: Money
    amount: Money

    def to_dict(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "description": self.description,
            "quantity": self.quantity,
            "unit_price": self.unit_price.to_dict(),
            "amount": self.amount.to_dict(),
        }


@dataclass(frozen=True)
class DeploymentSizing:
    """What of a deployment its price depends on (``DeploymentSizingSchema``)."""

    flavor_id: str
    system_disk_gb: int | None
    data_disk_gbs: tuple[int, ...]
    eip_mbps: int | None
    count: int

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeploymentSizing:
        return cls(
            flavor_id=data["flavor_id"],
            system_disk_gb=data.get("system_disk_gb"),
            data_disk_gbs=tuple(disk["size_gb"] for disk in data.get("data_disks") or ()),
            eip_mbps=(data.get("eip") or {}).get("bandwidth_mbps"),
            count=data.get("count", 1),
        )


def _for_periods(period: Period | None, unit: str | None) -> str:
    if period is None:
        return f"for 1 {unit}" if unit else ""
    plural = "" if period.count == 1 else "s"
    return f"for {period.count} {period.unit}{plural}"


def price_deployment(
    spec: Specification,
    priced: PricedConfiguration,
    sizing: DeploymentSizing | None,
) -> tuple[ChargeLine, ...]:
    """The itemised price of deploying an image: the image for each server, the
    servers of the chosen flavor, their system and data disks, and the EIP bandwidth,
    each for the configuration's periods (one hour for pay-per-use). ValidationError
    naming the ``deployment`` field a configuration the specification cannot price
    breaks."""
    errors = _Errors()
    if spec.image is None:
        if sizing is not None:
            errors.add("deployment", "only an image product is deployed")
        errors.raise_if_any()
        return ()
    if sizing is None:
        errors.add("deployment", "is required for an image product")
        errors.raise_if_any()
    assert sizing is not None
    cloud = spec.cloud_price(
        cloud_unit(priced.billing_mode, priced.period.unit if priced.period else None)
    )
    if sizing.flavor_id not in spec.image["flavors"]:
        errors.add("deployment.flavor_id", f"must be one of {', '.join(spec.image['flavors'])}")
    minimum = spec.image.get("min_system_disk_gb", 1)
    if sizing.system_disk_gb is not None and sizing.system_disk_gb < minimum:
        errors.add("deployment.system_disk_gb", f"must be at least {minimum} for this image")
    if cloud is None:  # check_images keeps this from a published product
        errors.add("billing_mode", "this image has no cloud resource prices for it")
    errors.raise_if_any()
    assert cloud is not None
    currency = priced.amount.currency
    periods = priced.period.count if priced.period is not None else 1
    when = _for_periods(priced.period, None if priced.period else HOUR)
    count = sizing.count
    server_price = (cloud.of_flavor(sizing.flavor_id) or 0) * periods
    disk_gb = (sizing.system_disk_gb or minimum) + sum(sizing.data_disk_gbs)
    lines = [
        ChargeLine(
            "image",
            f"the image for {count} server{'s' if count > 1 else ''} {when}",
            count,
            priced.amount,
            Money(priced.amount.amount * count, currency),
        ),
        ChargeLine(
            "servers",
            f"{count} x {sizing.flavor_id} {when}",
            count,
            Money(server_price, currency),
            Money(server_price * count, currency),
        ),
        ChargeLine(
            "disks",
            f"{disk_gb} GB of disks a server {when}",
            count,
            Money(cloud.disk_gb * disk_gb * periods, currency),
            Money(cloud.disk_gb * disk_gb * periods * count, currency),
        ),
    ]
    if sizing.eip_mbps is not None:
        eip = cloud.eip_mbps * sizing.eip_mbps * periods
        lines.append(
            ChargeLine(
                "eip",
                f"an EIP of {sizing.eip_mbps} Mbit/s a server {when}",
                count,
                Money(eip, currency),
                Money(eip * count, currency),
            )
        )
    return tuple(lines)


# -- search text ------------------------------------------------------------------

_TERM = re.compile(r"[^\W_]+")


def _terms(text: str | None) -> list[str]:
    return _TERM.findall(unicodedata.normalize("NFKC", text or "").lower())


def normalise_text(text: str | None) -> str:
    """``text`` as the search index stores it: its words (runs of letters and digits),
    lower-cased, one space apart. "Acme's DB-Backup (v2)" -> "acme s db backup v2".

    Both backends index this form, so their own tokenisers (PostgreSQL's parser with
    the ``simple`` configuration, FTS5's ``unicode61``) see only plain words and
    split them alike; no stemming and no stop words on either side.
    """
    return " ".join(_terms(text))


@dataclass(frozen=True)
class TextQuery:
    """A buyer's ``q``: alternatives (``or``) of words that must all match.

    ``"backup ECS or snapshot"`` -> ``(("backup", "ecs"), ("snapshot",))``. Every
    other character is a separator, so quotes, ``*``, ``NEAR``, ``-`` and parentheses
    are only ever words or nothing.
    """

    groups: tuple[tuple[str, ...], ...]

    def websearch(self) -> str:
        """For PostgreSQL's ``websearch_to_tsquery``: every word quoted, so each is a
        plain lexeme (even "or"); alternatives joined by its ``or``."""
        return " or ".join(" ".join(f'"{term}"' for term in group) for group in self.groups)

    def fts5(self) -> str:
        """For SQLite's FTS5 ``MATCH``: every word a quoted string, so ``NEAR``, ``AND``
        or a column name is never read as syntax."""
        return " OR ".join(
            "(" + " AND ".join(f'"{term}"' for term in group) + ")" for group in self.groups
        )


def parse_text_query(q: str | None) -> TextQuery | None:
    """``q`` as a ``TextQuery``; None when it holds no word (then nothing is filtered).

    A whitespace-separated ``or`` (any case) separates alternatives, as in
    ``websearch_to_tsquery``; at most ``MAX_QUERY_TERMS`` words are kept.
    """
    groups: list[list[str]] = [[]]
    budget = MAX_QUERY_TERMS
    for token in (q or "").split():
        if token.casefold() == "or":
            if groups[-1]:
                groups.append([])
            continue
        for term in _terms(token):
            if budget and term not in groups[-1]:
                groups[-1].append(term)
                budget -= 1
    kept = tuple(tuple(group) for group in groups if group)
    return TextQuery(kept) if kept else None


@dataclass(frozen=True)
class SearchCriteria:
    text: TextQuery | None = None
    delivery_method: str | None = None
    category: str | None = None
    billing_mode: str | None = None
    seller_id: str | None = None
    min_price: int | None = None
    max_price: int | None = None
    service_supervision: bool | None = None
    sort: str = RELEVANCE
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size
