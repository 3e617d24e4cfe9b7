"""IAM policy 1.1 evaluation, as the cloud applies it to a delegated agency's calls.

A policy is ``{"Version": "1.1", "Statement": [{"Effect": "Allow"|"Deny", "Action":
[...]}]}``. A statement matches an action when one of its ``Action`` patterns does:
``*`` stands for any run of characters, ``?`` for exactly one; the service part (before
the first ``:``) compares without regard to case, the rest exactly. An explicit Deny
wins over any Allow; no matching statement means deny::

    evaluate(policy, "rf:stack:createStack")
    # Decision(decision="allow", statement={"Effect": "Allow", "Action": [...]})

iam-agency answers the buyer's simulations with it; provisioning checks every cloud call
against the policy granted before making it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ALLOW, DENY = "allow", "deny"


@dataclass(frozen=True)
class Decision:
    """``decision`` and the statement that decided it (None: nothing matched)."""

    decision: str
    statement: dict[str, Any] | None

    @property
    def allowed(self) -> bool:
        return self.decision == ALLOW


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    service, sep, rest = pattern.partition(":")

    def translate(part: str) -> str:
        return "".join(
            ".*" if char == "*" else "." if char == "?" else re.escape(char) for char in part
        )

    if not sep:  # no service part: the whole pattern, e.g. "*"
        return re.compile(f"(?i:{translate(service)})\\Z", re.DOTALL)
    return re.compile(f"(?i:{translate(service)}):{translate(rest)}\\Z", re.DOTALL)


def action_matches(pattern: str, action: str) -> bool:
    """Whether ``pattern`` (with ``*`` and ``?``) covers ``action``."""
    return _compiled(pattern).match(action) is not None


def _actions(statement: Mapping[str, Any]) -> Iterable[str]:
    actions = statement.get("Action") or []
    return [actions] if isinstance(actions, str) else [str(a) for a in actions]


def evaluate(document: Mapping[str, Any] | None, action: str) -> Decision:
    """The decision of ``document`` on ``action``: the first matching Deny, else the
    first matching Allow, else deny with no statement."""
    allowed: dict[str, Any] | None = None
    for statement in (document or {}).get("Statement") or []:
        if not any(action_matches(pattern, action) for pattern in _actions(statement)):
            continue
        effect = str(statement.get("Effect", "")).lower()
        if effect == DENY:
            return Decision(DENY, dict(statement))
        if effect == ALLOW and allowed is None:
            allowed = dict(statement)
    if allowed is not None:
        return Decision(ALLOW, allowed)
    return Decision(DENY, None)


def allowed_actions(document: Mapping[str, Any] | None) -> set[str]:
    """Every action a document's Allow statements name, as written."""
    return {
        action
        for statement in (document or {}).get("Statement") or []
        if str(statement.get("Effect", "")).lower() == ALLOW
        for action in _actions(statement)
    }
