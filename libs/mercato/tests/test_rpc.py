"""Mercato's RPC (``TimedRpcProxy`` and ``rpc``, sending through ``BrokerChannels``)
against the real RabbitMQ, each test on a throw-away vhost (nameko's ``rabbit_config``)."""

from __future__ import annotations

import collections
import time
import uuid

import eventlet
import pytest
from kombu import Connection, Queue
from nameko.rpc import get_rpc_exchange
from nameko.rpc import rpc as nameko_rpc
from nameko.standalone.rpc import ServiceRpcProxy

from mercato.errors import NotFound, ServiceUnavailable
from mercato.tests.broker_proxy import BrokerProxy
from mercato.transport import TimedRpcProxy, channels, rpc
from mercato.transport.channels import BrokerChannels
from mercato.transport.rpc import DEADLINE_HEADER
from mercato_testing.interface import sample

pytestmark = pytest.mark.interface

# how many times each key was run by a callee's ``record``
RECORDED: collections.Counter[str] = collections.Counter()


class Callee:
    name = "callee"

    @rpc(expected_exceptions=NotFound)
    def echo(self, value, *, suffix=""):
        return f"{value}{suffix}"

    @rpc
    def missing(self, key):
        raise NotFound(f"no {key}")

    @rpc
    def slow(self, seconds):
        eventlet.sleep(seconds)
        return "late"

    @rpc
    def record(self, key):
        RECORDED[key] += 1
        return key


class BusyCallee(Callee):
    """Run with one worker: a slow call keeps every other request waiting in the queue."""

    name = "busy"


class ProxiedCallee(Callee):
    """Talks to the broker through a ``BrokerProxy`` the test cuts."""

    name = "proxied_callee"


class PlainNamekoCallee:
    """A service on nameko's own entrypoint: Mercato's proxy calls it the same way."""

    name = "plain"

    @nameko_rpc
    def echo(self, value):
        return value


class Caller:
    name = "caller"

    callee = TimedRpcProxy("callee", timeout=1)
    plain = TimedRpcProxy("plain", timeout=1)
    nobody = TimedRpcProxy("nobody", timeout=1)

    @rpc
    def relay(self, value):
        return self.callee.echo(value, suffix="!")

    @rpc
    def relay_missing(self, key):
        return self.callee.missing(key)

    @rpc
    def relay_slow(self, seconds):
        return self.callee.slow(seconds)

    @rpc
    def relay_plain(self, value):
        return self.plain.echo(value)

    @rpc
    def relay_nobody(self):
        return self.nobody.echo("x")

    @rpc
    def relay_many(self, count):
        pool = eventlet.GreenPool(count)
        return sorted(pool.imap(lambda i: self.callee.echo(str(i)), range(count)))

    @rpc
    def relay_record(self, key):
        return self.callee.record(key)

    @rpc
    def relay_after(self, seconds, value):
        eventlet.sleep(seconds)
        return self.callee.echo(value)


class BusyCaller:
    name = "busy_caller"

    busy = TimedRpcProxy("busy", timeout=0.5)

    @rpc
    def relay_record(self, key):
        return self.busy.record(key)


class ProxiedCaller(Caller):
    """Talks to the broker through a ``BrokerProxy`` the test cuts."""

    name = "proxied_caller"


@pytest.fixture
def system(container_factory, rabbit_config):
    containers = [
        container_factory(cls, rabbit_config) for cls in (Callee, PlainNamekoCallee, Caller)
    ]
    for container in containers:
        container.start()
    return {container.service_name: container for container in containers}


@pytest.fixture
def proxy(rabbit_config):
    relay = BrokerProxy(rabbit_config["AMQP_URI"])
    yield relay
    relay.close()


def call(rabbit_config, method, *args, timeout=5, service="caller"):
    with ServiceRpcProxy(service, rabbit_config, timeout=timeout) as caller:
        return getattr(caller, method)(*args)


def eventually(attempt, *, within: float = 30.0):
    """``attempt()``'s result once it stops raising (a service reconnecting)."""
    deadline = time.monotonic() + within
    while True:
        try:
            return attempt()
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def idle(container, within: float = 10.0) -> None:
    """Wait until ``container`` runs no worker (or has died)."""
    deadline = time.monotonic() + within
    time.sleep(0.5)
    while container._worker_threads and not container._died.ready():
        assert time.monotonic() < deadline, "workers still running"
        time.sleep(0.1)


def local_port(channel) -> int:
    return channel.connection.connection.transport.sock.getsockname()[1]


def channels_of(container) -> BrokerChannels:
    (shared,) = [ext for ext in container.extensions if isinstance(ext, BrokerChannels)]
    return shared


def test_a_call_and_its_answer_go_through_the_containers_channels(system, rabbit_config):
    assert call(rabbit_config, "relay", "hi") == "hi!"
    assert call(rabbit_config, "relay_plain", "hey") == "hey"


