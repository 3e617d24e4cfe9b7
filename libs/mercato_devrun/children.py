"""Programs ``make run`` starts beside the seven processes (the demo seller's SaaS
application, the simulated cloud): each a child process whose output is printed with
its name, as honcho prints the services', and which stops with ``make run``."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Mapping, Sequence


class ChildProcess:
    """One program run beside the services; ``label`` prefixes its log lines."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.process: subprocess.Popen | None = None

    def spawn(self, args: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own programs, fixed arguments
            list(args),
            env=dict(env) if env is not None else None,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._relay_output, daemon=True).start()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _relay_output(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            print(f"{time.strftime('%H:%M:%S')} {self.label:<12} | {line.rstrip()}", flush=True)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not stopped within 10 seconds."""
        if self.running():
            assert self.process is not None
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
