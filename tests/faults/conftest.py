"""The fault suite's fixtures: its own RabbitMQ node and PostgreSQL cluster, the whole
system on them, a subscriber counting order events, and the table of counts printed at
the end of the run (``make faults``).

The suite (``test_faults.py``) runs only when asked for (``make faults``, or ``pytest
tests/faults``): it restarts brokers and kills processes for minutes, which a plain
``make test`` should not. The checker's own tests run with every other test.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.faults.checker import COUNTS, Verdict, check, settle
from tests.faults.infra import PrivatePostgres, PrivateRabbit
from tests.faults.system import SUBSCRIBER_QUEUE, FaultySystem

HERE = Path(__file__).parent
RESULTS: dict[str, Verdict] = {}


def _asked_for(config) -> bool:
    for arg in config.args:
        path = Path(str(arg).split("::")[0]).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path, config):
    if collection_path.name == "test_faults.py" and not _asked_for(config):
        return True
    return None


def pytest_configure(config):
    config.addinivalue_line("markers", "faults: the fault suite (make faults)")


@pytest.fixture(scope="session")
def private_infra():
    """A RabbitMQ node and a PostgreSQL cluster of the suite's own (never the machine's
    shared ones, which other test runs use), in a directory the postgres user may read."""
    base = Path(tempfile.mkdtemp(prefix="mercato-faults-"))
    base.chmod(0o755)
    postgres = PrivatePostgres(base / "postgres").start()
    rabbit = PrivateRabbit(base / "rabbitmq").start()
    yield rabbit, postgres
    rabbit.destroy()
    postgres.destroy()
    shutil.rmtree(base, ignore_errors=True)


WORKDIR: list[Path] = []


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    """make run's log, the subscriber's deliveries, the simulators' files: kept after
    the run (the summary says where)."""
    path = tmp_path_factory.mktemp("faults")
    WORKDIR.append(path)
    return path


@pytest.fixture(scope="session")
def running_system(private_infra, workdir):
    rabbit, postgres = private_infra
    system = FaultySystem(workdir, rabbit, postgres, {})
    try:
        yield system.start()
    finally:
        system.shut_down()


@pytest.fixture(scope="session")
def subscriber(running_system, workdir):
    """A process counting every delivery of the subscriber queue make run declared."""
    out = workdir / "subscriber.jsonl"
    with open(workdir / "subscriber.err", "ab") as err:
        process = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "subscriber.py"),
                "--amqp-uri",
                running_system.rabbit.amqp_uri,
                "--queue",
                SUBSCRIBER_QUEUE,
                "--out",
                str(out),
            ],
            stderr=err,
        )
    yield out
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Watchdog:
    """Starts the system again as soon as `make run` exits during a test (an operator
    would), so the test's purchases can finish and be counted."""

    def __init__(self, system: FaultySystem) -> None:
        self.system = system
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self.stopping.wait(1.0):
            with self.lock:
                if not self.system.running():
                    try:
                        self.system.ensure_running()
                    except AssertionError as exc:  # noted: the test's counts show it
                        print(f"the system did not start again: {exc}", file=sys.stderr)

    def __enter__(self) -> Watchdog:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.thread.join()


@pytest.fixture
def system(running_system, subscriber, request):
    """The running system, started again first if an earlier test left it stopped, and
    watched for the length of the test."""
    running_system.ensure_running()
    running_system.begin()
    running_system.subscriber_out = subscriber
    with Watchdog(running_system) as watchdog:
        running_system.watchdog = watchdog
        yield running_system


def finish(system: FaultySystem, stream, name: str, settle_timeout: float = 150.0) -> Verdict:
    """Let the purchases end and the system finish its work, then count and record."""
    stream.join()
    with system.watchdog.lock:
        system.ensure_running()
    settled = settle(stream.purchases, system.subscriber_out, settle_timeout)
    verdict = check(stream.purchases, system.subscriber_out)
    deaths = system.deaths()
    dead_letters = system.new_dead_letters()
    verdict.counts["dead letters"] = sum(dead_letters.values())
    if dead_letters:
        verdict.details.append(f"dead letters: {dead_letters}")
    verdict.counts["processes died"] = len(deaths)
    verdict.counts["system stopped"] = system.system_stops
    if deaths:
        verdict.details.append(f"processes died: {deaths}")
    if not settled:
        verdict.details.append("the system had not settled when counted")
    RESULTS[name] = verdict
    return verdict


def assert_nothing_went_wrong(verdict: Verdict) -> None:
    assert not any(verdict.counts.values()), verdict.summary()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not RESULTS:
        return
    names = list(RESULTS)
    width = max(len(n) for n in names)
    short = [
        c.replace("duplicated", "dup").replace("missing", "miss").replace("processes", "procs")
        for c in COUNTS
    ]
    header = f"{'fault':<{width}}  {'buys':>4}  " + "  ".join(f"{c:>{len(c)}}" for c in short)
    lines = [header, "-" * len(header)]
    for name in names:
        verdict = RESULTS[name]
        cells = "  ".join(
            f"{verdict.counts[c]:>{len(s)}}" for c, s in zip(COUNTS, short, strict=True)
        )
        lines.append(f"{name:<{width}}  {verdict.purchases:>4}  {cells}")
    terminalreporter.write_sep(
        "=", "fault suite: what went wrong, by fault (every count must be 0)"
    )
    for line in lines:
        terminalreporter.write_line(line)
    if WORKDIR:
        terminalreporter.write_line(f"logs and deliveries: {WORKDIR[0]}")
    table = os.environ.get("FAULTS_TABLE")
    if table:
        Path(table).write_text("\n".join(lines) + "\n")


def wait(seconds: float) -> None:
    time.sleep(seconds)
