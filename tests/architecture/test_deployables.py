"""Two deployables: a node needs no database stack, Mission Control no ZooKeeper or S3 stack.

`pip install '.[node]'` and `pip install '.[mission-control]'` install only their own side's
dependencies (pyproject's extras), and every module of each side imports in a fresh interpreter
without loading the other side's heavy dependencies. The slow test installs each extra into a
fresh virtual environment of its own and runs its command line from there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

#: What only Mission Control needs (distribution names, and the modules they install).
MISSION_CONTROL_ONLY = {
    "sqlalchemy": "sqlalchemy",
    "asyncpg": "asyncpg",
    "alembic": "alembic",
    "aiosqlite": "aiosqlite",
    "argon2-cffi": "argon2",
    "pyotp": "pyotp",
    "jinja2": "jinja2",
    "ldap3": "ldap3",
}
#: What only a node needs.
NODE_ONLY = {
    "kazoo": "kazoo",
    "boto3": "boto3",
    "psutil": "psutil",
    "apscheduler": "apscheduler",
    "blake3": "blake3",
    "prometheus-client": "prometheus_client",
}
SIDES = {
    # side: (extra, packages it runs, modules it must not load, its command)
    "node": ("node", ("contract", "backup", "cluster"), NODE_ONLY, MISSION_CONTROL_ONLY, "managed"),
    "mission-control": (
        "mission-control",
        ("contract", "mission_control"),
        MISSION_CONTROL_ONLY,
        NODE_ONLY,
        "mission-control",
    ),
}
#: What a copy of the tree for installing leaves behind (build output, environments, caches).
LEFT_BEHIND = (".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", ".*_cache")
#: Modules that only run inside another program (Alembic's environment).
NOT_IMPORTABLE_ALONE = ("mission_control.db.migrations",)


def _distribution(requirement: str) -> str:
    name = requirement.split(";")[0]
    for stop in "[<>=!~ ":
        name = name.split(stop)[0]
    return name.strip().lower()


def _extra(name: str) -> set[str]:
    return {_distribution(r) for r in PYPROJECT["project"]["optional-dependencies"][name]}


def _base() -> set[str]:
    return {_distribution(r) for r in PYPROJECT["project"]["dependencies"]}


@pytest.mark.parametrize("side", sorted(SIDES))
def test_each_extra_names_only_its_own_side(side: str) -> None:
    extra, _, own, foreign, _ = SIDES[side]
    wanted = _base() | _extra(extra)
    assert set(own) <= wanted, f"{extra} misses {set(own) - wanted}"
    assert not wanted & set(foreign), f"{extra} installs {wanted & set(foreign)}"


def test_the_development_extra_installs_both_sides() -> None:
    assert (
        "managed-orchestrator[node,mission-control]"
        in PYPROJECT["project"]["optional-dependencies"]["dev"]
    )


IMPORT_ALL = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys
    packages, skip = sys.argv[1].split(","), tuple(sys.argv[2].split(","))
    for name in packages:
        package = importlib.import_module(name)
        for info in pkgutil.walk_packages(package.__path__, name + "."):
            if not info.name.startswith(skip) and not info.name.endswith(".__main__"):
                importlib.import_module(info.name)
    print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
    """
)


#: The distributions an environment holds, by normalised name.
INSTALLED = (
    "import importlib.metadata as m, json, re; "
    "print(json.dumps([re.sub(r'[-_.]+', '-', d.metadata['Name']).lower() "
    "for d in m.distributions()]))"
)


def _loaded(python: str, packages: tuple[str, ...], cwd: Path) -> set[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [python, "-c", IMPORT_ALL, ",".join(packages), ",".join(NOT_IMPORTABLE_ALONE)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return set(json.loads(done.stdout))


@pytest.mark.parametrize("side", sorted(SIDES))
def test_every_module_of_a_side_imports_without_the_other_sides_dependencies(side: str) -> None:
    _, packages, _, foreign, _ = SIDES[side]
    loaded = _loaded(sys.executable, packages, ROOT)
    assert set(packages) <= loaded
    assert not loaded & set(foreign.values()), f"{side} loaded {loaded & set(foreign.values())}"


@pytest.mark.slow
@pytest.mark.parametrize("side", sorted(SIDES))
def test_a_side_installed_alone_runs(side: str, tmp_path: Path) -> None:
    """Install the extra into an empty virtual environment and use it from outside the tree."""
    extra, packages, own, foreign, command = SIDES[side]
    venv = tmp_path / "venv"
    # An environment without pip of its own (ensurepip costs more than the rest of the set-up):
    # this interpreter's pip installs into it. No byte-compiling of every installed module
    # either: what is checked here (which modules a command loads) does not depend on it.
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    python = str(venv / "bin" / "python")
    pip = [sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-input"]
    # From a clean copy: a `build/` directory left in the tree would bring back stale modules.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*LEFT_BEHIND))
    installed = subprocess.run(
        [*pip, "--no-compile", f"{source}[{extra}]"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    loaded = _loaded(python, packages, tmp_path)
    assert not loaded & set(foreign.values())
    helped = subprocess.run(
        [str(venv / "bin" / command), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert helped.returncode == 0 and "Usage" in helped.stdout, helped.stderr[-2000:]
    names = subprocess.run(
        [python, "-c", INSTALLED],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    wrongly = set(json.loads(names.stdout)) & set(foreign)
    assert not wrongly, f"{sorted(wrongly)} installed with [{extra}]"
