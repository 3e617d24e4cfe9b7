"""A seller's endpoint is called at the address its check saw: a name that resolves to
a public address for the check and to a private one a moment later (DNS rebinding)
never reaches the private one."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from provisioning.endpoints import pinned_session, public_address

PUBLIC = "93.184.215.14"


class Rebinding:
    """A seller's DNS: a public address to the first question, loopback afterwards."""

    def __init__(self) -> None:
        self.asked = 0

    def __call__(self, host, port, **kwargs):
        self.asked += 1
        address = PUBLIC if self.asked == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, 443))]


def test_the_check_answers_the_address_it_checked():
    dns = Rebinding()
    assert public_address("https://seller.example/saas", dns) == PUBLIC
    assert dns.asked == 1


def test_a_name_with_any_private_address_has_none_to_connect_to():
    def mixed(host, port, **kwargs):
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC, 443)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", 443)),
        ]

    assert public_address("https://seller.example/saas", mixed) is None


@pytest.fixture
def local_server():
    """A real HTTP server on loopback that records the Host of each request."""
    hosts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            hosts.append(self.headers["Host"])
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], hosts
    server.shutdown()
    server.server_close()


def test_a_pinned_session_connects_to_its_address_without_looking_the_name_up(
    local_server, monkeypatch
):
    port, hosts = local_server
    looked_up: list[str] = []
    real = socket.getaddrinfo

    def no_names(host, *args, **kwargs):
        looked_up.append(host)
        if host != "127.0.0.1":
            raise socket.gaierror(socket.EAI_NONAME, "looked up by name")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", no_names)

    with pinned_session("127.0.0.1") as session:
        answer = session.post(f"http://seller.invalid:{port}/saas", json={}, timeout=5)

    assert answer.status_code == 200
    # the seller's server is told the name it serves; only the address was connected to
    assert hosts == [f"seller.invalid:{port}"]
    assert "seller.invalid" not in looked_up
