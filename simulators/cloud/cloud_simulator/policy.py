"""IAM policy 1.1 evaluation, as the cloud applies it to temporary credentials.

A statement matches an action when one of its ``Action`` patterns matches with ``*``
and ``?`` wildcards; the service part (before the first ``:``) is compared without
case, the rest as written. An explicit Deny wins over any Allow; no match is a deny.
``Condition`` and ``Resource`` are not evaluated (Mercato's policies use neither).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Decision:
    allowed: bool
    statement: dict | None  # the statement that decided, None when nothing matched


@lru_cache(maxsize=1024)
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(
        "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in text) + r"\Z"
    )


def action_matches(pattern: str, action: str) -> bool:
    if ":" not in pattern:  # "*" alone: every action of every service
        return bool(_pattern(pattern.lower()).match(action.lower()))
    p_service, _, p_rest = pattern.partition(":")
    a_service, _, a_rest = action.partition(":")
    return bool(
        _pattern(p_service.lower()).match(a_service.lower()) and _pattern(p_rest).match(a_rest)
    )


def _statements(documents: Iterable[dict]) -> Iterable[dict]:
    for document in documents:
        for statement in document.get("Statement") or []:
            if isinstance(statement, dict):
                yield statement


def evaluate(documents: Iterable[dict], action: str) -> Decision:
    allow: dict | None = None
    for statement in _statements(documents):
        actions = statement.get("Action") or []
        if isinstance(actions, str):
            actions = [actions]
        if not any(action_matches(pattern, action) for pattern in actions):
            continue
        if str(statement.get("Effect", "")).lower() == "deny":
            return Decision(False, statement)
        if str(statement.get("Effect", "")).lower() == "allow" and allow is None:
            allow = statement
    return Decision(allow is not None, allow)
