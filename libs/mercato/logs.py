"""Logs with service, entrypoint and correlation id on every line.

``Observability`` puts the running worker's service, entrypoint and correlation id into a
context variable (each eventlet greenlet has its own context); ``ContextFilter`` copies
them onto every record. Each service's config.yaml points its LOGGING at this module.

Two formats, chosen by ``LOG_FORMAT`` (``formatter``): ``json``, one JSON object a line
for a log collector, and ``text``, a short line a person reads in a terminal
(``INFO  orders [req-42] rpc pay_order: success in 3.1 ms``; ``make run`` puts the time
and the process's name in front of each line).
``auto``, the default, is text when the output is a terminal and JSON otherwise, so a
container's logs are JSON; ``make run`` asks for text when it runs in a terminal.

A rejection the contract expects (a 400, 401, 403, 404, 409, 422, 429: any
``mercato.errors`` class but ``ServiceUnavailable``, or an error an entrypoint declares
in ``expected_exceptions``) is one INFO line with no traceback
(``rejected gateway.sign_in: Unauthenticated: wrong email or password``): nameko would
log it as a WARNING with the whole traceback. ``Rejections`` rewrites those records;
every process installs it when its service is named (``set_process_service``). A
traceback in the logs means a bug or an outage, nothing else.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import sys
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

_current: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "mercato_log_context", default=None
)
_process_service = "-"


def set_process_service(name: str) -> None:
    """Name the service for records logged outside any worker (start-up, relay), and
    have its entrypoints' rejections logged as one line (``Rejections``)."""
    global _process_service
    _process_service = name
    quiet_rejections()


# what nameko's container logs when an entrypoint raises (nameko/containers.py)
_EXPECTED_MESSAGE = "(expected) error handling worker %s: %s"
_ERROR_MESSAGE = "error handling worker %s: %s"
CONTAINER_LOGGER = "nameko.containers"


class Rejections(logging.Filter):
    """On nameko's container logger: an entrypoint's expected error, or any Mercato
    error a caller is meant to see, becomes one INFO line without a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg not in (_EXPECTED_MESSAGE, _ERROR_MESSAGE) or not isinstance(
            record.args, tuple
        ):
            return True
        worker_ctx, exc = record.args
        if record.msg == _ERROR_MESSAGE and not _is_rejection(exc):
            return True  # a bug: the traceback is what it needs
        entrypoint = getattr(worker_ctx, "entrypoint", None)
        where = ".".join(
            part
            for part in (
                getattr(worker_ctx, "service_name", None),
                getattr(entrypoint, "method_name", None),
            )
            if part
        )
        record.msg = "rejected %s: %s: %s"
        record.args = (where or "-", type(exc).__name__, exc)
        record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        record.exc_info = record.exc_text = record.stack_info = None
        return logging.getLogger(record.name).isEnabledFor(logging.INFO)


def _is_rejection(exc: object) -> bool:
    from mercato.errors import EXPECTED  # errors imports nameko; logs stays light

    return isinstance(exc, EXPECTED)


_REJECTIONS = Rejections()


def quiet_rejections() -> None:
    """Install ``Rejections`` on nameko's container logger (once)."""
    logger = logging.getLogger(CONTAINER_LOGGER)
    if _REJECTIONS not in logger.filters:
        logger.addFilter(_REJECTIONS)


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


class TextFormatter(logging.Formatter):
    """One short line a record: level, service, the request's id, the message."""

    def format(self, record: logging.LogRecord) -> str:
        correlation = getattr(record, "correlation_id", "-")
        request = f" [{correlation}]" if correlation not in (None, "-") else ""
        line = (
            f"{record.levelname:<5} {getattr(record, 'service', '-')}{request} "
            f"{record.getMessage()}"
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


FORMATS = ("auto", "json", "text")


def formatter(format: str = "auto") -> logging.Formatter:
    """The formatter ``LOG_FORMAT`` names: ``json``, ``text``, or ``auto`` (text when
    standard output is a terminal)."""
    chosen = (format or "auto").strip().lower()
    if chosen not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {format!r}")
    if chosen == "auto":
        chosen = "text" if sys.stdout.isatty() else "json"
    return TextFormatter() if chosen == "text" else JsonFormatter()


# The LOGGING section every config.yaml uses (dictConfig schema).
def logging_config(level: str = "INFO", format: str = "auto") -> dict[str, Any]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "mercato.logs.ContextFilter"}},
        "formatters": {"line": {"()": "mercato.logs.formatter", "format": format}},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": "line",
                "filters": ["context"],
            }
        },
        "root": {"level": level, "handlers": ["stdout"]},
    }
