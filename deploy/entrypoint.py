"""Entrypoint of the Mercato image: the first argument names the process to run.

    orders                      nameko run --config <orders' config.yaml> orders.service:OrdersService
    iam-agency | iam_agency     the same for iam_agency (any of the seven process names)
    mercato-migrate orders      any other command is run as given
    --check                     import every process and find its config and migrations (build time)

The names, config files and nameko targets come from ``mercato.topology``, the one list
of processes, so the image runs exactly what ``make run`` runs. The command replaces
this script (exec), so nameko is PID 1 and gets SIGTERM for its graceful stop.
"""

from __future__ import annotations

import importlib
import os
import sys

USAGE = "usage: <process> [nameko run options] | <command> [args...] | --check"


def command_for(argv: list[str]) -> list[str]:
    """The command line to exec for the container's arguments."""
    from mercato.topology import BY_NAME

    if not argv:
        raise SystemExit(f"{USAGE}\nprocesses: {', '.join(BY_NAME)}")
    process = BY_NAME.get(argv[0].replace("-", "_"))
    if process is None:
        return argv
    return ["nameko", "run", "--config", str(process.config_path), process.nameko_target, *argv[1:]]


def check() -> list[str]:
    """What is missing for any process to start or migrate (empty when nothing is)."""
    from mercato.topology import PROCESSES

    problems = []
    for process in PROCESSES:
        if not process.config_path.is_file():
            problems.append(f"{process.name}: no config at {process.config_path}")
        if not (process.migrations / "env.py").is_file():
            problems.append(f"{process.name}: no migrations at {process.migrations}")
        module, _, attr = process.nameko_target.partition(":")
        if not hasattr(importlib.import_module(module), attr):
            problems.append(f"{process.name}: {process.nameko_target} not found")
    return problems


def main(argv: list[str]) -> None:
    if argv == ["--check"]:
        problems = check()
        if problems:
            raise SystemExit("\n".join(problems))
        print("every process found its config, migrations and service class")
        return
    command = command_for(argv)
    os.execvp(command[0], command)  # noqa: S606 - the container's own command


if __name__ == "__main__":
    main(sys.argv[1:])
