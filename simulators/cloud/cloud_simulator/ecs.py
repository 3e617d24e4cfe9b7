"""ECS: flavors, limits (quotas), servers (created and deleted through jobs) and the
job API (``/v1/{project_id}/jobs/{job_id}``, which EVS shares)."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import uuid

from . import catalog, iam, ims, jobs, quotas
from .admin import account_quotas
from .errors import bad_request, conflict, not_found
from .iam import iso
from .routing import Answer, Call, Route, require
from .store import Store

STYLE = "ecs"
BUILD_STEPS = 2  # a server takes two steps to build, a deletion one


def hash_password(password: str) -> str:
    """Only a salted hash of an admin password is kept, never the password."""
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, 100_000)
    return f"pbkdf2_sha256$100000${salt.hex()}${digest.hex()}"


def flavor_body(flavor: dict) -> dict:
    return {
        "id": flavor["id"],
        "name": flavor["id"],
        "vcpus": str(flavor["vcpus"]),
        "ram": flavor["ram"],
        "disk": "0",
        "swap": "",
        "OS-FLV-EXT-DATA:ephemeral": 0,
        "OS-FLV-DISABLED:disabled": False,
        "rxtx_factor": 1.0,
        "os-flavor-access:is_public": True,
        "links": [],
        "os_extra_specs": {"ecs:performancetype": "normal", "cond:operation:status": "normal"},
    }


def list_flavors(call: Call) -> Answer:
    wanted = call.query.get("flavor_id")
    flavors = [f for f in catalog.FLAVORS if not wanted or f["id"] == wanted]
    return 200, {"flavors": [flavor_body(f) for f in flavors]}


def show_limits(call: Call) -> Answer:
    limits = account_quotas(call.store, call.caller.domain_id)
    used = quotas.usage(call.store, call.caller.domain_id)
    return 200, {
        "absolute": {
            "maxTotalInstances": limits["instances"],
            "totalInstancesUsed": used["instances"],
            "maxTotalCores": limits["cores"],
            "totalCoresUsed": used["cores"],
            "maxTotalRAMSize": limits["ram"],
            "totalRAMUsed": used["ram"],
            "maxSecurityGroups": limits["security_groups"],
            "totalSecurityGroupsUsed": used["security_groups"],
            "maxTotalFloatingIps": limits["public_ips"],
            "totalFloatingIpsUsed": used["public_ips"],
            "maxSecurityGroupRules": 100,
            "maxImageMeta": 128,
            "maxPersonality": 5,
            "maxPersonalitySize": 10240,
            "maxServerGroupMembers": 16,
            "maxServerGroups": 10,
            "maxServerMeta": 128,
            "maxTotalKeypairs": 100,
            "totalServerGroupsUsed": 0,
            "maxTotalSpotInstances": 0,
            "maxTotalSpotCores": 0,
            "maxTotalSpotRAMSize": 0,
            "totalSpotInstancesUsed": 0,
            "totalSpotCoresUsed": 0,
            "totalSpotRAMUsed": 0,
            "limit_by_flavor": [],
        }
    }


def _private_ip(store: Store, domain_id: str, subnet: dict) -> str:
    """The next free host address of the subnet (after the gateway)."""
    taken = {
        s["data"].get("private_ip")
        for s in store.resources(domain_id, "server")
        if s["data"].get("subnet_id") == subnet["id"]
    }
    gateway = subnet["data"].get("gateway_ip")
    for host in ipaddress.ip_network(subnet["data"]["cidr"], strict=False).hosts():
        address = str(host)
        if address != gateway and address not in taken and not address.endswith(".1"):
            return address
    raise bad_request(STYLE, f"Subnet {subnet['id']} has no free address.", code="Ecs.0039")


def create_servers(call: Call) -> Answer:
    server = call.field("server")
    name = call.field("server", "name")
    image_id = call.field("server", "imageRef")
    flavor = catalog.FLAVORS_BY_ID.get(call.field("server", "flavorRef"))
    require(flavor is not None, bad_request(STYLE, "The flavor does not exist.", code="Ecs.0021"))
    assert flavor is not None
    image = ims.find_image(call.store, image_id)
    if image is None:
        raise bad_request(STYLE, "The image does not exist.", code="Ecs.0023")
    nics = server.get("nics") or []
    require(bool(nics), bad_request(STYLE, "server.nics is required."))
    domain = call.caller.domain_id
    subnet = call.store.resource(domain, "subnet", nics[0].get("subnet_id") or "")
    require(subnet is not None, bad_request(STYLE, "The subnet does not exist.", code="Ecs.0036"))
    assert subnet is not None
    vpc_id = server.get("vpcid") or subnet["data"]["vpc_id"]
    groups = [g.get("id") for g in server.get("security_groups") or []]
    for group_id in groups:
        require(
            call.store.resource(domain, "security_group", group_id) is not None,
            bad_request(STYLE, f"Security group {group_id} does not exist.", code="Ecs.0037"),
        )
    eip_id = (server.get("publicip") or {}).get("id")
    if eip_id:
        eip = call.store.resource(domain, "eip", eip_id)
        require(eip is not None, bad_request(STYLE, "The EIP does not exist.", code="Ecs.0038"))
        require(
            not (eip or {}).get("data", {}).get("port_id"),
            bad_request(STYLE, "The EIP is already bound.", code="Ecs.0038"),
        )
    volume_ids = [v for v in server.get("volume_ids") or [] if v]  # set by the stack service
    for volume_id in volume_ids:
        volume = call.store.resource(domain, "volume", volume_id)
        require(
            volume is not None and volume["status"] == "available",
            bad_request(STYLE, f"Volume {volume_id} is not available.", code="Ecs.0041"),
        )
    root = server.get("root_volume") or {}
    require(
        int(root.get("size") or image["min_disk"]) >= image["min_disk"],
        bad_request(STYLE, f"The system disk must be at least {image['min_disk']} GB."),
    )
    count = int(server.get("count") or 1)
    password = server.get("adminPass")
    zone = server.get("availability_zone") or catalog.availability_zones(call.settings.region)[0]
    ids: list[str] = []
    with call.store.lock:
        quotas.require_room(
            call.store,
            domain,
            STYLE,
            {"instances": count, "cores": count * flavor["vcpus"], "ram": count * flavor["ram"]},
        )
        for number in range(1, count + 1):
            server_id = str(uuid.uuid4())
            server_name = name if count == 1 else f"{name}-{number:04d}"
            data = {
                "flavor_id": flavor["id"],
                "image_id": image_id,
                "vpc_id": vpc_id,
                "subnet_id": subnet["id"],
                "private_ip": _private_ip(call.store, domain, subnet),
                "port_id": str(uuid.uuid4()),
                "mac": "fa:16:3e:" + ":".join(f"{b:02x}" for b in os.urandom(3)),
                "security_group_ids": groups,
                "eip_id": eip_id if number == 1 else None,
                "volume_ids": volume_ids if number == 1 else [],
                "availability_zone": zone,
                "root_volume": {
                    "volumetype": root.get("volumetype", "SSD"),
                    "size": root.get("size", image["min_disk"]),
                },
                "admin_password_hash": hash_password(password) if password else None,
                "created": iso(call.store.now(), micro=False),
            }
            call.store.insert_resource(server_id, domain, "server", server_name, "BUILD", data)
            ids.append(server_id)
        job_id = jobs.start_job(
            call.store,
            domain,
            "createServer",
            "server",
            ids,
            BUILD_STEPS * call.settings.step_seconds,
            fail=call.outcome.job_error,
        )
    return 200, {"job_id": job_id, "serverIds": ids, "order_id": None}


def delete_servers(call: Call) -> Answer:
    domain = call.caller.domain_id
    ids = [s.get("id") for s in call.field("servers")]
    with call.store.lock:
        for server_id in ids:
            server = call.store.resource(domain, "server", server_id)
            if server is None:
                raise not_found(STYLE, f"Server {server_id}")
        for server_id in ids:
            server = call.store.resource(domain, "server", server_id)
            assert server is not None
            server["data"]["status_before"] = server["status"]
            server["data"]["delete_volume"] = bool(call.body.get("delete_volume"))
            server["data"]["delete_publicip"] = bool(call.body.get("delete_publicip"))
            call.store.update_resource(server_id, status="DELETING", data=server["data"])
        job_id = jobs.start_job(
            call.store,
            domain,
            "deleteServer",
            "server",
            ids,
            call.settings.step_seconds,
            fail=call.outcome.job_error,
        )
    return 200, {"job_id": job_id}


# -- stopping and starting servers (BatchStopServers, BatchStartServers) ----------------
# One path serves both, as in the real API: the body's only key says which
# (``os-stop`` or ``os-start``), and so which IAM action is checked.

POWER_ACTIONS = {
    # body key: (IAM action, job type, the status it leads to, task state meanwhile)
    "os-stop": ("ecs:cloudServers:stop", "batchStopServer", "SHUTOFF", "powering-off"),
    "os-start": ("ecs:cloudServers:start", "batchStartServer", "ACTIVE", "powering-on"),
}
POWER_STATUSES = ("ACTIVE", "SHUTOFF")  # the statuses a server may be stopped or started in
STOP_TYPES = ("SOFT", "HARD")
MAX_BATCH = 1000


def _power_request(call: Call) -> tuple[str, dict]:
    """The body's one power key and its option, checked as the real API does."""
    body = call.body if isinstance(call.body, dict) else {}
    keys = [key for key in body if key in POWER_ACTIONS]
    if len(keys) != 1 or len(body) != 1:
        raise bad_request(STYLE, "The body must hold exactly one of os-stop, os-start.")
    key = keys[0]
    option = body[key]
    if not isinstance(option, dict):
        raise bad_request(STYLE, f"{key} must be an object.")
    servers = option.get("servers")
    if not isinstance(servers, list) or not 1 <= len(servers) <= MAX_BATCH:
        raise bad_request(STYLE, f"{key}.servers must list 1 to {MAX_BATCH} servers.")
    ids = [s.get("id") if isinstance(s, dict) else None for s in servers]
    if not all(isinstance(i, str) and i for i in ids) or len(set(ids)) != len(ids):
        raise bad_request(STYLE, f"{key}.servers must name each server once by its id.")
    if key == "os-stop" and option.get("type", "SOFT") not in STOP_TYPES:
        raise bad_request(STYLE, "os-stop.type must be SOFT or HARD.")
    return key, option


