"""The container image, checked without a container engine: the entrypoint's mapping,
the layout step that puts config.yaml files where topology.py looks, and the
Containerfile's promises (non-root, no build tools, only runtime packages)."""

import importlib.util
import re
from dataclasses import replace
from importlib import metadata

import pytest
import yaml
from packaging.requirements import Requirement

from mercato.config import ROOT
from mercato.topology import PROCESSES
from tests.deploy import chart

DEPLOY = ROOT / "deploy"
CONTAINERFILE = (DEPLOY / "Containerfile").read_text()


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"deploy_{name}", DEPLOY / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


entrypoint = load("entrypoint")
image_layout = load("image_layout")


@pytest.mark.parametrize("process", PROCESSES, ids=lambda p: p.name)
def test_a_process_name_runs_that_process_as_make_run_does(process):
    expected = ["nameko", "run", "--config", str(process.config_path), process.nameko_target]
    assert entrypoint.command_for([process.name]) == expected
    assert entrypoint.command_for([process.name.replace("_", "-"), "--backdoor-port", "3000"]) == [
        *expected,
        "--backdoor-port",
        "3000",
    ]


def test_any_other_command_runs_as_given_and_no_command_is_an_error():
    assert entrypoint.command_for(["mercato-migrate", "orders"]) == ["mercato-migrate", "orders"]
    with pytest.raises(SystemExit, match="processes: catalog, orders"):
        entrypoint.command_for([])


def test_the_build_time_check_finds_every_process_in_a_checkout():
    assert entrypoint.check() == []


def test_the_check_names_what_is_missing(monkeypatch, tmp_path):
    import mercato.topology

    moved = tuple(replace(p, directory=tmp_path / p.name) for p in PROCESSES)
    monkeypatch.setattr(mercato.topology, "PROCESSES", moved)
    problems = entrypoint.check()
    assert f"orders: no config at {tmp_path / 'orders' / 'config.yaml'}" in problems
    assert len(problems) == 2 * len(PROCESSES)


def test_the_layout_puts_configs_and_migrations_where_an_installed_topology_looks(tmp_path):
    """Installed in a venv, topology's ROOT is <venv>/lib/python3.11, not the checkout."""
    root = tmp_path / "venv" / "lib" / "python3.11"
    site = root / "site-packages"
    for process in PROCESSES:
        (site / process.package / "migrations").mkdir(parents=True)
        (site / process.package / "migrations" / "env.py").write_text("# env\n")
    installed = [replace(p, directory=root / p.directory.relative_to(ROOT)) for p in PROCESSES]

    done = image_layout.lay_out(ROOT, root, installed, package_dir=lambda package: site / package)

    assert len(done) == 2 * len(PROCESSES)
    for original, process in zip(PROCESSES, installed, strict=True):
        assert process.config_path.read_text() == original.config_path.read_text()
        assert (process.migrations / "env.py").read_text() == "# env\n"
        link = process.directory / process.package
        assert link.is_symlink() and link.resolve() == site / process.package
    assert image_layout.lay_out(ROOT, root, installed, package_dir=lambda p: site / p) == []


def stages(text: str) -> list[str]:
    return re.split(r"(?m)^FROM ", text)[1:]


def test_the_final_stage_is_slim_non_root_and_has_no_build_tools():
    builder, final = stages(CONTAINERFILE)
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in CONTAINERFILE
    assert builder.startswith("${PYTHON_IMAGE} AS builder")
    assert final.startswith("${PYTHON_IMAGE}\n")
    assert re.search(r"(?m)^USER 10001:10001$", final)
    for forbidden in (
        "apt-get",
        "gcc",
        "build-essential",
        "pip install",
        "COPY libs",
        "COPY services",
    ):
        assert forbidden not in final, forbidden
    assert "COPY --from=builder /opt/mercato /opt/mercato" in final
    assert 'ENTRYPOINT ["/opt/mercato/bin/python", "/opt/mercato/entrypoint.py"]' in final
    # the project itself is a wheel in the venv, not an editable checkout
    assert "pip install --no-deps ." in builder and " -e " not in builder
    assert "image_layout.py /src" in builder and "entrypoint.py --check" in builder


def test_the_chart_runs_the_image_as_the_user_the_image_creates():
    values = yaml.safe_load((chart.CHART_DIR / "values.yaml").read_text())
    user = re.search(r"useradd --uid (\d+) --gid (\d+)", CONTAINERFILE)
    assert values["podSecurityContext"]["runAsUser"] == int(user.group(1))
    assert values["podSecurityContext"]["runAsGroup"] == int(user.group(2))
    assert values["containerSecurityContext"]["runAsUser"] == int(user.group(1))


def runtime_requirements() -> dict[str, str]:
    """requirements.txt less what the Containerfile's grep leaves out: name -> version."""
    pattern = re.search(r"grep -v -i -E '([^']+)'", CONTAINERFILE).group(1)
    pinned = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#") and not re.search(pattern, line, re.I):
            name, _, version = line.partition("==")
            pinned[canonical(name)] = version
    return pinned


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_image_leaves_out_only_tools_and_keeps_what_the_rest_needs():
    """What pip check proves at build time, from the installed metadata: every runtime
    package's own requirements are among the runtime packages."""
    pinned = runtime_requirements()
    for tool in (
        "ruff",
        "mypy",
        "pytest",
        "testcontainers",
        "helm-python-sdk",
        "kubernetes-validate",
        "schemathesis",
    ):
        assert tool not in pinned
    for needed in ("nameko", "kombu", "sqlalchemy", "psycopg2-binary", "prometheus-client"):
        assert needed in pinned
    missing = []
    for name in pinned:
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            requirement = Requirement(text)
            if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
                continue
            if canonical(requirement.name) not in pinned:
                missing.append(f"{name} needs {requirement.name}")
    assert not missing


def test_the_build_context_leaves_local_state_out():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for path in (".git", ".venv", "var", "**/__pycache__", "deploy/helm"):
        assert path in ignored
    for needed in ("libs", "services", "gateway", "pyproject.toml", "requirements.txt", "deploy"):
        assert needed not in ignored
