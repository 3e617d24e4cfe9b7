"""RFS, the stack service: a stack deploys a Terraform JSON template in the caller's
account by assuming the account's agency that trusts ``op_svc_rfs``; every resource
it creates or deletes goes through the same handlers (and the same policy check and
faults) as a direct API call would.

Deployment and deletion run in a background thread per stack. A per-stack lock makes
a deletion wait until the deployment thread has left (it stops at its next step once
the stack's status is no longer ``DEPLOYMENT_IN_PROGRESS``).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from werkzeug.datastructures import Headers, MultiDict

from . import ecs, eip, evs, iam, jobs, kms, vpc
from .errors import CloudError, bad_request, conflict, not_found
from .iam import iso
from .routing import Answer, Call, Caller, Route, Settings, require
from .store import Store
from .template import Planned, TemplateError, parse, parse_vars_body, plan, resolve

STYLE = "rfs"
STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,127}$")
JOB_TIMEOUT_SECONDS = 600

DEPLOYMENT_IN_PROGRESS = "DEPLOYMENT_IN_PROGRESS"
DEPLOYMENT_COMPLETE = "DEPLOYMENT_COMPLETE"
DEPLOYMENT_FAILED = "DEPLOYMENT_FAILED"
DELETION_IN_PROGRESS = "DELETION_IN_PROGRESS"
DELETION_FAILED = "DELETION_FAILED"

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(stack_id: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(stack_id, threading.Lock())


class DeploymentFailed(Exception):
    pass


class DeploymentStopped(Exception):
    """The stack stopped deploying (DeleteStack) while a call was delayed."""


# -- the stack service calling the other services ------------------------------------------


@dataclass
class StackContext:
    store: Store
    settings: Settings
    stack_id: str
    caller: Caller
    deploying: bool = False

    def invoke(
        self,
        action: str,
        style: str,
        handler: Callable[[Call], Answer],
        body: Any = None,
        **params: str,
    ) -> Any:
        """Call a service as the assumed agency: the policy check and faults first."""
        outcome = iam.authorize(self.store, self.caller, action)
        if self.deploying and self.status() != DEPLOYMENT_IN_PROGRESS:
            raise DeploymentStopped  # e.g. deleted during a delay fault: create nothing more
        call = Call(
            store=self.store,
            settings=self.settings,
            caller=self.caller,
            params={"project_id": self.caller.project_id, **params},
            query=MultiDict(),
            body=body or {},
            headers=Headers(),
            request_id=uuid.uuid4().hex,
            style=style,
            outcome=outcome,
        )
        return handler(call)[1]

    def status(self) -> str | None:
        row = self.store.one("SELECT status FROM stacks WHERE id = ?", self.stack_id)
        return row["status"] if row else None

    def wait_job(self, job_id: str, while_status: str) -> Any:
        deadline = time.monotonic() + JOB_TIMEOUT_SECONDS
        return jobs.wait_for(
            self.store,
            self.caller.domain_id,
            job_id,
            lambda: self.status() == while_status and time.monotonic() < deadline,
        )


def _first(block: Any) -> dict:
    """Terraform JSON writes a nested block as an object or a list of one object."""
    if isinstance(block, list):
        return block[0] if block and isinstance(block[0], dict) else {}
    return block if isinstance(block, dict) else {}


def _job_outcome(ctx: StackContext, job_id: str, what: str, while_status: str) -> bool:
    """True when the job succeeded; False when the stack stopped deploying first."""
    row = ctx.wait_job(job_id, while_status)
    if row is None:
        return False
    if row["status"] != "SUCCESS":
        raise DeploymentFailed(f"{what}: job {job_id} failed: {row['fail_reason']}")
    return True


# -- creating each resource type -------------------------------------------------------

Recorder = Callable[[str, str], None]  # (physical id, physical name), as soon as known


def create_vpc(ctx: StackContext, args: dict, record: Recorder) -> dict | None:
    answer = ctx.invoke(
        "vpc:networks:create",
        "vpc",
        vpc.create_vpc,
        {"vpc": {"name": args.get("name"), "cidr": args.get("cidr")}},
    )
    record(answer["vpc"]["id"], answer["vpc"]["name"])
    return {"id": answer["vpc"]["id"], "name": answer["vpc"]["name"], "cidr": answer["vpc"]["cidr"]}


def create_subnet(ctx: StackContext, args: dict, record: Recorder) -> dict | None:
    option = {k: args.get(k) for k in ("name", "cidr", "gateway_ip", "vpc_id", "availability_zone")}
    subnet = ctx.invoke("vpc:subnets:create", "vpc", vpc.create_subnet, {"subnet": option})[
        "subnet"
    ]
    record(subnet["id"], subnet["name"])
    return {k: subnet[k] for k in ("id", "name", "cidr", "gateway_ip", "vpc_id")}


def create_secgroup(ctx: StackContext, args: dict, record: Recorder) -> dict | None:
    group = ctx.invoke(
        "vpc:securityGroups:create",
        "vpc",
        vpc.create_security_group,
        {"security_group": {"name": args.get("name")}},
    )["security_group"]
    record(group["id"], group["name"])
    return {"id": group["id"], "name": group["name"]}


def create_secgroup_rule(ctx: StackContext, args: dict, record: Recorder) -> dict | None:
    keys = (
        "security_group_id",
        "direction",
        "protocol",
        "port_range_min",
        "port_range_max",
        "remote_ip_prefix",
        "ethertype",
    )
    rule = ctx.invoke(
        "vpc:securityGroupRules:create", "vpc", vpc.create_security_group_rule,
        {"security_group_rule": {k: args.get(k) for k in keys}},
    )["security_group_rule"]  # fmt: skip
    record(rule["id"], rule["id"])
    return {"id": rule["id"]}


def create_eip(ctx: StackContext, args: dict, record: Recorder) -> dict | None:
    bandwidth = _first(args.get("bandwidth"))
    body = {
        "publicip": {"type": _first(args.get("publicip")).get("type", "5_bgp")},
        "bandwidth": bandwidth,
    }
    publicip = ctx.invoke("vpc:publicIps:create", "vpc", eip.create_publicip, body)["publicip"]
    record(publicip["id"], publicip["public_ip_address"])
    return {"id": publicip["id"], "address": publicip["public_ip_address"]}


def create_volume(ctx: StackContext, args: dict, record: Recorder) -> dict | None:
    option = {k: args.get(k) for k in ("name", "size", "volume_type", "availability_zone")}
    answer = ctx.invoke("evs:volumes:create", "ecs", evs.create_volume, {"volume": option})
    volume_id = answer["volume_ids"][0]
    record(volume_id, str(option["name"]))
    if not _job_outcome(ctx, answer["job_id"], f"volume {option['name']}", DEPLOYMENT_IN_PROGRESS):
        return None
    return {"id": volume_id, "name": option["name"]}


def create_instance(ctx: StackContext, args: dict, record: Recorder) -> dict | None:
    networks = args.get("network") or []
    disks = args.get("data_disks") or {}
    if isinstance(disks, list):  # [{volume_id}] or [{"volume_ids": [...]}]
        volume_ids = [
            d.get("volume_id") for d in disks if isinstance(d, dict) and d.get("volume_id")
        ]
        volume_ids += [v for d in disks if isinstance(d, dict) for v in d.get("volume_ids") or []]
    else:
        volume_ids = list(disks.get("volume_ids") or [])
    server = {
        "name": args.get("name"),
        "imageRef": args.get("image_id"),
        "flavorRef": args.get("flavor_id"),
        "adminPass": args.get("admin_pass"),
        "availability_zone": args.get("availability_zone"),
        "security_groups": [{"id": g} for g in args.get("security_group_ids") or []],
        "nics": [
            {"subnet_id": _first(n).get("uuid")}
            for n in (networks if isinstance(networks, list) else [networks])
        ],
        "root_volume": {
            "volumetype": args.get("system_disk_type") or "SSD",
            "size": args.get("system_disk_size"),
        },
        "volume_ids": volume_ids,
    }
    if args.get("eip_id"):
        server["publicip"] = {"id": args["eip_id"]}
    answer = ctx.invoke("ecs:cloudServers:create", "ecs", ecs.create_servers, {"server": server})
    server_id = answer["serverIds"][0]
    record(server_id, str(server["name"]))
    if not _job_outcome(ctx, answer["job_id"], f"server {server['name']}", DEPLOYMENT_IN_PROGRESS):
        return None
    shown = ctx.invoke("ecs:cloudServers:get", "ecs", ecs.show_server, server_id=server_id)[
        "server"
    ]
    addresses = [a for entries in shown["addresses"].values() for a in entries]
    fixed = next((a["addr"] for a in addresses if a["OS-EXT-IPS:type"] == "fixed"), None)
    floating = next((a["addr"] for a in addresses if a["OS-EXT-IPS:type"] == "floating"), None)
    return {"id": server_id, "name": server["name"], "access_ip_v4": fixed, "public_ip": floating}


CREATORS: dict[str, Callable[[StackContext, dict, Recorder], dict | None]] = {
    "huaweicloud_vpc": create_vpc,
    "huaweicloud_vpc_subnet": create_subnet,
    "huaweicloud_networking_secgroup": create_secgroup,
    "huaweicloud_networking_secgroup_rule": create_secgroup_rule,
    "huaweicloud_vpc_eip": create_eip,
    "huaweicloud_evs_volume": create_volume,
    "huaweicloud_compute_instance": create_instance,
}


# -- deleting each resource type -------------------------------------------------------


def _deletion_job(ctx: StackContext, job_id: str, what: str) -> None:
    row = ctx.wait_job(job_id, DELETION_IN_PROGRESS)
    if row is not None and row["status"] != "SUCCESS":
        raise DeploymentFailed(f"{what}: job {job_id} failed: {row['fail_reason']}")


def delete_instance(ctx: StackContext, physical_id: str, attrs: dict) -> None:
    answer = ctx.invoke(
        "ecs:cloudServers:delete", "ecs", ecs.delete_servers,
        {"servers": [{"id": physical_id}], "delete_volume": False, "delete_publicip": False},
    )  # fmt: skip
    _deletion_job(ctx, answer["job_id"], f"server {physical_id}")


def delete_volume(ctx: StackContext, physical_id: str, attrs: dict) -> None:
    while True:  # a volume still being created is deleted once it is
        jobs.settle(ctx.store)
        volume = ctx.store.resource(ctx.caller.domain_id, "volume", physical_id)
        if volume is None or volume["status"] != "creating" or ctx.status() != DELETION_IN_PROGRESS:
            break
        time.sleep(0.02)
    answer = ctx.invoke("evs:volumes:delete", "ecs", evs.delete_volume, volume_id=physical_id)
    _deletion_job(ctx, answer["job_id"], f"volume {physical_id}")


def delete_eip(ctx: StackContext, physical_id: str, attrs: dict) -> None:
    ctx.invoke("vpc:publicIps:delete", "vpc", eip.delete_publicip, publicip_id=physical_id)


def delete_secgroup_rule(ctx: StackContext, physical_id: str, attrs: dict) -> None:
    """Nothing to call: a rule goes with its security group (deleted after it)."""


def delete_secgroup(ctx: StackContext, physical_id: str, attrs: dict) -> None:
    ctx.invoke(
        "vpc:securityGroups:delete", "vpc", vpc.delete_security_group, security_group_id=physical_id
    )


def delete_subnet(ctx: StackContext, physical_id: str, attrs: dict) -> None:
    subnet = ctx.store.resource(ctx.caller.domain_id, "subnet", physical_id)
    vpc_id = attrs.get("vpc_id") or (subnet["data"]["vpc_id"] if subnet else "")
    ctx.invoke("vpc:subnets:delete", "vpc", vpc.delete_subnet, vpc_id=vpc_id, subnet_id=physical_id)


def delete_vpc(ctx: StackContext, physical_id: str, attrs: dict) -> None:
    ctx.invoke("vpc:networks:delete", "vpc", vpc.delete_vpc, vpc_id=physical_id)


DELETERS: dict[str, Callable[[StackContext, str, dict], None]] = {
    "huaweicloud_vpc": delete_vpc,
    "huaweicloud_vpc_subnet": delete_subnet,
    "huaweicloud_networking_secgroup": delete_secgroup,
    "huaweicloud_networking_secgroup_rule": delete_secgroup_rule,
    "huaweicloud_vpc_eip": delete_eip,
    "huaweicloud_evs_volume": delete_volume,
    "huaweicloud_compute_instance": delete_instance,
}


# -- records ---------------------------------------------------------------------------


def _event(
    store: Store,
    stack_id: str,
    event_type: str,
    message: str,
    resource: dict | None = None,
    elapsed: int | None = None,
) -> None:
    store.run(
        "INSERT INTO stack_events (stack_id, resource_type, resource_name, physical_id, event_type,"
        " message, at, elapsed_seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        stack_id,
        resource["logical_type"] if resource else None,
        resource["logical_name"] if resource else None,
        resource["physical_id"] if resource else None,
        event_type,
        message,
        store.now(),
        elapsed,
    )


def _resource_row(store: Store, stack_id: str, position: int) -> dict:
    row = store.one(
        "SELECT * FROM stack_resources WHERE stack_id = ? AND position = ?", stack_id, position
    )
    assert row is not None
    return dict(row)


RESOURCE_COLUMNS = ("status", "status_message", "attributes", "physical_id", "physical_name")


def _set_resource(store: Store, stack_id: str, position: int, **fields: Any) -> dict:
    for key, value in fields.items():
        assert key in RESOURCE_COLUMNS, key
        store.run(
            f"UPDATE stack_resources SET {key} = ? WHERE stack_id = ? AND position = ?",  # noqa: S608 (a known column)
            value,
            stack_id,
            position,
        )
    return _resource_row(store, stack_id, position)


def _set_stack(
    store: Store, stack_id: str, status: str, message: str | None = None, only_if: str | None = None
) -> bool:
    now = store.now()
    if only_if is None:
        store.run(
            "UPDATE stacks SET status = ?, status_message = ?, updated_at = ? WHERE id = ?",
            status,
            message,
            now,
            stack_id,
        )
        return True
    with store.lock:
        row = store.one("SELECT status FROM stacks WHERE id = ?", stack_id)
        if row is None or row["status"] != only_if:
            return False
        store.run(
            "UPDATE stacks SET status = ?, status_message = ?, updated_at = ? WHERE id = ?",
            status,
            message,
            now,
            stack_id,
        )
        return True


# -- deployment ------------------------------------------------------------------------


def _assume(store: Store, stack) -> Caller:
    agencies = [
        a
        for a in json.loads(stack["agencies"])
        if a.get("provider_name", "huaweicloud") == "huaweicloud"
    ]
    if not agencies or not agencies[0].get("agency_name"):
        raise DeploymentFailed("The stack names no agency for provider huaweicloud.")
    return iam.assume_service_agency(store, stack["domain_id"], agencies[0]["agency_name"])


def _variables(ctx: StackContext, template: dict, stack) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, declaration in (template.get("variable") or {}).items():
        if isinstance(declaration, dict) and "default" in declaration:
            values[name] = declaration["default"]
    values.update(parse_vars_body(stack["vars_body"] if "vars_body" in stack.keys() else None))
    for entry in json.loads(stack["vars_structure"]):
        key, value = entry.get("var_key"), entry.get("var_value")
        kms_info = ((entry.get("encryption") or {}).get("kms")) or {}
        if kms_info:
            iam.authorize(ctx.store, ctx.caller, "kms:dek:decrypt")
            data_key = kms.open_data_key(
                ctx.store,
                ctx.caller.domain_id,
                kms_info.get("id", ""),
                kms_info.get("cipher_text", ""),
            )
            try:
                sealed = base64.b64decode(value or "")
                value = AESGCM(data_key).decrypt(sealed[:12], sealed[12:], None).decode("utf-8")
            except (ValueError, InvalidTag):
                raise DeploymentFailed(
                    f"Variable {key} cannot be decrypted with its data key."
                ) from None
        values[key] = value
    return values


def _lookup(
    created: dict[tuple[str, str], dict[int, dict]], variables: dict[str, Any], index: int | None
) -> Callable[[str], Any]:
    from .template import RESOURCE_REFERENCE

    def lookup(expression: str) -> Any:
        if expression.startswith("var."):
            name = expression[4:]
            if name not in variables:
                raise DeploymentFailed(f"Variable {name} has no value.")
            return variables[name]
        if expression == "count.index":
            return index or 0
        match = RESOURCE_REFERENCE.match(expression)
        if not match:
            raise DeploymentFailed(f"Unsupported expression ${{{expression}}}.")
        instances = created.get((match["type"], match["name"]), {})
        attributes = instances.get(int(match["index"] or 0))
        if attributes is None or match["attr"] not in attributes:
            raise DeploymentFailed(f"${{{expression}}} has no value.")
        return attributes[match["attr"]]

    return lookup


def deploy(store: Store, settings: Settings, stack_id: str) -> None:
    with _lock_for(stack_id):
        stack = store.one("SELECT * FROM stacks WHERE id = ?", stack_id)
        if stack is None or stack["status"] != DEPLOYMENT_IN_PROGRESS:
            return
        started = time.monotonic()
        position: int | None = None
        try:
            caller = _assume(store, stack)
            ctx = StackContext(store, settings, stack_id, caller, deploying=True)
            template = json.loads(stack["template"])
            variables = _variables(ctx, template, stack)
            created: dict[tuple[str, str], dict[int, dict]] = {}
            for position, planned in enumerate(plan(template)):
                if ctx.status() != DEPLOYMENT_IN_PROGRESS:
                    return
                resource_started = time.monotonic()
                store.run(
                    "INSERT INTO stack_resources (stack_id, position, logical_type, logical_name, index_key,"
                    " status, attributes) VALUES (?, ?, ?, ?, ?, 'CREATION_IN_PROGRESS', '{}')",
                    stack_id, position, planned.type, planned.name,
                    None if planned.index is None else str(planned.index),
                )  # fmt: skip
                row = _resource_row(store, stack_id, position)
                _event(store, stack_id, "CREATION_IN_PROGRESS", f"Creating {planned.label}.", row)
                attributes = _create(ctx, planned, created, variables, position)
                if attributes is None:  # the stack is being deleted meanwhile
                    return
                created.setdefault((planned.type, planned.name), {})[planned.index or 0] = (
                    attributes
                )
                row = _set_resource(
                    store,
                    stack_id,
                    position,
                    status="CREATION_COMPLETE",
                    attributes=json.dumps(attributes),
                )
                elapsed = int(time.monotonic() - resource_started)
                _event(
                    store, stack_id, "CREATION_COMPLETE", f"Created {planned.label}.", row, elapsed
                )
                time.sleep(settings.step_seconds)
            outputs = []
            for name, output in (template.get("output") or {}).items():
                value = resolve(output.get("value"), _lookup(created, variables, None))
                outputs.append({
                    "name": name,
                    "value": value if isinstance(value, str) else json.dumps(value),
                    "type": "string" if isinstance(value, str) else "json",
                    "description": output.get("description", ""),
                    "sensitive": bool(output.get("sensitive")),
                })  # fmt: skip
            store.run("UPDATE stacks SET outputs = ? WHERE id = ?", json.dumps(outputs), stack_id)
            if _set_stack(store, stack_id, DEPLOYMENT_COMPLETE, only_if=DEPLOYMENT_IN_PROGRESS):
                _event(
                    store,
                    stack_id,
                    "LOG",
                    f"Deployment complete in {int(time.monotonic() - started)} s.",
                )
        except DeploymentStopped:
            return
        except (CloudError, DeploymentFailed, TemplateError) as error:
            message = error.message if isinstance(error, CloudError) else str(error)
            row = None
            if position is not None and store.one(
                "SELECT 1 FROM stack_resources WHERE stack_id = ? AND position = ?",
                stack_id,
                position,
            ):
                row = _resource_row(store, stack_id, position)
                if row["status"] == "CREATION_IN_PROGRESS":
                    label = f"{row['logical_type']}.{row['logical_name']}"
                    message = f"{label}: {message}"
                    row = _set_resource(
                        store, stack_id, position, status="CREATION_FAILED", status_message=message
                    )
                    _event(store, stack_id, "CREATION_FAILED", message, row)
            if _set_stack(
                store, stack_id, DEPLOYMENT_FAILED, message, only_if=DEPLOYMENT_IN_PROGRESS
            ):
                _event(store, stack_id, "ERROR", f"Deployment failed: {message}")


def _create(ctx: StackContext, planned: Planned, created, variables, position: int) -> dict | None:
    args = resolve(planned.args, _lookup(created, variables, planned.index))
    if planned.index is not None and isinstance(args.get("name"), str):
        args["name"] = f"{args['name']}-{planned.index + 1}"

    def record(physical_id: str, physical_name: str) -> None:
        _set_resource(
            ctx.store, ctx.stack_id, position, physical_id=physical_id, physical_name=physical_name
        )

    return CREATORS[planned.type](ctx, args, record)


# -- deletion --------------------------------------------------------------------------


def delete(store: Store, settings: Settings, stack_id: str) -> None:
    with _lock_for(stack_id):
        stack = store.one("SELECT * FROM stacks WHERE id = ?", stack_id)
        if stack is None or stack["status"] != DELETION_IN_PROGRESS:
            return
        try:
            ctx = StackContext(store, settings, stack_id, _assume(store, stack))
        except (CloudError, DeploymentFailed) as error:
            message = error.message if isinstance(error, CloudError) else str(error)
            _set_stack(store, stack_id, DELETION_FAILED, message)
            _event(store, stack_id, "ERROR", f"Deletion failed: {message}")
            return
        rows = store.all(
            "SELECT * FROM stack_resources WHERE stack_id = ? AND status != 'DELETION_COMPLETE'"
            " ORDER BY position DESC",
            stack_id,
        )
        for resource in map(dict, rows):
            label = f"{resource['logical_type']}.{resource['logical_name']}"
            if not resource["physical_id"]:  # never created: nothing to delete
                _set_resource(store, stack_id, resource["position"], status="DELETION_COMPLETE")
                continue
            row = _set_resource(
                store, stack_id, resource["position"], status="DELETION_IN_PROGRESS"
            )
            _event(store, stack_id, "DELETION_IN_PROGRESS", f"Deleting {label}.", row)
            try:
                DELETERS[resource["logical_type"]](
                    ctx, resource["physical_id"], json.loads(resource["attributes"])
                )
            except CloudError as error:
                if error.status != 404:  # already gone is what we wanted
                    _deletion_failed(store, stack_id, resource, f"{label}: {error.message}")
                    return
            except DeploymentFailed as error:
                _deletion_failed(store, stack_id, resource, f"{label}: {error}")
                return
            row = _set_resource(store, stack_id, resource["position"], status="DELETION_COMPLETE")
            _event(store, stack_id, "DELETION_COMPLETE", f"Deleted {label}.", row)
            time.sleep(settings.step_seconds / 2)
        with store.transaction() as db:
            db.execute("DELETE FROM stack_events WHERE stack_id = ?", (stack_id,))
            db.execute("DELETE FROM stack_resources WHERE stack_id = ?", (stack_id,))
            db.execute("DELETE FROM stacks WHERE id = ?", (stack_id,))


def _deletion_failed(store: Store, stack_id: str, resource: dict, message: str) -> None:
    row = _set_resource(
        store, stack_id, resource["position"], status="DELETION_FAILED", status_message=message
    )
    _event(store, stack_id, "DELETION_FAILED", message, row)
    _set_stack(store, stack_id, DELETION_FAILED, message)


def _spawn(
    target: Callable[[Store, Settings, str], None], store: Store, settings: Settings, stack_id: str
) -> None:
    threading.Thread(
        target=target, args=(store, settings, stack_id), daemon=True, name=f"stack-{stack_id[:8]}"
    ).start()


def resume_after_restart(store: Store, settings: Settings) -> None:
    """A deployment the simulator was running when it stopped has failed; a deletion
    goes on."""
    for row in store.all("SELECT id FROM stacks WHERE status = ?", DEPLOYMENT_IN_PROGRESS):
        _set_stack(
            store,
            row["id"],
            DEPLOYMENT_FAILED,
            "The stack service restarted during the deployment.",
        )
    for row in store.all("SELECT id FROM stacks WHERE status = ?", DELETION_IN_PROGRESS):
        _spawn(delete, store, settings, row["id"])


# -- the API ---------------------------------------------------------------------------


def _client_request_id(call: Call) -> None:
    require(
        bool(call.headers.get("Client-Request-Id")),
        bad_request(STYLE, "Client-Request-Id header is required.", code="RF.0401"),
    )


def create_stack(call: Call) -> Answer:
    _client_request_id(call)
    name = call.field("stack_name")
    require(
        bool(STACK_NAME.match(name)),
        bad_request(STYLE, "stack_name must match ^[a-zA-Z][a-zA-Z0-9_-]{0,127}$."),
    )
    require(
        not call.body.get("template_uri"),
        bad_request(STYLE, "template_uri is not supported; send template_body."),
    )
    template_body = call.field("template_body")
    try:
        plan(parse(template_body))
    except TemplateError as error:
        raise bad_request(STYLE, str(error)) from None
    stack_id, deployment_id = str(uuid.uuid4()), str(uuid.uuid4())
    now = call.store.now()
    with call.store.transaction() as db:
        if db.execute(
            "SELECT 1 FROM stacks WHERE domain_id = ? AND name = ?", (call.caller.domain_id, name)
        ).fetchone():
            raise conflict(STYLE, f"Stack {name} already exists.", code="RF.0409")
        db.execute(
            "INSERT INTO stacks (id, domain_id, project_id, name, description, status, deployment_id, template,"
            " vars_structure, agencies, outputs, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '[]', ?, ?)",
            (stack_id, call.caller.domain_id, call.caller.project_id, name, call.body.get("description") or "",
             DEPLOYMENT_IN_PROGRESS, deployment_id, template_body,
             json.dumps(call.body.get("vars_structure") or []), json.dumps(call.body.get("agencies") or []), now, now),
        )  # fmt: skip
    _event(
        call.store, stack_id, "LOG", f"Stack {name} created; deployment {deployment_id} started."
    )
    _spawn(deploy, call.store, call.settings, stack_id)
    return 200, {"stack_id": stack_id, "deployment_id": deployment_id}


def _own_stack(call: Call):
    _client_request_id(call)
    row = call.store.one(
        "SELECT * FROM stacks WHERE domain_id = ? AND name = ?",
        call.caller.domain_id,
        call.params["stack_name"],
    )
    wanted = call.query.get("stack_id") or (
        call.body.get("stack_id") if isinstance(call.body, dict) else None
    )
    if row is None or (wanted and wanted != row["id"]):
        raise not_found(STYLE, f"Stack {call.params['stack_name']}", code="RF.0404")
    return row


def stack_summary(row) -> dict:
    return {
        "stack_id": row["id"],
        "stack_name": row["name"],
        "description": row["description"],
        "status": row["status"],
        "status_message": row["status_message"],
        "create_time": iso(row["created_at"], micro=False),
        "update_time": iso(row["updated_at"], micro=False),
    }


def list_stacks(call: Call) -> Answer:
    _client_request_id(call)
    rows = call.store.all(
        "SELECT * FROM stacks WHERE domain_id = ? ORDER BY created_at", call.caller.domain_id
    )
    return 200, {
        "stacks": [stack_summary(r) for r in rows],
        "page_info": {"current_count": len(rows)},
    }


def get_stack_metadata(call: Call) -> Answer:
    row = _own_stack(call)
    vars_structure = [
        {**v, "var_value": None} if (v.get("encryption") or {}).get("kms") else v
        for v in json.loads(row["vars_structure"])
    ]  # a sensitive value is never answered back
    return 200, {
        **stack_summary(row),
        "vars_structure": vars_structure,
        "agencies": json.loads(row["agencies"]),
        "enable_deletion_protection": False,
        "enable_auto_rollback": False,
    }


def list_stack_resources(call: Call) -> Answer:
    row = _own_stack(call)
    resources = []
    for r in call.store.all(
        "SELECT * FROM stack_resources WHERE stack_id = ? ORDER BY position", row["id"]
    ):
        attributes = json.loads(r["attributes"])
        resources.append({
            "physical_resource_id": r["physical_id"],
            "physical_resource_name": r["physical_name"],
            "logical_resource_name": r["logical_name"],
            "logical_resource_type": r["logical_type"],
            "resource_type": r["logical_type"],
            "resource_name": r["logical_name"],
            "index_key": r["index_key"],
            "resource_status": r["status"],
            "status_message": r["status_message"],
            "resource_attributes": [{"key": k, "value": "" if v is None else str(v)} for k, v in attributes.items()],
        })  # fmt: skip
    return 200, {"stack_resources": resources, "page_info": {"current_count": len(resources)}}


def list_stack_outputs(call: Call) -> Answer:
    row = _own_stack(call)
    outputs = json.loads(row["outputs"])
    return 200, {"outputs": outputs, "page_info": {"current_count": len(outputs)}}


def list_stack_events(call: Call) -> Answer:
    row = _own_stack(call)
    events = [
        {
            "time": iso(e["at"]),
            "event_type": e["event_type"],
            "event_message": e["message"],
            "resource_type": e["resource_type"],
            "resource_name": e["resource_name"],
            "resource_id_key": "id" if e["physical_id"] else None,
            "resource_id_value": e["physical_id"],
            "resource_key": e["resource_name"],
            "elapsed_seconds": e["elapsed_seconds"],
        }
        for e in call.store.all(
            "SELECT * FROM stack_events WHERE stack_id = ? ORDER BY seq", row["id"]
        )
    ]
    return 200, {"stack_events": events, "page_info": {"current_count": len(events)}}


def update_stack(call: Call) -> Answer:
    row = _own_stack(call)
    require(
        row["status"] not in (DEPLOYMENT_IN_PROGRESS, DELETION_IN_PROGRESS),
        conflict(STYLE, f"Stack is {row['status']}.", code="RF.0409"),
    )
    agencies = call.body.get("agencies")
    call.store.run(
        "UPDATE stacks SET description = ?, agencies = ?, updated_at = ? WHERE id = ?",
        call.body.get("description", row["description"]),
        json.dumps(agencies) if agencies is not None else row["agencies"],
        call.store.now(),
        row["id"],
    )
    return 200, {}


def delete_stack(call: Call) -> Answer:
    """Also while deploying (the deployment stops at its next step) and after a failed
    deployment or deletion; a second DeleteStack while one runs changes nothing."""
    row = _own_stack(call)
    if row["status"] != DELETION_IN_PROGRESS:
        _set_stack(call.store, row["id"], DELETION_IN_PROGRESS)
        _event(call.store, row["id"], "LOG", "Deletion started.")
        _spawn(delete, call.store, call.settings, row["id"])
    return 204, None


STACK = "/v1/<project_id>/stacks/<stack_name>"
ROUTES = [
    Route("POST", "/v1/<project_id>/stacks", "CreateStack", "rf:stack:createStack", STYLE, create_stack),
    Route("GET", "/v1/<project_id>/stacks", "ListStacks", "rf:stack:listStacks", STYLE, list_stacks),
    Route("GET", STACK + "/metadata", "GetStackMetadata", "rf:stack:getStackMetadata", STYLE, get_stack_metadata),
    Route("GET", STACK + "/resources", "ListStackResources", "rf:stack:listStackResources", STYLE, list_stack_resources),
    Route("GET", STACK + "/outputs", "ListStackOutputs", "rf:stack:listStackOutputs", STYLE, list_stack_outputs),
    Route("GET", STACK + "/events", "ListStackEvents", "rf:stack:listStackEvents", STYLE, list_stack_events),
    Route("PATCH", STACK, "UpdateStack", "rf:stack:updateStack", STYLE, update_stack),
    Route("DELETE", STACK, "DeleteStack", "rf:stack:deleteStack", STYLE, delete_stack),
]  # fmt: skip
