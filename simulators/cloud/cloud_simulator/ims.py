"""IMS (stub being written)."""

from __future__ import annotations

import time

from .store import Store

ROUTES: list = []

SEEDED_IMAGES = [
    {
        "id": "img-helix-ubuntu-22",
        "name": "Helix CMS on Ubuntu 22.04",
        "min_disk": 40,
        "os": "Ubuntu 22.04",
    },
    {
        "id": "img-ubuntu-22.04",
        "name": "Ubuntu 22.04 server 64bit",
        "min_disk": 40,
        "os": "Ubuntu 22.04",
    },
    {"id": "img-debian-12", "name": "Debian 12 64bit", "min_disk": 20, "os": "Debian 12"},
]


def seed_images(store: Store) -> None:
    for image in SEEDED_IMAGES:
        store.run(
            "INSERT OR IGNORE INTO images (id, name, min_disk, os, created_at) VALUES (?, ?, ?, ?, ?)",
            image["id"],
            image["name"],
            image["min_disk"],
            image["os"],
            time.time(),
        )


def all_images(store: Store) -> list[dict]:
    return [dict(row) for row in store.all("SELECT * FROM images ORDER BY created_at, id")]
