"""Broker users for event subscribers: they may read Mercato's events and nothing else.

The services share one broker user; a subscriber that held it could publish an RPC
request as any service would. A subscriber gets its own user instead, made through
RabbitMQ's management API (``mercato-create-subscriber --name reports``, and the Helm
chart's subscriber hook), with permissions in Mercato's vhost that allow:

- declaring, binding, reading and deleting only queues named for it: ``reports`` or
  ``reports.<anything>`` (``reports.orders``);
- reading from the event exchanges (``<source>.events``), which is what binding a
  queue to them takes.

Nothing else: no publishing to ``nameko-rpc``, to an event exchange or to the default
exchange (the broker closes the channel, 403 ACCESS_REFUSED), no reading of another
queue, no declaring of anything named otherwise. (RabbitMQ names queues and exchanges
from one set of patterns, so the user could declare an exchange named for it and
publish to it: such an exchange reaches only queues the user itself could bind, its
own.) It declares the event exchanges too (as nameko does), so the subscriber can bind
before a service first publishes. Run it again to change the password or to restore the permissions: it only ever
sets them, and refuses to touch a broker user that is not a subscriber's.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import secrets
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import requests

from mercato import config

_log = logging.getLogger(__name__)

COMMAND = "mercato-create-subscriber"
# the password, when not generated: from this variable (never on the command line)
PASSWORD_ENV = "MERCATO_SUBSCRIBER_PASSWORD"  # noqa: S105 - a variable's name
# the management API, e.g. http://admin:secret@rabbitmq:15672 (default: AMQP_URI's host
# and credentials, port 15672)
MANAGEMENT_URI_ENV = "RABBITMQ_MANAGEMENT_URI"
# how a subscriber's broker user is told from anyone else's (a RabbitMQ user tag)
SUBSCRIBER_TAG = "mercato-subscriber"
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{1,62}$")
# the broker's, nameko's and Mercato's own names: a subscriber named so would overlap them
RESERVED_NAMES = ("amq", "rpc", "evt", "nameko", "guest", "mercato")
EVENT_EXCHANGES = r"[a-z][a-z0-9_]*\.events"
TIMEOUT_SECONDS = 10.0


class SubscriberUserError(RuntimeError):
    """The user could not be made as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Permissions:
    configure: str
    write: str
    read: str

    def as_body(self) -> dict[str, str]:
        return {"configure": self.configure, "write": self.write, "read": self.read}


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise SubscriberUserError(
            f"--name {name!r}: 2 to 63 characters, lower-case letters, digits, `_` and `-`, "
            "starting with a letter (it names the user and prefixes its queues)"
        )
    if name.split("-")[0].split("_")[0] in RESERVED_NAMES:
        raise SubscriberUserError(
            f"--name {name!r}: must not start with {', '.join(RESERVED_NAMES)} "
            "(the broker's, nameko's and Mercato's own names)"
        )
    return name


def permissions_for(name: str) -> Permissions:
    """What the subscriber ``name`` may do in Mercato's vhost (regular expressions over
    queue and exchange names, as RabbitMQ takes them)."""
    own = rf"{re.escape(check_name(name))}(\..+)?"
    return Permissions(configure=f"^{own}$", write=f"^{own}$", read=f"^({own}|{EVENT_EXCHANGES})$")


def queue_names_for(name: str) -> str:
    return f"{name} or {name}.<anything>"


def management_uri_for(amqp_uri: str) -> str:
    """The management API beside the broker of ``amqp_uri``, with its credentials."""
    parts = urlsplit(amqp_uri)
    netloc = f"{parts.hostname or 'localhost'}:15672"
    if parts.username:
        netloc = f"{parts.username}:{parts.password or ''}@{netloc}"
    return f"http://{netloc}"


def vhost_of(amqp_uri: str) -> str:
    path = urlsplit(amqp_uri).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def subscriber_uri(amqp_uri: str, name: str, password: str | None = None) -> str:
    """``amqp_uri`` with the subscriber's user in it (its password masked without one)."""
    parts = urlsplit(amqp_uri)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    secret = quote(password, safe="") if password is not None else "****"
    return urlunsplit((parts.scheme, f"{name}:{secret}@{host}{port}", parts.path, "", ""))


