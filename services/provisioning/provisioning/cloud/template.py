"""The stack template of a deployment: Terraform JSON, which the stack service (RFS)
reads, with the administrator password a sensitive variable (never in the template).

::

    build_template(spec, image, region="ap-southeast-1")
    # {"terraform": {...}, "provider": {"huaweicloud": {"region": ...}},
    #  "variable": {"admin_password": {"type": "string", "sensitive": true}},
    #  "resource": {"huaweicloud_vpc": {"vpc": {...}}, ...,
    #               "huaweicloud_compute_instance": {"server_1": {...}}},
    #  "output": {"server_1_id": {"value": "${huaweicloud_compute_instance.server_1.id}"}}}

Each server is a resource of its own (``server_1`` … ``server_N``, named
``<server_name>-1`` … when there are several), so that each gets its own EIP and data
disks by plain references.
"""

from __future__ import annotations

from typing import Any

from provisioning.deployments import RECOMMENDED

PASSWORD_VAR = "admin_password"  # noqa: S105  (the variable's name, not a password)
VPC_CIDR, SUBNET_CIDR, GATEWAY_IP = "192.168.0.0/16", "192.168.0.0/24", "192.168.0.1"
VOLUME_TYPE = "SSD"
EIP_TYPE = "5_bgp"


def _ref(resource_type: str, name: str, attribute: str = "id") -> str:
    return "${" + f"{resource_type}.{name}.{attribute}" + "}"


def server_names(spec: dict[str, Any]) -> list[str]:
    count = int(spec.get("count") or 1)
    name = spec["server_name"]
    return [name] if count == 1 else [f"{name}-{index}" for index in range(1, count + 1)]


def _ports(port_range: str | None) -> tuple[int, int] | None:
    if not port_range:
        return None
    low, _, high = port_range.partition("-")
    return int(low), int(high or low)


def build_template(spec: dict[str, Any], image: dict[str, Any], *, region: str) -> dict[str, Any]:
    """The Terraform JSON document for ``spec`` (the order's ``deployment`` without its
    password) of ``image`` (the specification's ``image``) in ``region``."""
    zone = spec.get("availability_zone") or f"{region}a"
    resources: dict[str, dict[str, Any]] = {}
    outputs: dict[str, dict[str, Any]] = {}

    def add(resource_type: str, name: str, args: dict[str, Any]) -> None:
        resources.setdefault(resource_type, {})[name] = args

    base = spec["server_name"]
    if spec.get("vpc_id") is None:
        add("huaweicloud_vpc", "vpc", {"name": f"{base}-vpc", "cidr": VPC_CIDR})
        add(
            "huaweicloud_vpc_subnet",
            "subnet",
            {
                "name": f"{base}-subnet",
                "cidr": SUBNET_CIDR,
                "gateway_ip": GATEWAY_IP,
                "vpc_id": _ref("huaweicloud_vpc", "vpc"),
            },
        )
        network = _ref("huaweicloud_vpc_subnet", "subnet")
        outputs["vpc_id"] = {"value": _ref("huaweicloud_vpc", "vpc")}
        outputs["subnet_id"] = {"value": network}
    else:
        network = spec["subnet_id"]

    if spec.get("security_group", RECOMMENDED) == RECOMMENDED:
        recommended = image["recommended_security_group"]
        add("huaweicloud_networking_secgroup", "secgroup", {"name": recommended["name"]})
        group = _ref("huaweicloud_networking_secgroup", "secgroup")
        for index, rule in enumerate(recommended.get("rules") or [], start=1):
            args: dict[str, Any] = {
                "security_group_id": group,
                "direction": rule["direction"],
                "ethertype": "IPv4",
                "remote_ip_prefix": rule.get("remote_ip_prefix") or "0.0.0.0/0",
            }
            if rule.get("protocol") and rule["protocol"] != "any":
                args["protocol"] = rule["protocol"]
            ports = _ports(rule.get("port_range"))
            if ports is not None:
                args["port_range_min"], args["port_range_max"] = ports
            add("huaweicloud_networking_secgroup_rule", f"rule_{index}", args)
        outputs["security_group_id"] = {"value": group}
    else:
        group = spec["security_group"]

    system_disk = max(
        int(spec.get("system_disk_gb") or 0), int(image.get("min_system_disk_gb") or 40)
    )
    for number, name in enumerate(server_names(spec), start=1):
        server = f"server_{number}"
        args = {
            "name": name,
            "image_id": image["image_id"],
            "flavor_id": spec["flavor_id"],
            "admin_pass": "${var." + PASSWORD_VAR + "}",
            "security_group_ids": [group],
            "availability_zone": zone,
            "system_disk_type": VOLUME_TYPE,
            "system_disk_size": system_disk,
            "network": [{"uuid": network}],
        }
        if spec.get("eip"):
            eip = f"eip_{number}"
            add(
                "huaweicloud_vpc_eip",
                eip,
                {
                    "publicip": {"type": EIP_TYPE},
                    "bandwidth": {
                        "name": f"{name}-bandwidth",
                        "size": int(spec["eip"]["bandwidth_mbps"]),
                        "share_type": "PER",
                        "charge_mode": "traffic",
                    },
                },
            )
            args["eip_id"] = _ref("huaweicloud_vpc_eip", eip)
            outputs[f"{server}_public_ip"] = {"value": _ref("huaweicloud_vpc_eip", eip, "address")}
        volumes = []
        for disk_number, disk in enumerate(spec.get("data_disks") or [], start=1):
            volume = f"data_{number}_{disk_number}"
            add(
                "huaweicloud_evs_volume",
                volume,
                {
                    "name": f"{name}-data-{disk_number}",
                    "size": int(disk["size_gb"]),
                    "volume_type": VOLUME_TYPE,
                    "availability_zone": zone,
                },
            )
            volumes.append(_ref("huaweicloud_evs_volume", volume))
        if volumes:
            args["data_disks"] = {"volume_ids": volumes}
        add("huaweicloud_compute_instance", server, args)
        outputs[f"{server}_id"] = {"value": _ref("huaweicloud_compute_instance", server)}
        outputs[f"{server}_private_ip"] = {
            "value": _ref("huaweicloud_compute_instance", server, "access_ip_v4")
        }

    return {
        "terraform": {
            "required_providers": {
                "huaweicloud": {"source": "huawei.com/provider/huaweicloud", "version": ">=1.40.0"}
            }
        },
        "provider": {"huaweicloud": {"region": region}},
        "variable": {PASSWORD_VAR: {"type": "string", "sensitive": True}},
        "resource": resources,
        "output": outputs,
    }
