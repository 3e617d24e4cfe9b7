"""``make run`` on a broker that had none of Mercato's queues: every event handler's
queue exists before a service starts, and a service killed with SIGKILL is started
again while the other six run on."""

from __future__ import annotations

import os
import re
import signal
import time

import requests
from kombu import Connection

from mercato.inbox import dead_letter_queue_name
from mercato.topology import EVENT_HANDLERS, PROCESSES


def started_pids(system, name: str) -> list[int]:
    return [int(pid) for pid in re.findall(rf"{name} started \(pid=(\d+)\)", system.log())]


def test_every_handler_queue_and_its_dead_letter_queue_exist(system):
    with Connection(system.amqp_uri) as connection:
        channel = connection.channel()
        for handler in EVENT_HANDLERS:
            for queue in (handler.queue, dead_letter_queue_name(handler.queue)):
                channel.queue_declare(queue, passive=True)  # raises when missing


def test_a_killed_service_is_restarted_and_the_others_keep_running(system):
    (first,) = started_pids(system, "orders")
    os.kill(first, signal.SIGKILL)

    deadline = time.monotonic() + 60
    while len(started_pids(system, "orders")) < 2:
        assert system.process.poll() is None, f"make run exited:\n{system.log()[-3000:]}"
        assert time.monotonic() < deadline, system.log()[-3000:]
        time.sleep(0.2)
    assert "orders exited unasked; restarting it in 1s" in system.log()
    system.wait_ready()
    for process in PROCESSES:
        if process.name != "orders":
            assert len(started_pids(system, process.name)) == 1, process.name
    assert requests.get(f"{system.url('orders')}/readyz", timeout=5).status_code == 200