def power_servers(call: Call) -> Answer:
    """Stop (``os-stop``) or start (``os-start``) servers of the caller's account through
    a job: a server stays as it is, with its task state, until the job ends (``ACTIVE``
    -> ``SHUTOFF``, or back); one that is there already is left so and the job succeeds
    for it. An unknown server, or another account's, is refused (404 ``Ecs.0114``) and
    nothing is done; one being built, in error or being deleted, is a 409."""
    key, option = _power_request(call)
    action, job_type, target, task_state = POWER_ACTIONS[key]
    # the route checks no action of its own: the body says which (and faults apply)
    call.outcome = iam.authorize(call.store, call.caller, action)
    domain = call.caller.domain_id
    ids = [s["id"] for s in option["servers"]]
    jobs.settle(call.store)
    with call.store.lock:
        servers = []
        for server_id in ids:
            server = call.store.resource(domain, "server", server_id)
            if server is None:
                raise not_found(STYLE, f"Server {server_id}")
            if server["status"] not in POWER_STATUSES:
                raise conflict(
                    STYLE,
                    f"Server {server_id} is {server['status']}: it cannot be "
                    f"{'stopped' if key == 'os-stop' else 'started'} now.",
                )
            servers.append(server)
        for server in servers:
            if server["status"] != target:
                server["data"]["task_state"] = task_state
                if key == "os-stop":
                    server["data"]["stop_type"] = option.get("type", "SOFT")
                call.store.update_resource(server["id"], data=server["data"])
        job_id = jobs.start_job(
            call.store,
            domain,
            job_type,
            "server",
            ids,
            call.settings.step_seconds,
            fail=call.outcome.job_error,
        )
    return 200, {"job_id": job_id}


