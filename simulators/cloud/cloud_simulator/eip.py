"""EIP: public IPs (``DOWN`` until a server they are bound to is ``ACTIVE``)."""

from __future__ import annotations

import itertools
import uuid

from . import quotas
from .errors import bad_request, conflict, not_found
from .iam import iso
from .routing import Answer, Call, Route, require
from .store import Store

STYLE = "vpc"  # EIP answers errors as VPC does: {"code", "message"}
EIP_TYPES = ("5_bgp", "5_sbgp", "5_telcom", "5_union")


def _free_address(store: Store) -> str:
    """The next unused address of 100.64.0.0/10 (shared address space, never routed)."""
    taken = {r["data"]["public_ip_address"] for r in _all_eips(store)}
    for a, b in itertools.product(range(64, 128), range(256)):
        for c in range(1, 255):
            address = f"100.{a}.{b}.{c}"
            if address not in taken:
                return address
    raise bad_request(STYLE, "No public address left.")


def _all_eips(store: Store) -> list[dict]:
    rows = store.all("SELECT domain_id FROM resources WHERE type = 'eip'")
    found: list[dict] = []
    for domain_id in {row["domain_id"] for row in rows}:
        found.extend(store.resources(domain_id, "eip"))
    return found


def eip_body(eip: dict) -> dict:
    data = eip["data"]
    return {
        "id": eip["id"],
        "status": eip["status"],
        "type": data["type"],
        "public_ip_address": data["public_ip_address"],
        "private_ip_address": data.get("private_ip_address"),
        "port_id": data.get("port_id"),
        "bandwidth_id": data["bandwidth_id"],
        "bandwidth_name": data["bandwidth_name"],
        "bandwidth_share_type": data["bandwidth_share_type"],
        "bandwidth_size": data["bandwidth_size"],
        "create_time": data["create_time"],
        "ip_version": 4,
        "enterprise_project_id": "0",
        "tenant_id": None,
        "alias": None,
    }


def create_publicip(call: Call) -> Answer:
    eip_type = call.field("publicip", "type")
    require(
        eip_type in EIP_TYPES,
        bad_request(STYLE, f"publicip.type must be one of {', '.join(EIP_TYPES)}."),
    )
    size = int(call.field("bandwidth", "size"))
    require(1 <= size <= 2000, bad_request(STYLE, "bandwidth.size must be 1..2000 Mbit/s."))
    eip_id = str(uuid.uuid4())
    with call.store.lock:
        quotas.require_room(call.store, call.caller.domain_id, STYLE, {"public_ips": 1})
        data = {
            "type": eip_type,
            "public_ip_address": _free_address(call.store),
            "bandwidth_id": str(uuid.uuid4()),
            "bandwidth_name": call.field(
                "bandwidth", "name", required=False, default=f"bandwidth-{eip_id[:8]}"
            ),
            "bandwidth_share_type": call.field(
                "bandwidth", "share_type", required=False, default="PER"
            ),
            "bandwidth_size": size,
            "charge_mode": call.field(
                "bandwidth", "charge_mode", required=False, default="traffic"
            ),
            "create_time": iso(call.store.now(), micro=False),
        }
        call.store.insert_resource(
            eip_id, call.caller.domain_id, "eip", data["public_ip_address"], "DOWN", data
        )
    created = call.store.resource(call.caller.domain_id, "eip", eip_id)
    assert created is not None
    body = eip_body(created)
    return 200, {"publicip": {k: body[k] for k in (
        "id", "status", "type", "public_ip_address", "bandwidth_size", "create_time", "ip_version",
        "enterprise_project_id", "tenant_id", "alias")}}  # fmt: skip


def _own_eip(call: Call) -> dict:
    eip = call.store.resource(call.caller.domain_id, "eip", call.params["publicip_id"])
    if eip is None:
        raise not_found(STYLE, "Public IP", code="VPC.0301")
    return eip


def show_publicip(call: Call) -> Answer:
    return 200, {"publicip": eip_body(_own_eip(call))}


def delete_publicip(call: Call) -> Answer:
    with call.store.lock:
        eip = _own_eip(call)
        bound = [
            s
            for s in call.store.resources(call.caller.domain_id, "server")
            if s["data"].get("eip_id") == eip["id"]
        ]
        require(not bound, conflict(STYLE, "The public IP is bound to a server.", code="VPC.0304"))
        call.store.delete_resource(eip["id"])
    return 204, None


ROUTES = [
    Route("POST", "/v1/<project_id>/publicips", "CreatePublicip", "vpc:publicIps:create", STYLE, create_publicip),
    Route("GET", "/v1/<project_id>/publicips/<publicip_id>", "ShowPublicip", "vpc:publicIps:get", STYLE, show_publicip),
    Route("DELETE", "/v1/<project_id>/publicips/<publicip_id>", "DeletePublicip", "vpc:publicIps:delete", STYLE, delete_publicip),
]  # fmt: skip
