"""EVS: data volumes, created and deleted through jobs (``creating`` -> ``available``,
``in-use`` once attached to a server, ``deleting`` -> gone)."""

from __future__ import annotations

import uuid

from . import catalog, jobs, quotas
from .errors import bad_request, conflict, not_found
from .iam import iso
from .routing import Answer, Call, Route, require

STYLE = "ecs"  # EVS answers errors as ECS does: {"error": {"code", "message"}}


def create_volume(call: Call) -> Answer:
    size = int(call.field("volume", "size"))
    require(
        10 <= size <= 32768,
        bad_request(STYLE, "volume.size must be 10..32768 GB.", code="EVS.2001"),
    )
    volume_type = call.field("volume", "volume_type")
    require(
        volume_type in catalog.VOLUME_TYPES,
        bad_request(STYLE, "Unknown volume_type.", code="EVS.2002"),
    )
    zone = call.field("volume", "availability_zone")
    count = int(call.field("volume", "count", required=False, default=1))
    name = call.field("volume", "name", required=False, default="volume")
    domain = call.caller.domain_id
    ids: list[str] = []
    with call.store.lock:
        quotas.require_room(
            call.store, domain, STYLE, {"volumes": count, "gigabytes": count * size}
        )
        for number in range(1, count + 1):
            volume_id = str(uuid.uuid4())
            data = {
                "size": size,
                "volume_type": volume_type,
                "availability_zone": zone,
                "created_at": iso(call.store.now()),
            }
            volume_name = name if count == 1 else f"{name}-{number:04d}"
            call.store.insert_resource(volume_id, domain, "volume", volume_name, "creating", data)
            ids.append(volume_id)
        job_id = jobs.start_job(
            call.store, domain, "createVolume", "volume", ids, call.settings.step_seconds,
            fail=call.outcome.job_error,
        )  # fmt: skip
    return 200, {"job_id": job_id, "volume_ids": ids, "order_id": None}


def volume_body(volume: dict) -> dict:
    data = volume["data"]
    attachments = []
    if data.get("server_id"):
        attachments.append(
            {
                "server_id": data["server_id"],
                "volume_id": volume["id"],
                "id": volume["id"],
                "attachment_id": volume["id"],
                "device": "/dev/vdb",
                "attached_at": data["created_at"],
                "host_name": None,
            }
        )
    return {
        "id": volume["id"],
        "name": volume["name"],
        "status": volume["status"],
        "size": data["size"],
        "volume_type": data["volume_type"],
        "availability_zone": data["availability_zone"],
        "attachments": attachments,
        "bootable": "false",
        "encrypted": False,
        "multiattach": False,
        "shareable": "false",
        "created_at": data["created_at"],
        "updated_at": data["created_at"],
        "metadata": {},
        "links": [],
    }


def _own_volume(call: Call) -> dict:
    jobs.settle(call.store)
    volume = call.store.resource(call.caller.domain_id, "volume", call.params["volume_id"])
    if volume is None:
        raise not_found(STYLE, "Volume", code="EVS.2004")
    return volume


def show_volume(call: Call) -> Answer:
    return 200, {"volume": volume_body(_own_volume(call))}


def delete_volume(call: Call) -> Answer:
    with call.store.lock:
        volume = _own_volume(call)
        require(
            volume["status"] in ("available", "error", "error_deleting"),
            conflict(
                STYLE, f"Volume is {volume['status']}; it cannot be deleted now.", code="EVS.2024"
            ),
        )
        call.store.update_resource(volume["id"], status="deleting")
        job_id = jobs.start_job(
            call.store, call.caller.domain_id, "deleteVolume", "volume", [volume["id"]],
            call.settings.step_seconds, fail=call.outcome.job_error,
        )  # fmt: skip
    return 200, {"job_id": job_id}


ROUTES = [
    Route("POST", "/v2.1/<project_id>/cloudvolumes", "CreateVolume", "evs:volumes:create", STYLE, create_volume),
    Route("GET", "/v2/<project_id>/cloudvolumes/<volume_id>", "ShowVolume", "evs:volumes:get", STYLE, show_volume),
    Route("DELETE", "/v2/<project_id>/cloudvolumes/<volume_id>", "DeleteVolume", "evs:volumes:delete", STYLE, delete_volume),
]  # fmt: skip
