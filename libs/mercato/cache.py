"""A process's short memory of answers that rarely change: ``TimedCache``.

Each entry lives ``ttl_seconds`` (or less, when the thing it holds expires sooner), and
at most ``max_entries`` are kept, the least recently used going first. ``ttl_seconds``
of 0 turns the cache off: nothing is kept. It is shared by a container's workers;
eventlet switches green threads only on I/O, and a cache operation does none, so no
lock is needed.

Used for validated bearer tokens (gateway), published products' details (gateway) and
enterprise projects iam-agency confirmed (orders); each says why its answers may be
kept, and for how long, where it uses it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import cachetools

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TimedCache(Generic[K, V]):
    """``get``, ``put`` and ``forget`` over a bounded map whose entries expire."""

    def __init__(
        self,
        ttl_seconds: float,
        *,
        max_entries: int = 10_000,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = max(0.0, float(ttl_seconds))
        self._timer = timer
        # each value carries its own lifetime, so an entry may expire before the TTL
        self._entries: cachetools.TLRUCache[K, tuple[float, V]] = cachetools.TLRUCache(
            maxsize=max_entries, ttu=lambda _key, entry, now: now + entry[0], timer=timer
        )

    @property
    def enabled(self) -> bool:
        return self.ttl_seconds > 0

    def __len__(self) -> int:
        self._entries.expire()
        return len(self._entries)

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        return None if entry is None else entry[1]

    def put(self, key: K, value: V, *, at_most_seconds: float | None = None) -> None:
        """Keep ``value`` for the TTL, or for ``at_most_seconds`` when that is shorter
        (a token that expires sooner). Nothing is kept for no time at all."""
        lifetime = self.ttl_seconds
        if at_most_seconds is not None:
            lifetime = min(lifetime, at_most_seconds)
        if lifetime <= 0:
            self._entries.pop(key, None)
            return
        self._entries[key] = (lifetime, value)

    def forget(self, key: K) -> None:
        self._entries.pop(key, None)