def server_body(store: Store, server: dict) -> dict:
    data = server["data"]
    flavor = catalog.FLAVORS_BY_ID.get(
        data["flavor_id"], {"id": data["flavor_id"], "vcpus": 0, "ram": 0}
    )
    addresses = [
        {
            "version": "4",
            "addr": data["private_ip"],
            "OS-EXT-IPS:type": "fixed",
            "OS-EXT-IPS-MAC:mac_addr": data.get("mac"),
            "OS-EXT-IPS:port_id": data.get("port_id"),
            "primary": True,
        }
    ]
    if data.get("eip_id"):
        eip = store.resource(server["domain_id"], "eip", data["eip_id"])
        if eip is not None and eip["status"] == "ACTIVE":
            addresses.append(
                {
                    "version": "4",
                    "addr": eip["data"]["public_ip_address"],
                    "OS-EXT-IPS:type": "floating",
                    "OS-EXT-IPS-MAC:mac_addr": data.get("mac"),
                    "OS-EXT-IPS:port_id": data.get("port_id"),
                    "primary": False,
                }
            )
    groups = []
    for group_id in data.get("security_group_ids") or []:
        group = store.resource(server["domain_id"], "security_group", group_id)
        groups.append({"id": group_id, "name": group["name"] if group else group_id})
    status = server["status"]
    return {
        "id": server["id"],
        "name": server["name"],
        "status": status,
        "addresses": {data["vpc_id"]: addresses},
        "flavor": {
            "id": flavor["id"],
            "name": flavor["id"],
            "vcpus": str(flavor["vcpus"]),
            "ram": str(flavor["ram"]),
            "disk": "0",
        },
        "image": {"id": data["image_id"]},
        "security_groups": groups,
        "OS-EXT-AZ:availability_zone": data.get("availability_zone"),
        "OS-EXT-STS:vm_state": {
            "ACTIVE": "active",
            "BUILD": "building",
            "ERROR": "error",
            "SHUTOFF": "stopped",
        }.get(status, "deleted"),
        "OS-EXT-STS:task_state": "spawning" if status == "BUILD" else data.get("task_state", ""),
        "OS-EXT-STS:power_state": {"ACTIVE": 1, "SHUTOFF": 4}.get(status, 0),
        "tenant_id": None,
        "user_id": None,
        "created": data.get("created"),
        "updated": data.get("created"),
        "metadata": {"vpc_id": data["vpc_id"]},
        "fault": data.get("fault"),
        "progress": 100 if status == "ACTIVE" else 0,
        "os-extended-volumes:volumes_attached": [{"id": v} for v in data.get("volume_ids", [])],
    }