def test_the_callees_error_reaches_the_caller(system, rabbit_config):
    # the caller's own caller sees the callee's error as the callee raised it
    with pytest.raises(NotFound, match="no thing"):
        call(rabbit_config, "relay_missing", "thing")


def test_a_service_nobody_runs_is_unavailable_at_once(system, rabbit_config):
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable, match="nobody is not running"):
        call(rabbit_config, "relay_nobody")
    assert time.monotonic() - started < 1  # not the proxy's 1 s timeout
    # the unroutable request left its channel sound: the next call goes through
    assert call(rabbit_config, "relay", "again") == "again!"


def test_a_callee_that_does_not_answer_in_time_is_unavailable(system, rabbit_config):
    with pytest.raises(ServiceUnavailable, match="did not answer slow within 1s"):
        call(rabbit_config, "relay_slow", 3)
    listener = next(
        ext.rpc_reply_listener for ext in system["caller"].dependencies if hasattr(ext, "channels")
    )
    assert listener._reply_events == {}  # the late answer is not waited for


def test_concurrent_calls_each_get_their_own_answer(system, rabbit_config):
    assert call(rabbit_config, "relay_many", 30) == sorted(str(i) for i in range(30))
    # the channels opened for the burst are kept for the next one, not one per call
    confirming = channels_of(system["caller"]).confirming
    assert 1 <= confirming._free.qsize() <= 30


def test_requests_and_answers_are_transient(system, rabbit_config):
    """Watch the RPC exchange with a queue of our own: neither the request nor the
    answer asks the broker to write it to disk."""
    uri = rabbit_config["AMQP_URI"]
    tap = f"tap-{uuid.uuid4().hex[:8]}"
    with Connection(uri) as connection:
        channel = connection.channel()
        Queue(tap, exchange=get_rpc_exchange(rabbit_config), routing_key="#")(channel).declare()
        assert call(rabbit_config, "relay", "disk?") == "disk?!"
        seen = []
        deadline = time.monotonic() + 5
        while len(seen) < 4 and time.monotonic() < deadline:
            message = channel.basic_get(tap, no_ack=True)
            if message is None:
                time.sleep(0.05)
                continue
            seen.append(message)
    # the standalone proxy's request and the answer to it, the caller's request to
    # the callee and its answer
    keys = [message.delivery_info["routing_key"] for message in seen]
    assert "callee.echo" in keys and "caller.relay" in keys
    mercato_sent = [m for m in seen if m.delivery_info["routing_key"] != "caller.relay"]
    assert len(mercato_sent) == 3
    assert {m.properties["delivery_mode"] for m in mercato_sent} == {1}


def test_channels_the_broker_closed_while_kept_are_replaced(system, rabbit_config):
    """A broker restart or an operator's forced close ends every kept connection;
    the next request and its answer are sent again on fresh ones, and the call
    succeeds (an answer has no confirm: were the close not seen, it would be lost)."""
    import requests

    from mercato_testing import management_uri_for

    assert call(rabbit_config, "relay", "warm") == "warm!"
    kept = [
        channel
        for container in (system["caller"], system["callee"])
        for pool in (channels_of(container).confirming, channels_of(container).plain)
        for channel in pool._free.queue
    ]
    ports = {channel.connection.connection.transport.sock.getsockname()[1] for channel in kept}
    api = management_uri_for(rabbit_config["AMQP_URI"])
    # the management API lists a connection once its statistics were first collected
    deadline = time.monotonic() + 15
    while True:
        listed = {
            connection.get("peer_port"): connection["name"]
            for connection in requests.get(f"{api}/api/connections", timeout=5).json()
        }
        if ports <= listed.keys() or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert ports <= listed.keys()
    assert len(ports) >= 3  # the caller's request and answer channels, the callee's answer
    for port in ports:
        requests.delete(
            f"{api}/api/connections/{listed[port]}", headers={"X-Reason": "test"}, timeout=5
        ).raise_for_status()
    time.sleep(0.2)  # the broker's close frames reach the sockets
    assert call(rabbit_config, "relay", "after", timeout=2) == "after!"


def test_a_broker_that_cannot_be_reached_makes_the_callee_unavailable(system, rabbit_config):
    """No channel kept and none can be opened (the broker is away): the caller gets
    ``ServiceUnavailable``, which event handlers retry as a transient failure."""
    confirming = channels_of(system["caller"]).confirming
    confirming.close()
    confirming._closed = False
    confirming._amqp_uri = "amqp://guest:guest@127.0.0.1:1/"  # nothing listens there
    with pytest.raises(ServiceUnavailable, match=r"broker did not take the call callee\.echo"):
        call(rabbit_config, "relay", "lost")


def test_stopping_the_container_closes_its_channels(system, rabbit_config):
    assert call(rabbit_config, "relay", "x") == "x!"
    channels = channels_of(system["caller"])
    kept = list(channels.confirming._free.queue)
    assert kept
    system["caller"].stop()
    assert all(not channel.connection.connected for channel in kept)
    assert channels.confirming._free.qsize() == 0