class ManagementApi:
    """The few calls of RabbitMQ's management HTTP API this needs."""

    def __init__(self, uri: str, timeout: float = TIMEOUT_SECONDS) -> None:
        parts = urlsplit(uri)
        self._base = urlunsplit(
            (parts.scheme, f"{parts.hostname}:{parts.port or 15672}", parts.path, "", "")
        ).rstrip("/")
        self._auth = (unquote(parts.username or "guest"), unquote(parts.password or "guest"))
        self._timeout = timeout

    def _call(self, method: str, path: str, body: dict | None = None) -> requests.Response:
        response = requests.request(
            method, f"{self._base}/api/{path}", json=body, auth=self._auth, timeout=self._timeout
        )
        if response.status_code == 401:
            raise SubscriberUserError(
                f"the management API at {self._base} refused the credentials: give an "
                f"administrator's in {MANAGEMENT_URI_ENV} (or --management-uri)"
            )
        return response

    def user(self, name: str) -> dict | None:
        response = self._call("GET", f"users/{quote(name, safe='')}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

    def put_user(self, name: str, password: str) -> None:
        self._call(
            "PUT", f"users/{quote(name, safe='')}", {"password": password, "tags": SUBSCRIBER_TAG}
        ).raise_for_status()

    def put_permissions(self, vhost: str, name: str, permissions: Permissions) -> None:
        path = f"permissions/{quote(vhost, safe='')}/{quote(name, safe='')}"
        response = self._call("PUT", path, permissions.as_body())
        if response.status_code == 400 and "vhost" in response.text.lower():
            raise SubscriberUserError(f"the vhost {vhost!r} does not exist on the broker")
        response.raise_for_status()

    def delete_user(self, name: str) -> None:
        self._call("DELETE", f"users/{quote(name, safe='')}")


def _tags(user: dict) -> list[str]:
    tags = user.get("tags") or []
    return tags if isinstance(tags, list) else [t for t in str(tags).split(",") if t]


def create_subscriber(
    name: str, password: str, *, amqp_uri: str, management_uri: str | None = None
) -> Permissions:
    """Make (or update) the broker user ``name`` for a subscriber in ``amqp_uri``'s
    vhost; answers the permissions it set. Refuses a user that is not a subscriber's
    (the services' own, an administrator)."""
    permissions = permissions_for(name)
    if len(password) < 16:
        raise SubscriberUserError("the password needs at least 16 characters")
    api = ManagementApi(management_uri or management_uri_for(amqp_uri))
    existing = api.user(name)
    if existing is not None and SUBSCRIBER_TAG not in _tags(existing):
        raise SubscriberUserError(
            f"the broker user {name!r} exists and is not a subscriber's (tags: "
            f"{', '.join(_tags(existing)) or 'none'}): choose another name"
        )
    api.put_user(name, password)
    api.put_permissions(vhost_of(amqp_uri), name, permissions)
    declare_event_exchanges(amqp_uri)
    return permissions


def declare_event_exchanges(amqp_uri: str) -> list[str]:
    """Declare every event exchange as nameko does (idempotent): the subscriber may not
    declare one, and may bind its queue before a service first publishes."""
    from kombu import Connection
    from nameko.standalone.events import get_event_exchange  # imports eventlet: only here

    from mercato.contracts import EVENT_CONTRACTS

    sources = sorted(
        {contract.exchange.removesuffix(".events") for contract in EVENT_CONTRACTS.values()}
    )
    with Connection(amqp_uri, connect_timeout=TIMEOUT_SECONDS) as connection:
        channel = connection.channel()
        for source in sources:
            get_event_exchange(source, {})(channel).declare()
    return [f"{source}.events" for source in sources]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=COMMAND,
        description="Create (or update) an event subscriber's own broker user: it may "
        "declare, bind and read only queues named for it, and read from the event "
        "exchanges; it may publish nowhere (docs/events.md, 'Subscribing').",
    )
    parser.add_argument("--name", required=True, help="the user, and the prefix of its queues")
    parser.add_argument(
        "--amqp-uri",
        default=None,
        help=f"Mercato's broker and vhost (default: $AMQP_URI, else {config.DEFAULT_AMQP_URI})",
    )
    parser.add_argument(
        "--management-uri",
        default=None,
        help=f"the management API with an administrator's credentials (default: "
        f"${MANAGEMENT_URI_ENV}, else AMQP_URI's host and credentials on port 15672)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    amqp_uri = args.amqp_uri or os.environ.get(config.AMQP_URI) or config.DEFAULT_AMQP_URI
    management_uri = args.management_uri or os.environ.get(MANAGEMENT_URI_ENV)
    given = os.environ.get(PASSWORD_ENV)
    password = given or secrets.token_urlsafe(24)
    try:
        create_subscriber(args.name, password, amqp_uri=amqp_uri, management_uri=management_uri)
    except SubscriberUserError as exc:
        print(f"{COMMAND}: {exc}", file=sys.stderr)
        return 2
    except requests.RequestException as exc:
        print(f"{COMMAND}: the management API did not answer: {exc}", file=sys.stderr)
        return 1
    _log.info(
        "%s: subscriber %s may read the event exchanges and its own queues (%s) in vhost %s",
        COMMAND,
        args.name,
        queue_names_for(args.name),
        vhost_of(amqp_uri),
    )
    if given:
        _log.info(
            "its broker URI: %s (the password from %s)",
            subscriber_uri(amqp_uri, args.name),
            PASSWORD_ENV,
        )
    else:
        # generated here: shown once, kept nowhere
        print(subscriber_uri(amqp_uri, args.name, password))
    return 0
