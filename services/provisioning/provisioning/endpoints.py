"""Whether a seller's endpoint points into our own network.

A seller chooses its endpoint's URL, and provisioning POSTs to it for hours: an
endpoint on loopback, a private or link-local network (a sidecar's admin port, the
cloud's metadata service, another service of the cluster) would let a seller make
Mercato call its own infrastructure. Outside development such an endpoint is refused,
whatever its host name resolves to at the time of the call. (The Helm chart's egress
policy refuses the same ranges a second time.)
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit


def is_private(url: str) -> bool:
    """True when the URL's host is, or resolves to, an address that is not public (an
    unresolvable host counts as private: the call could not be checked)."""
    host = urlsplit(url).hostname or ""
    try:
        addresses = {ipaddress.ip_address(host)}
    except ValueError:
        try:
            addresses = {
                ipaddress.ip_address(str(info[4][0]).split("%")[0])
                for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
            }
        except (OSError, ValueError):
            return True
    return not addresses or any(not address.is_global for address in addresses)
