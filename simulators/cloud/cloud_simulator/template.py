"""The stack service's templates: Terraform JSON with the resource types below,
references ``${TYPE.NAME.ATTR}`` / ``${TYPE.NAME[i].ATTR}`` / ``${var.NAME}`` /
``${count.index}``, and ``count`` on compute instances.

``plan`` orders the resources so each comes after everything it references (ties
broken by a natural order: network first, servers last), which is also the reverse of
the order they are deleted in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# The supported resource types, in the order ties are broken.
RESOURCE_TYPES = (
    "huaweicloud_vpc",
    "huaweicloud_vpc_subnet",
    "huaweicloud_networking_secgroup",
    "huaweicloud_networking_secgroup_rule",
    "huaweicloud_vpc_eip",
    "huaweicloud_evs_volume",
    "huaweicloud_compute_instance",
)
COUNTABLE = ("huaweicloud_compute_instance",)
REFERENCE = re.compile(r"\$\{([^}]*)\}")
RESOURCE_REFERENCE = re.compile(
    r"^(?P<type>huaweicloud_[a-z_]+)\.(?P<name>[A-Za-z0-9_-]+)(?:\[(?P<index>\d+)\])?\.(?P<attr>[A-Za-z0-9_]+)$"
)


class TemplateError(ValueError):
    """A template the stack service cannot deploy (the words say why)."""


@dataclass
class Planned:
    type: str
    name: str
    args: dict
    index: int | None = None
    depends: set[tuple[str, str]] = field(default_factory=set)

    @property
    def label(self) -> str:
        suffix = f"[{self.index}]" if self.index is not None else ""
        return f"{self.type}.{self.name}{suffix}"


def parse(template_body: str) -> dict:
    try:
        template = json.loads(template_body)
    except (TypeError, ValueError):
        raise TemplateError(
            "template_body is not JSON (only Terraform JSON is supported)."
        ) from None
    if not isinstance(template, dict) or not isinstance(template.get("resource"), dict):
        raise TemplateError("The template has no resource block.")
    for resource_type, named in template["resource"].items():
        if resource_type not in RESOURCE_TYPES:
            raise TemplateError(f"Resource type {resource_type} is not supported.")
        if not isinstance(named, dict):
            raise TemplateError(f"resource.{resource_type} must be an object of named resources.")
    return template


def references(value: Any) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    if isinstance(value, str):
        for expression in REFERENCE.findall(value):
            match = RESOURCE_REFERENCE.match(expression.strip())
            if match:
                found.add((match["type"], match["name"]))
    elif isinstance(value, dict):
        for item in value.values():
            found |= references(item)
    elif isinstance(value, list):
        for item in value:
            found |= references(item)
    return found


def plan(template: dict) -> list[Planned]:
    declared: list[Planned] = []
    for resource_type, named in template["resource"].items():
        for name, args in named.items():
            if not isinstance(args, dict):
                raise TemplateError(f"{resource_type}.{name} must be an object.")
            declared.append(Planned(resource_type, name, dict(args), depends=references(args)))
    keys = {(p.type, p.name) for p in declared}
    for planned in declared:
        missing = planned.depends - keys
        if missing:
            ref = sorted(missing)[0]
            raise TemplateError(
                f"{planned.label} references {ref[0]}.{ref[1]}, which is not declared."
            )
    ordered: list[Planned] = []
    done: set[tuple[str, str]] = set()
    pending = sorted(
        enumerate(declared), key=lambda item: (RESOURCE_TYPES.index(item[1].type), item[0])
    )
    while pending:
        ready = next(((i, p) for i, p in pending if p.depends <= done), None)
        if ready is None:
            raise TemplateError("The template's references form a cycle.")
        pending.remove(ready)
        ordered.append(ready[1])
        done.add((ready[1].type, ready[1].name))
    expanded: list[Planned] = []
    for planned in ordered:
        count = planned.args.pop("count", None)
        if count is None:
            expanded.append(planned)
            continue
        if planned.type not in COUNTABLE:
            raise TemplateError(f"count is supported on compute instances only ({planned.label}).")
        try:
            number = int(count)
        except (TypeError, ValueError):
            raise TemplateError(f"{planned.label}: count must be a number.") from None
        for index in range(number):
            expanded.append(
                Planned(planned.type, planned.name, dict(planned.args), index, planned.depends)
            )
    return expanded


def resolve(value: Any, lookup: Callable[[str], Any]) -> Any:
    """``value`` with every ``${...}`` replaced; a string that is one reference becomes
    the referenced value itself (a list stays a list)."""
    if isinstance(value, str):
        whole = REFERENCE.fullmatch(value.strip())
        if whole:
            return lookup(whole.group(1).strip())
        return REFERENCE.sub(lambda m: str(lookup(m.group(1).strip())), value)
    if isinstance(value, dict):
        return {k: resolve(v, lookup) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, lookup) for v in value]
    return value


def parse_vars_body(text: str | None) -> dict[str, Any]:
    """``vars_body`` in its simplest tfvars form: ``name = "value"`` or ``name = 3``."""
    values: dict[str, Any] = {}
    for line in (text or "").splitlines():
        key, sep, raw = line.partition("=")
        if not sep or not key.strip() or key.strip().startswith("#"):
            continue
        raw = raw.strip()
        try:
            values[key.strip()] = json.loads(raw)
        except ValueError:
            values[key.strip()] = raw.strip('"')
    return values
