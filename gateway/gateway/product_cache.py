"""Published products' details, kept by each gateway replica for a few seconds.

``GET /v1/products/{id}`` is the marketplace's hottest read and its answer is the same
for every caller while the product is published. Each replica keeps the answers it
fetched for ``PRODUCT_CACHE_SECONDS`` (default 10, a ``mercato.cache.TimedCache``) and
drops one as soon as catalog announces a change to that product
(``catalog.product.published`` or ``.changed``, received by every replica: a broadcast
handler). The TTL bounds what no event announces (a seller renaming its company); only
published products are kept, so a draft or a delisted product is always read from
catalog.
"""

from __future__ import annotations

from typing import Any

from nameko.extensions import DependencyProvider
from prometheus_client import Counter

from mercato.cache import TimedCache
from mercato.terms import PUBLISHED

PRODUCT_CACHE_SECONDS = "PRODUCT_CACHE_SECONDS"
DEFAULT_TTL_SECONDS = 10.0

LOOKUPS = Counter(
    "mercato_gateway_product_cache_lookups_total",
    "Product detail reads answered from the gateway's cache (hit) or from catalog (miss)",
    ["result"],
)


class PublishedProducts:
    """The replica's copies of published products' details, counted hit or miss."""

    def __init__(self, cache: TimedCache[str, dict[str, Any]]) -> None:
        self._cache = cache

    def get(self, product_id: str) -> dict[str, Any] | None:
        product = self._cache.get(product_id)
        LOOKUPS.labels("miss" if product is None else "hit").inc()
        return product

    def put(self, product_id: str, product: dict[str, Any]) -> None:
        if product.get("status") == PUBLISHED:
            self._cache.put(product_id, product)

    def forget(self, product_id: str) -> None:
        self._cache.forget(product_id)


class ProductCacheProvider(DependencyProvider):
    """Injects this replica's ``PublishedProducts`` (shared by all its workers)."""

    def setup(self):
        value = self.container.config.get(PRODUCT_CACHE_SECONDS)
        ttl = DEFAULT_TTL_SECONDS if value in (None, "") else float(value)
        self.products = PublishedProducts(TimedCache(ttl))

    def get_dependency(self, worker_ctx):
        return self.products
