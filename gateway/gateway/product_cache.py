"""Published products' details, kept by each gateway replica for a few seconds.

``GET /v1/products/{id}`` is the marketplace's hottest read and its answer is the same
for every caller while the product is published. Each replica keeps the answers it
fetched for ``PRODUCT_CACHE_SECONDS`` (default 10) and drops one as soon as catalog
announces a change to that product (``catalog.product.published`` or ``.changed``,
received by every replica: a broadcast handler). The TTL bounds what no event
announces (a seller renaming its company); only published products are kept, so a
draft or a delisted product is always read from catalog.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

from nameko.extensions import DependencyProvider
from prometheus_client import Counter

PRODUCT_CACHE_SECONDS = "PRODUCT_CACHE_SECONDS"
DEFAULT_TTL_SECONDS = 10.0
MAX_ENTRIES = 10_000
PUBLISHED = "published"

LOOKUPS = Counter(
    "mercato_gateway_product_cache_lookups_total",
    "Product detail reads answered from the gateway's cache (hit) or from catalog (miss)",
    ["result"],
)


class ProductCache:
    def __init__(self, ttl_seconds: float, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()

    def get(self, product_id: str) -> dict[str, Any] | None:
        entry = self._entries.get(product_id)
        if entry is None or entry[0] <= time.monotonic():
            self._entries.pop(product_id, None)
            LOOKUPS.labels("miss").inc()
            return None
        LOOKUPS.labels("hit").inc()
        return entry[1]

    def put(self, product_id: str, product: dict[str, Any]) -> None:
        if self.ttl <= 0 or product.get("status") != PUBLISHED:
            return
        self._entries[product_id] = (time.monotonic() + self.ttl, product)
        self._entries.move_to_end(product_id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget(self, product_id: str) -> None:
        self._entries.pop(product_id, None)


class ProductCacheProvider(DependencyProvider):
    """Injects this replica's ``ProductCache`` (shared by all its workers)."""

    def setup(self):
        value = self.container.config.get(PRODUCT_CACHE_SECONDS)
        ttl = DEFAULT_TTL_SECONDS if value in (None, "") else float(value)
        self.cache = ProductCache(ttl)

    def get_dependency(self, worker_ctx):
        return self.cache
