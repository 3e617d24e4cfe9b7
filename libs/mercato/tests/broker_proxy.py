"""A TCP relay between a test's services and the real RabbitMQ, which the test cuts.

Restarting the machine's broker would break every other test using it; the services
cannot tell a relay from the broker, so cutting the relay is a broker blip to them:

- ``down()`` closes every connection and refuses new ones (``ECONNREFUSED``), as a
  broker that is restarting does; ``up()`` accepts again on the same port;
- ``mute(port)`` stops passing the broker's frames to one client connection, while
  what the client writes still reaches the broker: a confirm that never comes.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit, urlunsplit

import eventlet
from eventlet.greenio import GreenSocket


class _Pipe:
    def __init__(self, client: GreenSocket, upstream: GreenSocket) -> None:
        self.client = client
        self.upstream = upstream
        self.muted = False
        self._threads = [
            eventlet.spawn(self._pump, client, upstream, False),
            eventlet.spawn(self._pump, upstream, client, True),
        ]

    def _pump(self, source: GreenSocket, target: GreenSocket, from_broker: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if from_broker and self.muted:
                    continue
                target.sendall(data)
        except (OSError, EOFError):  # the other side closed, or the test cut the relay
            pass
        finally:
            self.close()

    def close(self) -> None:
        for sock in (self.client, self.upstream):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except (OSError, EOFError):
                pass
            sock.close()


class BrokerProxy:
    def __init__(self, amqp_uri: str) -> None:
        parts = urlsplit(amqp_uri)
        self._parts = parts
        self._target = (parts.hostname or "127.0.0.1", parts.port or 5672)
        self.port = 0
        self.pipes: dict[int, _Pipe] = {}  # by the client's local port
        self._listener: GreenSocket | None = None
        self._acceptor = None
        self.up()

    @property
    def amqp_uri(self) -> str:
        """The broker's URI (same vhost and credentials) through this relay."""
        userinfo = self._parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@127.0.0.1:{self.port}" if userinfo else f"127.0.0.1:{self.port}"
        return urlunsplit(self._parts._replace(netloc=netloc))

    def up(self) -> None:
        self._listener = eventlet.listen(("127.0.0.1", self.port))
        self.port = self._listener.getsockname()[1]
        self._acceptor = eventlet.spawn(self._accept, self._listener)

    def _accept(self, listener: GreenSocket) -> None:
        while True:
            try:
                client, address = listener.accept()
            except OSError:
                return
            upstream = eventlet.connect(self._target)
            self.pipes[address[1]] = _Pipe(client, upstream)

    def down(self) -> None:
        if self._acceptor is not None:
            self._acceptor.kill()
            self._acceptor = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for pipe in self.pipes.values():
            pipe.close()
        self.pipes.clear()

    def mute(self, client_port: int) -> None:
        self.pipes[client_port].muted = True

    close = down
