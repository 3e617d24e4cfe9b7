"""IMS: the region's images. A few public images are seeded; ``POST /sim/images``
registers more (a seller's image as the marketplace would publish it)."""

from __future__ import annotations

import time

from .errors import not_found
from .iam import iso
from .routing import Answer, Call, Route
from .store import Store

STYLE = "ecs"  # IMS answers errors as {"error": {"code", "message"}}

SEEDED_IMAGES = [
    {"id": "img-helix-ubuntu-22", "name": "Helix CMS on Ubuntu 22.04", "min_disk": 40, "os": "Ubuntu 22.04"},
    {"id": "img-ubuntu-22.04", "name": "Ubuntu 22.04 server 64bit", "min_disk": 40, "os": "Ubuntu 22.04"},
    {"id": "img-debian-12", "name": "Debian 12 64bit", "min_disk": 20, "os": "Debian 12"},
]  # fmt: skip


def seed_images(store: Store) -> None:
    for image in SEEDED_IMAGES:
        store.run(
            "INSERT OR IGNORE INTO images (id, name, min_disk, os, created_at) VALUES (?, ?, ?, ?, ?)",
            image["id"], image["name"], image["min_disk"], image["os"], 0.0,
        )  # fmt: skip


def all_images(store: Store) -> list[dict]:
    rows = store.all("SELECT * FROM images ORDER BY created_at, id")
    return [
        {"image_id": r["id"], "name": r["name"], "min_disk": r["min_disk"], "os": r["os"]}
        for r in rows
    ]


def find_image(store: Store, image_id: str) -> dict | None:
    row = store.one("SELECT * FROM images WHERE id = ?", image_id)
    return dict(row) if row else None


def image_body(row: dict) -> dict:
    created = iso(row["created_at"] or time.time(), micro=False)
    return {
        "id": row["id"],
        "name": row["name"],
        "status": "active",
        "visibility": "public",
        "min_disk": row["min_disk"],
        "min_ram": 0,
        "disk_format": "zvhd2",
        "container_format": "bare",
        "protected": True,
        "virtual_env_type": "FusionCompute",
        "__imagetype": "gold",
        "__isregistered": "true",
        "__os_type": "Linux",
        "__os_version": row["os"],
        "__platform": row["os"].split()[0],
        "__os_bit": "64",
        "__support_kvm": "true",
        "created_at": created,
        "updated_at": created,
        "self": f"/v2/images/{row['id']}",
        "file": f"/v2/images/{row['id']}/file",
        "schema": "/v2/schemas/image",
        "tags": [],
        "size": 0,
    }


def list_images(call: Call) -> Answer:
    images = [dict(r) for r in call.store.all("SELECT * FROM images ORDER BY created_at, id")]
    wanted_id, wanted_name = call.query.get("id"), call.query.get("name")
    images = [
        i
        for i in images
        if (not wanted_id or i["id"] == wanted_id) and (not wanted_name or i["name"] == wanted_name)
    ]
    return 200, {"images": [image_body(i) for i in images]}


def show_image(call: Call) -> Answer:
    image = find_image(call.store, call.params["image_id"])
    if image is None:
        raise not_found(STYLE, "Image", code="IMG.0027")
    return 200, image_body(image)


ROUTES = [
    Route("GET", "/v2/cloudimages", "ListImages", "ims:images:list", STYLE, list_images, False),
    Route("GET", "/v2/images/<image_id>", "GlanceShowImage", "ims:images:get", STYLE, show_image, False),
]  # fmt: skip
