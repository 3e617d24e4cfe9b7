"""Whether a seller's endpoint points into our own network, and a connection to the
address that was checked.

A seller chooses its endpoint's URL, and provisioning POSTs to it for hours: an
endpoint on loopback, a private or link-local network (a sidecar's admin port, the
cloud's metadata service, another service of the cluster) would let a seller make
Mercato call its own infrastructure. Outside development such an endpoint is refused,
whatever its host name resolves to at the time of the call. (The Helm chart's egress
policy refuses the same ranges a second time.)

The check and the call must see the same address: a seller's DNS may answer a public
address to the check and a private one to the connection a moment later (DNS
rebinding). So ``public_address`` resolves the name once and answers the address it
checked, and ``pinned_session`` connects to that address only, never looking the
name up again; the request still names the host (``Host``, and for https the TLS
server name and the certificate's check), so the seller's server sees no difference.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

Resolver = Callable[..., list[Any]]


def _addresses(host: str, resolve: Resolver) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    found = []
    for info in resolve(host, None, proto=socket.IPPROTO_TCP):
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if address not in found:
            found.append(address)
    return found


def public_address(url: str, resolve: Resolver = socket.getaddrinfo) -> str | None:
    """The address to connect to for ``url``: the first its host resolves to, when
    every address it resolves to is public; None when one is not (an unresolvable host
    counts as private: the call could not be checked)."""
    host = urlsplit(url).hostname or ""
    try:
        addresses = _addresses(host, resolve)
    except (OSError, ValueError):
        return None
    if not addresses or any(not address.is_global for address in addresses):
        return None
    return str(addresses[0])


def is_private(url: str, resolve: Resolver = socket.getaddrinfo) -> bool:
    """True when the URL's host is, or resolves to, an address that is not public."""
    return public_address(url, resolve) is None


class _PinnedConnection:
    """Connects its socket to ``pinned_address`` instead of resolving the host; the
    host is still what the request and TLS name."""

    pinned_address = ""
    _dns_host: str

    def _new_conn(self) -> socket.socket:
        named = self._dns_host
        self._dns_host = self.pinned_address
        try:
            return super()._new_conn()  # type: ignore[misc]
        finally:
            self._dns_host = named


class _PinnedAdapter(HTTPAdapter):
    def __init__(self, address: str) -> None:
        self._address = address
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        pinned = {"pinned_address": self._address}
        http_connection = type("PinnedHTTPConnection", (_PinnedConnection, HTTPConnection), pinned)
        https_connection = type(
            "PinnedHTTPSConnection", (_PinnedConnection, HTTPSConnection), pinned
        )
        self.poolmanager.pool_classes_by_scheme = {
            "http": type(
                "PinnedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_connection}
            ),
            "https": type(
                "PinnedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_connection}
            ),
        }


def pinned_session(address: str) -> requests.Session:
    """A session whose every connection goes to ``address`` (what ``public_address``
    checked), whatever host a URL names; no proxy from the environment either, which
    would resolve the name itself."""
    session = requests.Session()
    session.trust_env = False
    adapter = _PinnedAdapter(address)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