def show_server(call: Call) -> Answer:
    jobs.settle(call.store)
    server = call.store.resource(call.caller.domain_id, "server", call.params["server_id"])
    if server is None:
        raise not_found(STYLE, "Server", code="Ecs.0114")
    return 200, {"server": server_body(call.store, server)}


def list_servers(call: Call) -> Answer:
    jobs.settle(call.store)
    servers = call.store.resources(call.caller.domain_id, "server")
    name, status = call.query.get("name"), call.query.get("status")
    servers = [
        s
        for s in servers
        if (not name or name in s["name"]) and (not status or s["status"] == status)
    ]
    return 200, {"count": len(servers), "servers": [server_body(call.store, s) for s in servers]}


def job_body(row) -> dict:
    resource_key = "server_id" if row["resource_type"] == "server" else "volume_id"
    ids = json.loads(row["resource_ids"])
    sub_jobs = [
        {
            "status": row["status"],
            "entities": {resource_key: resource_id},
            "job_id": f"{row['id']}-{index}",
            "job_type": row["job_type"],
            "begin_time": iso(row["begin_at"]),
            "end_time": iso(row["end_at"]),
            "error_code": "Ecs.0000" if row["status"] == "FAIL" else None,
            "fail_reason": row["fail_reason"],
        }
        for index, resource_id in enumerate(ids, start=1)
    ]
    entities: dict = {"sub_jobs": sub_jobs, "sub_jobs_total": len(sub_jobs)}
    if len(ids) == 1:
        entities[resource_key] = ids[0]
    return {
        "job_id": row["id"],
        "job_type": row["job_type"],
        "status": row["status"],
        "begin_time": iso(row["begin_at"]),
        "end_time": iso(row["end_at"]),
        "error_code": "Ecs.0000" if row["status"] == "FAIL" else None,
        "fail_reason": row["fail_reason"],
        "entities": entities,
    }


def show_job(call: Call) -> Answer:
    row = jobs.job_row(call.store, call.caller.domain_id, call.params["job_id"])
    if row is None:
        raise not_found(STYLE, "Job", code="Ecs.0200")
    return 200, job_body(row)


ROUTES = [
    Route("GET", "/v1/<project_id>/cloudservers/flavors", "ListFlavors", "ecs:flavors:get", STYLE, list_flavors),
    Route("GET", "/v1/<project_id>/cloudservers/limits", "ShowServerLimits", "ecs:quotas:get", STYLE, show_limits),
    Route("GET", "/v1/<project_id>/cloudservers/detail", "ListServersDetails", "ecs:cloudServers:list", STYLE, list_servers),
    Route("GET", "/v1/<project_id>/cloudservers/<server_id>", "ShowServer", "ecs:cloudServers:get", STYLE, show_server),
    Route("POST", "/v1.1/<project_id>/cloudservers", "CreateServers", "ecs:cloudServers:create", STYLE, create_servers),
    Route("POST", "/v1/<project_id>/cloudservers/delete", "DeleteServers", "ecs:cloudServers:delete", STYLE, delete_servers),
    # BatchStopServers (ecs:cloudServers:stop) and BatchStartServers (ecs:cloudServers:start)
    Route("POST", "/v1/<project_id>/cloudservers/action", "BatchStopServers, BatchStartServers", None, STYLE, power_servers),
    Route("GET", "/v1/<project_id>/jobs/<job_id>", "ShowJob (ECS and EVS)", "ecs:cloudServers:get", STYLE, show_job),
]  # fmt: skip
