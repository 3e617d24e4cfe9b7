"""``make run`` restarts a process that died instead of stopping the others
(``mercato_devrun.restarts``): real child processes under the real manager, in a
process of its own (the manager takes SIGINT and SIGTERM, as ``make run`` does)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from mercato_devrun.restarts import backoff

MANAGER = textwrap.dedent(
    """
    import sys
    from honcho.printer import Printer
    from mercato_devrun import restarts

    restarts.FIRST_BACKOFF_SECONDS = 0.2
    manager = restarts.RestartingManager(Printer(sys.stdout))
    python = sys.executable
    manager.add_process("steady", f"exec {python} -c 'import time; time.sleep(300)'")
    manager.add_process(
        "crashy", f"exec {python} -c 'print(\\"crashing\\", flush=True); raise SystemExit(3)'"
    )
    manager.loop()
    sys.exit(manager.returncode or 0)
    """
)


def run_manager(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / "manager.log"
    process = subprocess.Popen(
        [sys.executable, "-c", MANAGER],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return process, log


def wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_process_that_dies_is_restarted_and_the_others_keep_running(tmp_path):
    process, log = run_manager(tmp_path)
    try:
        wait_for(lambda: log.read_text().count("crashy started") >= 3)
        text = log.read_text()
        assert process.poll() is None, text
        assert "crashy stopped (rc=3)" in text
        assert "crashy exited unasked; restarting it in" in text
        assert text.count("steady started") == 1
        assert "steady stopped" not in text
        steady_pid = int(re.search(r"steady started \(pid=(\d+)\)", text).group(1))
        Path(f"/proc/{steady_pid}").stat()  # still running
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 130
    assert "steady stopped" in log.read_text()


def test_the_backoff_doubles_up_to_thirty_seconds():
    assert [backoff(n) for n in (1, 2, 3, 4, 5, 6, 7)] == [1, 2, 4, 8, 16, 30, 30]
