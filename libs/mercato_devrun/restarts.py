"""``make run``'s processes, each restarted when it dies (``RestartingManager``).

honcho's ``Manager`` stops every process as soon as one exits: one service that died
(a bug, an out-of-memory kill, a SIGKILL from a fault test) took the other six down
with it. Here a process that exits while ``make run`` is not stopping is started
again after a backoff (1 s, doubling up to 30 s; back to 1 s once a run lasted a
minute), as Kubernetes restarts a container. Ctrl-C or SIGTERM still stops all of
them, with honcho's lines ("orders stopped (rc=0)") and exit status (130, 143).
"""

from __future__ import annotations

import datetime
import queue
import signal
import time
from typing import Any

from honcho.manager import SIGNALS, Manager

FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
# a run this long was healthy: the next failure starts the backoff from the beginning
HEALTHY_RUN_SECONDS = 60.0
# how long Ctrl-C waits for the processes' graceful stop before it kills them. honcho's
# own 5 s is shorter than a worker may still be busy (an RPC to billing has 10 s), and
# on a loaded machine seven nameko processes closing their consumers took longer than
# that; a Kubernetes pod gets 30 s
STOP_GRACE_SECONDS = 15.0


def backoff(failures: int) -> float:
    """Seconds to wait before the restart that follows ``failures`` short runs in a row."""
    return min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2 ** max(0, failures - 1))


class RestartingManager(Manager):
    def __init__(self, printer: Any = None) -> None:
        super().__init__(printer)
        self._restart_at: dict[str, float] = {}
        self._started_at: dict[str, float] = {}
        self._failures: dict[str, int] = {}
        self.restarts: dict[str, int] = {}

    def loop(self) -> None:
        def _terminate(signum, frame):
            self._system_print(f"{SIGNALS[signum]['name']} received\n")
            self.returncode = SIGNALS[signum]["rc"]
            self.terminate()

        signal.signal(signal.SIGTERM, _terminate)
        signal.signal(signal.SIGINT, _terminate)
        self._start()
        for name in self._processes:
            self._started_at[name] = time.monotonic()
        exit_start: datetime.datetime | None = None
        while True:
            try:
                msg = self.events.get(timeout=0.1)
            except queue.Empty:
                msg = None
            if msg is not None:
                self._handle(msg)
            if self._terminating:
                self._restart_at.clear()
                if exit_start is None:
                    exit_start = self._clock.now()
                if self._all_stopped():
                    break
                if self._clock.now() - exit_start > datetime.timedelta(seconds=STOP_GRACE_SECONDS):
                    self.kill()
                continue
            now = time.monotonic()
            for name, due in list(self._restart_at.items()):
                if now >= due:
                    del self._restart_at[name]
                    self._restart(name)

    def _handle(self, msg) -> None:
        if msg.type == "line":
            self._printer.write(msg)
        elif msg.type == "start":
            self._processes[msg.name]["pid"] = msg.data["pid"]
            self._system_print("{} started (pid={})\n".format(msg.name, msg.data["pid"]))
            if self._terminating:  # restarted just as make run was asked to stop
                self._procmgr.terminate(msg.data["pid"])
        elif msg.type == "stop":
            name, returncode = msg.name, msg.data["returncode"]
            self._processes[name]["returncode"] = returncode
            self._system_print(f"{name} stopped (rc={returncode})\n")
            self._processes[name]["process"].join(timeout=1)
            if self._terminating:
                return
            ran = time.monotonic() - self._started_at.get(name, time.monotonic())
            failures = 1 if ran >= HEALTHY_RUN_SECONDS else self._failures.get(name, 0) + 1
            self._failures[name] = failures
            delay = backoff(failures)
            self._system_print(f"{name} exited unasked; restarting it in {delay:g}s\n")
            self._restart_at[name] = time.monotonic() + delay

    def _restart(self, name: str) -> None:
        import multiprocessing

        entry = self._processes[name]
        entry.pop("returncode", None)
        entry.pop("pid", None)
        self.restarts[name] = self.restarts.get(name, 0) + 1
        self._started_at[name] = time.monotonic()
        entry["process"] = multiprocessing.Process(
            name=name, target=entry["obj"].run, args=(self.events, True)
        )
        entry["process"].start()

    def _killall(self, force: bool = False) -> None:
        # a process being restarted has no pid until it reports its start (above)
        for name, entry in self._processes.items():
            if "returncode" in entry or "pid" not in entry:
                continue
            signame = "SIGKILL" if force else "SIGTERM"
            self._system_print("sending {} to {} (pid {})\n".format(signame, name, entry["pid"]))
            if force:
                self._procmgr.kill(entry["pid"])
            else:
                self._procmgr.terminate(entry["pid"])

    def _all_stopped(self) -> bool:
        # a process waiting for its restart has stopped; one being restarted has not
        # reported its start yet, but it has no returncode either
        return all(entry.get("returncode") is not None for entry in self._processes.values())
