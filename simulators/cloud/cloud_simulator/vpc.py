"""VPC: networks, subnets, security groups and their rules, and quotas."""

from __future__ import annotations

import ipaddress
import uuid

from . import quotas
from .admin import account_quotas
from .errors import bad_request, conflict, not_found
from .iam import iso
from .routing import Answer, Call, Route, require

STYLE = "vpc"


def _cidr(call: Call, value: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(value, strict=True)
    except ValueError:
        raise bad_request(STYLE, f"Invalid CIDR {value}.", code="VPC.0003") from None


def _own(call: Call, kind: str, key: str, what: str) -> dict:
    resource = call.store.resource(call.caller.domain_id, kind, call.params[key])
    if resource is None:
        raise not_found(STYLE, what)
    return resource


# -- VPCs ------------------------------------------------------------------------------


def vpc_body(vpc: dict) -> dict:
    return {
        "id": vpc["id"],
        "name": vpc["name"],
        "cidr": vpc["data"]["cidr"],
        "description": vpc["data"].get("description", ""),
        "status": vpc["status"],
        "routes": [],
        "enterprise_project_id": "0",
        "created_at": vpc["data"]["created_at"],
        "updated_at": vpc["data"]["created_at"],
    }


def create_vpc(call: Call) -> Answer:
    name = call.field("vpc", "name", required=False, default="vpc")
    cidr = str(_cidr(call, call.field("vpc", "cidr", required=False, default="192.168.0.0/16")))
    vpc_id = str(uuid.uuid4())
    with call.store.lock:
        quotas.require_room(call.store, call.caller.domain_id, STYLE, {"vpcs": 1})
        call.store.insert_resource(
            vpc_id, call.caller.domain_id, "vpc", name, "OK",
            {"cidr": cidr, "description": call.field("vpc", "description", required=False, default=""),
             "created_at": iso(call.store.now(), micro=False)},
        )  # fmt: skip
    return 200, {"vpc": vpc_body(call.store.created(call.caller.domain_id, "vpc", vpc_id))}


def list_vpcs(call: Call) -> Answer:
    vpcs = call.store.resources(call.caller.domain_id, "vpc")
    return 200, {"vpcs": [vpc_body(v) for v in vpcs]}


def show_vpc(call: Call) -> Answer:
    return 200, {"vpc": vpc_body(_own(call, "vpc", "vpc_id", "VPC"))}


def delete_vpc(call: Call) -> Answer:
    with call.store.lock:
        vpc = _own(call, "vpc", "vpc_id", "VPC")
        in_use = [
            s
            for s in call.store.resources(call.caller.domain_id, "subnet")
            if s["data"]["vpc_id"] == vpc["id"]
        ]
        require(not in_use, conflict(STYLE, "The VPC still has subnets.", code="VPC.0015"))
        call.store.delete_resource(vpc["id"])
    return 204, None


# -- subnets ---------------------------------------------------------------------------


def subnet_body(subnet: dict) -> dict:
    data = subnet["data"]
    return {
        "id": subnet["id"],
        "name": subnet["name"],
        "description": "",
        "cidr": data["cidr"],
        "gateway_ip": data["gateway_ip"],
        "vpc_id": data["vpc_id"],
        "status": subnet["status"],
        "dhcp_enable": True,
        "ipv6_enable": False,
        "primary_dns": "100.125.1.250",
        "secondary_dns": "100.125.21.250",
        "dnsList": ["100.125.1.250", "100.125.21.250"],
        "availability_zone": data.get("availability_zone"),
        "neutron_network_id": subnet["id"],
        "neutron_subnet_id": data["neutron_subnet_id"],
        "extra_dhcp_opts": [],
        "scope": "center",
        "created_at": data["created_at"],
        "updated_at": data["created_at"],
    }


def create_subnet(call: Call) -> Answer:
    name = call.field("subnet", "name")
    cidr = _cidr(call, call.field("subnet", "cidr"))
    gateway = call.field("subnet", "gateway_ip")
    vpc_id = call.field("subnet", "vpc_id")
    domain = call.caller.domain_id
    vpc = call.store.resource(domain, "vpc", vpc_id)
    require(vpc is not None, bad_request(STYLE, "The VPC does not exist.", code="VPC.0012"))
    assert vpc is not None
    require(
        cidr.subnet_of(ipaddress.IPv4Network(vpc["data"]["cidr"])),
        bad_request(STYLE, "The subnet's CIDR is not within the VPC's.", code="VPC.0004"),
    )
    try:
        in_subnet = ipaddress.IPv4Address(gateway) in cidr
    except ValueError:
        in_subnet = False
    require(in_subnet, bad_request(STYLE, "gateway_ip is not in the subnet.", code="VPC.0005"))
    subnet_id = str(uuid.uuid4())
    with call.store.lock:
        quotas.require_room(call.store, domain, STYLE, {"subnets": 1})
        call.store.insert_resource(
            subnet_id, domain, "subnet", name, "ACTIVE",
            {"cidr": str(cidr), "gateway_ip": gateway, "vpc_id": vpc_id,
             "availability_zone": call.field("subnet", "availability_zone", required=False),
             "neutron_subnet_id": str(uuid.uuid4()), "created_at": iso(call.store.now(), micro=False)},
        )  # fmt: skip
    return 200, {"subnet": subnet_body(call.store.created(domain, "subnet", subnet_id))}


def list_subnets(call: Call) -> Answer:
    subnets = call.store.resources(call.caller.domain_id, "subnet")
    vpc_id = call.query.get("vpc_id")
    return 200, {
        "subnets": [subnet_body(s) for s in subnets if not vpc_id or s["data"]["vpc_id"] == vpc_id]
    }


def show_subnet(call: Call) -> Answer:
    return 200, {"subnet": subnet_body(_own(call, "subnet", "subnet_id", "Subnet"))}


def delete_subnet(call: Call) -> Answer:
    with call.store.lock:
        subnet = _own(call, "subnet", "subnet_id", "Subnet")
        require(subnet["data"]["vpc_id"] == call.params["vpc_id"], not_found(STYLE, "Subnet"))
        in_use = [
            s
            for s in call.store.resources(call.caller.domain_id, "server")
            if s["data"]["subnet_id"] == subnet["id"]
        ]
        require(not in_use, conflict(STYLE, "The subnet still has servers.", code="VPC.0016"))
        call.store.delete_resource(subnet["id"])
    return 204, None


# -- security groups and rules ---------------------------------------------------------


def rule_body(rule: dict) -> dict:
    return {"id": rule["id"], "description": "", **rule["data"]}


def group_body(call: Call, group: dict) -> dict:
    rules = [
        rule_body(r)
        for r in call.store.resources(call.caller.domain_id, "security_group_rule")
        if r["data"]["security_group_id"] == group["id"]
    ]
    return {
        "id": group["id"],
        "name": group["name"],
        "description": "",
        "vpc_id": group["data"].get("vpc_id"),
        "enterprise_project_id": "0",
        "security_group_rules": rules,
    }


def create_security_group(call: Call) -> Answer:
    name = call.field("security_group", "name")
    group_id = str(uuid.uuid4())
    with call.store.lock:
        quotas.require_room(call.store, call.caller.domain_id, STYLE, {"security_groups": 1})
        call.store.insert_resource(
            group_id, call.caller.domain_id, "security_group", name, "ACTIVE",
            {"vpc_id": call.field("security_group", "vpc_id", required=False)},
        )  # fmt: skip
    group = call.store.created(call.caller.domain_id, "security_group", group_id)
    return 200, {"security_group": group_body(call, group)}


def list_security_groups(call: Call) -> Answer:
    groups = call.store.resources(call.caller.domain_id, "security_group")
    return 200, {"security_groups": [group_body(call, g) for g in groups]}


def show_security_group(call: Call) -> Answer:
    group = _own(call, "security_group", "security_group_id", "Security group")
    return 200, {"security_group": group_body(call, group)}


def delete_security_group(call: Call) -> Answer:
    domain = call.caller.domain_id
    with call.store.lock:
        group = _own(call, "security_group", "security_group_id", "Security group")
        in_use = [
            s
            for s in call.store.resources(domain, "server")
            if group["id"] in s["data"]["security_group_ids"]
        ]
        require(
            not in_use,
            conflict(STYLE, "The security group is in use by a server.", code="VPC.0610"),
        )
        for rule in call.store.resources(domain, "security_group_rule"):
            if rule["data"]["security_group_id"] == group["id"]:
                call.store.delete_resource(rule["id"])
        call.store.delete_resource(group["id"])
    return 204, None


def create_security_group_rule(call: Call) -> Answer:
    group_id = call.field("security_group_rule", "security_group_id")
    direction = call.field("security_group_rule", "direction")
    require(
        direction in ("ingress", "egress"),
        bad_request(STYLE, "direction must be ingress or egress."),
    )
    group = call.store.resource(call.caller.domain_id, "security_group", group_id)
    require(
        group is not None, bad_request(STYLE, "The security group does not exist.", code="VPC.0601")
    )
    option = call.body["security_group_rule"]
    data = {
        "security_group_id": group_id,
        "direction": direction,
        "ethertype": option.get("ethertype") or "IPv4",
        "protocol": option.get("protocol"),
        "port_range_min": option.get("port_range_min"),
        "port_range_max": option.get("port_range_max"),
        "remote_ip_prefix": option.get("remote_ip_prefix"),
        "remote_group_id": option.get("remote_group_id"),
    }
    rule_id = str(uuid.uuid4())
    call.store.insert_resource(
        rule_id, call.caller.domain_id, "security_group_rule", "", "ACTIVE", data
    )
    return 200, {"security_group_rule": rule_body({"id": rule_id, "data": data})}


# -- quotas ----------------------------------------------------------------------------

QUOTA_TYPES = {  # ListQuota's type -> the simulator's quota name
    "vpc": "vpcs",
    "subnet": "subnets",
    "securityGroup": "security_groups",
    "publicIp": "public_ips",
}


def show_quota(call: Call) -> Answer:
    limits = account_quotas(call.store, call.caller.domain_id)
    used = quotas.usage(call.store, call.caller.domain_id)
    wanted = call.query.get("type")
    resources = [
        {"type": kind, "used": used[name], "quota": limits[name], "min": 0}
        for kind, name in QUOTA_TYPES.items()
        if not wanted or wanted == kind
    ]
    return 200, {"quotas": {"resources": resources}}


ROUTES = [
    Route("POST", "/v1/<project_id>/vpcs", "CreateVpc", "vpc:networks:create", STYLE, create_vpc),
    Route("GET", "/v1/<project_id>/vpcs", "ListVpcs", "vpc:networks:get", STYLE, list_vpcs),
    Route("GET", "/v1/<project_id>/vpcs/<vpc_id>", "ShowVpc", "vpc:networks:get", STYLE, show_vpc),
    Route("DELETE", "/v1/<project_id>/vpcs/<vpc_id>", "DeleteVpc", "vpc:networks:delete", STYLE, delete_vpc),
    Route("POST", "/v1/<project_id>/subnets", "CreateSubnet", "vpc:subnets:create", STYLE, create_subnet),
    Route("GET", "/v1/<project_id>/subnets", "ListSubnets", "vpc:subnets:get", STYLE, list_subnets),
    Route("GET", "/v1/<project_id>/subnets/<subnet_id>", "ShowSubnet", "vpc:subnets:get", STYLE, show_subnet),
    Route("DELETE", "/v1/<project_id>/vpcs/<vpc_id>/subnets/<subnet_id>", "DeleteSubnet", "vpc:subnets:delete", STYLE, delete_subnet),
    Route("POST", "/v1/<project_id>/security-groups", "CreateSecurityGroup", "vpc:securityGroups:create", STYLE, create_security_group),
    Route("GET", "/v1/<project_id>/security-groups", "ListSecurityGroups", "vpc:securityGroups:get", STYLE, list_security_groups),
    Route("GET", "/v1/<project_id>/security-groups/<security_group_id>", "ShowSecurityGroup", "vpc:securityGroups:get", STYLE, show_security_group),
    Route("DELETE", "/v1/<project_id>/security-groups/<security_group_id>", "DeleteSecurityGroup", "vpc:securityGroups:delete", STYLE, delete_security_group),
    Route("POST", "/v1/<project_id>/security-group-rules", "CreateSecurityGroupRule", "vpc:securityGroupRules:create", STYLE, create_security_group_rule),
    Route("GET", "/v1/<project_id>/quotas", "ShowQuota (ListQuota)", "vpc:quotas:list", STYLE, show_quota),
]  # fmt: skip
