"""This process's memory of the temporary credentials of each account's
``mkp_agency_trust``.

An entry is handed out until ``margin`` before it expires, by the service's clock, and
only while the agencies are at the revision it was kept under: a deletion, a broken
check or a new authorisation moves the revision in the database, so an entry another
replica still holds is never used after it (and the replica that made the change drops
its own at once).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import cachetools

from iam_agency.cloud import TemporaryCredentials


@dataclass(frozen=True)
class _Entry:
    revision: tuple[int, ...]
    credentials: TemporaryCredentials
    usable_until: dt.datetime


class CredentialCache:
    def __init__(self, max_entries: int = 10_000) -> None:
        self._entries: cachetools.LRUCache[str, _Entry] = cachetools.LRUCache(max_entries)

    def get(
        self, account_id: str, revision: tuple[int, ...], now: dt.datetime
    ) -> TemporaryCredentials | None:
        entry = self._entries.get(account_id)
        if entry is None or entry.revision != revision or now >= entry.usable_until:
            return None
        return entry.credentials

    def put(
        self,
        account_id: str,
        revision: tuple[int, ...],
        credentials: TemporaryCredentials,
        usable_until: dt.datetime,
    ) -> None:
        self._entries[account_id] = _Entry(revision, credentials, usable_until)

    def forget(self, account_id: str) -> None:
        self._entries.pop(account_id, None)

    def __len__(self) -> int:
        return len(self._entries)
