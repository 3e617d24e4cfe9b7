"""Structured logs: one JSON object a line, with service, entrypoint and correlation id.

``Observability`` puts the running worker's service, entrypoint and correlation id into a
context variable (each eventlet greenlet has its own context); ``ContextFilter`` copies
them onto every record. Each service's config.yaml points its LOGGING at this module.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

_current: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "mercato_log_context", default=None
)
_process_service = "-"


def set_process_service(name: str) -> None:
    """Name the service for records logged outside any worker (start-up, relay)."""
    global _process_service
    _process_service = name


def bind(**fields: str) -> contextvars.Token:
    return _current.set(fields)


def unbind(token: contextvars.Token) -> None:
    _current.reset(token)


def current() -> dict[str, str]:
    return _current.get() or {}


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        fields = current()
        record.service = fields.get("service", _process_service)
        record.entrypoint = fields.get("entrypoint", "-")
        record.correlation_id = fields.get("correlation_id", "-")
        return True


class JsonFormatter(_JsonFormatter):
    """python-json-logger with Mercato's fixed keys, in UTC RFC 3339."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault(
            "fmt",
            "%(asctime)s %(levelname)s %(name)s %(service)s %(entrypoint)s "
            "%(correlation_id)s %(message)s",
        )
        kwargs.setdefault(
            "rename_fields", {"asctime": "time", "levelname": "level", "name": "logger"}
        )
        super().__init__(*args, **kwargs)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = dt.datetime.fromtimestamp(record.created, dt.UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# The LOGGING section every config.yaml uses (dictConfig schema).
def logging_config(level: str = "INFO") -> dict[str, Any]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "mercato.logs.ContextFilter"}},
        "formatters": {"json": {"()": "mercato.logs.JsonFormatter"}},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": "json",
                "filters": ["context"],
            }
        },
        "root": {"level": level, "handlers": ["stdout"]},
    }