def test_a_request_whose_confirm_never_comes_fails_the_call_and_is_not_sent_again(
    system, rabbit_config, proxy, container_factory, monkeypatch
):
    """The broker took the request (the callee runs it) but its confirm is lost: the
    call fails, and the request is not sent again on a fresh channel (which would
    have run it twice: a second order, a second charge)."""
    monkeypatch.setattr(channels, "CONFIRM_TIMEOUT_SECONDS", 1.0)
    caller = container_factory(ProxiedCaller, {**rabbit_config, "AMQP_URI": proxy.amqp_uri})
    caller.start()
    assert call(rabbit_config, "relay_record", "warm", service="proxied_caller") == "warm"
    (kept,) = channels_of(caller).confirming._free.queue
    proxy.mute(local_port(kept))

    with pytest.raises(ServiceUnavailable, match=r"did not confirm the call callee\.record"):
        call(rabbit_config, "relay_record", "once", service="proxied_caller")
    time.sleep(1)
    assert RECORDED["once"] == 1
    # the next call goes out on a fresh channel
    assert call(rabbit_config, "relay_record", "next", service="proxied_caller") == "next"


def test_a_request_whose_caller_stopped_waiting_is_never_run(container_factory, rabbit_config):
    """The only worker is busy for 2 s; a call waiting 0.5 s behind it expires in the
    queue instead of running 1.5 s after its caller was told 503."""
    container_factory(BusyCallee, {**rabbit_config, "max_workers": 1}).start()
    container_factory(BusyCaller, rabbit_config).start()
    with ServiceRpcProxy("busy", rabbit_config) as busy:
        pending = busy.slow.call_async(2)
        time.sleep(0.3)
        with pytest.raises(ServiceUnavailable, match=r"did not answer record within 0\.5s"):
            call(rabbit_config, "relay_record", "too late", service="busy_caller")
        assert pending.result() == "late"
    time.sleep(1)
    assert RECORDED["too late"] == 0


def test_a_request_past_its_deadline_is_dropped_before_a_worker_starts(system, rabbit_config):
    """The broker may hand over a request before its expiration (a consumer's
    prefetch): the callee checks the deadline header itself."""
    expired_before = sample("mercato_rpc_expired_total", service="callee", method="record")
    exchange = get_rpc_exchange(rabbit_config)
    with Connection(rabbit_config["AMQP_URI"]) as connection:
        producer = connection.Producer(serializer="json")
        for key, deadline in (("past", time.time() - 1), ("future", time.time() + 30)):
            producer.publish(
                {"args": [key], "kwargs": {}},
                exchange=exchange,
                routing_key="callee.record",
                headers={DEADLINE_HEADER: deadline},
                reply_to="nobody-listens",
                correlation_id=key,
            )
    deadline = time.monotonic() + 5
    while RECORDED["future"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (RECORDED["past"], RECORDED["future"]) == (0, 1)
    after = sample("mercato_rpc_expired_total", service="callee", method="record")
    assert after == expired_before + 1


def test_an_answer_the_broker_cannot_take_does_not_kill_the_callee(
    rabbit_config, proxy, container_factory
):
    """The broker goes away while a call runs: its answer cannot be sent. The callee
    loses that answer, not its life, and serves again once the broker is back."""
    callee = container_factory(ProxiedCallee, {**rabbit_config, "AMQP_URI": proxy.amqp_uri})
    callee.start()
    with ServiceRpcProxy("proxied_callee", rabbit_config, timeout=5) as proxied:
        proxied.slow.call_async(1)
        time.sleep(0.3)
        proxy.down()
        idle(callee)  # the call ended and tried to answer
        assert not callee._died.ready()
        proxy.up()
    assert eventually(lambda: call(rabbit_config, "echo", "back", service="proxied_callee")) == (
        "back"
    )
    assert not callee._died.ready()


def test_a_call_sent_while_the_broker_is_away_fails_that_call_only(
    system, rabbit_config, proxy, container_factory
):
    """The issue's crash: a worker sends a request after the broker went away. That
    call fails (ServiceUnavailable, its answer lost too); the process lives on and
    calls again once the broker is back."""
    caller = container_factory(ProxiedCaller, {**rabbit_config, "AMQP_URI": proxy.amqp_uri})
    caller.start()
    assert call(rabbit_config, "relay", "before", service="proxied_caller") == "before!"
    with ServiceRpcProxy("proxied_caller", rabbit_config, timeout=5) as proxied:
        proxied.relay_after.call_async(0.5, "during")
        time.sleep(0.2)
        proxy.down()
        idle(caller)  # the worker's send failed, then its answer
        assert not caller._died.ready()
        proxy.up()
    assert eventually(lambda: call(rabbit_config, "relay", "after", service="proxied_caller")) == (
        "after!"
    )
    assert not caller._died.ready()
