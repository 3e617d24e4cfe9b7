"""Put each process's config.yaml and migrations where mercato.topology looks (image build).

``mercato.topology`` places a process's ``config.yaml`` and ``migrations/`` under
``mercato.config.ROOT``, two directories above the ``mercato`` package: the repository
root in a checkout, but ``<venv>/lib/python3.11`` once the project is installed (not
editable) into a virtualenv. config.yaml is not package data (it sits beside the
package, not in it), so this copies each one from the source tree to
``process.config_path`` and links ``<process.directory>/<package>`` to the installed
package, whose ``migrations/`` the wheel carries. ``nameko run --config``,
``mercato-migrate`` and ``mercato-create-operator`` then work unchanged.

    /opt/mercato/bin/python deploy/image_layout.py /src     # /src: the source tree

Nothing is done for a path that already exists (a checkout, or a later topology that
finds its files on its own).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Callable, Iterable
from pathlib import Path


def installed_package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"package {package} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def lay_out(
    source: Path,
    root: Path,
    processes: Iterable,
    package_dir: Callable[[str], Path] = installed_package_dir,
) -> list[str]:
    """Copy configs and link packages for ``processes``; returns what was done."""
    done = []
    for process in processes:
        relative = process.directory.relative_to(root)
        if not process.config_path.exists():
            process.directory.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / relative / "config.yaml", process.config_path)
            done.append(f"copied {relative / 'config.yaml'}")
        link = process.directory / process.package
        if not link.exists():
            target = package_dir(process.package)
            link.symlink_to(os.path.relpath(target, link.parent), target_is_directory=True)
            done.append(f"linked {relative / process.package} -> {target}")
    return done


def main(argv: list[str]) -> int:
    from mercato.config import ROOT
    from mercato.topology import PROCESSES

    if len(argv) != 1:
        raise SystemExit("usage: image_layout.py <source tree>")
    for line in lay_out(Path(argv[0]), ROOT, PROCESSES):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
