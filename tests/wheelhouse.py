"""Real wheels for upgrade tests, made on this machine: nothing is fetched.

- The project's wheel at another version: the source tree's packages with the installed
  distribution's metadata, the version changed. It is written here as a PEP 427 zip rather
  than by `pip wheel`, because the build backend `pyproject.toml` needs (setuptools >= 77) is
  not installed in the venv and cannot be fetched during a test.
- Every wheel `managed-orchestrator[node]` needs, repacked from the distributions installed in
  this venv (their files as listed in RECORD, the `WHEEL` tags kept), so a node installs a
  release with `pip install --no-index` from the bundle alone, as in production.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PROJECT = "managed-orchestrator"
PACKAGES = ("contract", "cluster", "mission_control", "backup")
SOURCE = Path(__file__).resolve().parent.parent
SKIPPED = ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def write_wheel(path: Path, files: dict[str, bytes], dist_info: str) -> Path:
    import zipfile

    lines = [_record_line(n, d) for n, d in files.items()] + [f"{dist_info}/RECORD,,"]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for name, data in files.items():
            z.writestr(name, data)
        z.writestr(f"{dist_info}/RECORD", "\n".join(lines) + "\n")
    return path


def _wheel_name(name: str, version: str, tag: str) -> str:
    return f"{canonicalize_name(name).replace('-', '_')}-{version}-{tag}.whl"


def repack(dist: metadata.Distribution, out: Path) -> Path:
    """An installed distribution as a wheel (scripts outside site-packages are left out: pip
    makes console scripts again from entry_points.txt)."""
    files: dict[str, bytes] = {}
    for f in dist.files or []:
        name = str(f)
        if name.startswith("..") or "__pycache__" in name or name.endswith(".pyc"):
            continue
        if ".dist-info/" in name and name.rsplit("/", 1)[-1] in SKIPPED:
            continue
        full = Path(str(f.locate()))
        if full.is_file():
            files[name] = full.read_bytes()
    dist_info = next(n.split("/")[0] for n in files if n.split("/")[0].endswith(".dist-info"))
    tags = re.findall(r"^Tag: (\S+)$", files[f"{dist_info}/WHEEL"].decode(), re.M)
    assert tags, dist.metadata["Name"]
    parts = [sorted({t.split("-")[i] for t in tags}) for i in range(3)]
    name = _wheel_name(dist.metadata["Name"], dist.version, "-".join(".".join(p) for p in parts))
    return write_wheel(out / name, files, dist_info)


def node_closure() -> list[metadata.Distribution]:
    """The installed distributions `managed-orchestrator[node]` needs, the project excluded."""
    wanted: dict[str, set[str]] = {}
    todo: list[tuple[str, set[str]]] = [(PROJECT, {"node"})]
    while todo:
        name, extras = todo.pop()
        key = canonicalize_name(name)
        if key in wanted and extras <= wanted[key]:
            continue
        wanted[key] = wanted.get(key, set()) | extras
        requires = requirements() if key == PROJECT else metadata.distribution(name).requires
        for line in requires or []:
            req = Requirement(line)
            if req.marker and not any(req.marker.evaluate({"extra": e}) for e in extras | {""}):
                continue
            todo.append((req.name, set(req.extras)))
    return [metadata.distribution(n) for n in sorted(wanted) if n != PROJECT]


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((SOURCE / "pyproject.toml").read_text())["project"]  # type: ignore[no-any-return]


def requirements() -> list[str]:
    """The project's requirements as Requires-Dist lines, from pyproject.toml (the installed
    editable metadata may be older than the source tree)."""
    project = _pyproject()
    lines = list(project["dependencies"])
    for extra, reqs in project["optional-dependencies"].items():
        lines += [f'{r}; extra == "{extra}"' for r in reqs]
    return lines


def _metadata(version: str) -> bytes:
    project = _pyproject()
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {PROJECT}",
        f"Version: {version}",
        f"Summary: {project['description']}",
        f"Requires-Python: {project['requires-python']}",
    ]
    lines += [f"Provides-Extra: {e}" for e in project["optional-dependencies"]]
    lines += [f"Requires-Dist: {r}" for r in requirements()]
    return ("\n".join(lines) + "\n").encode()


def dependency_wheels(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    return [repack(d, out) for d in node_closure()]


def project_wheel(out: Path, version: str, main_prefix: str = "") -> Path:
    """The project at `version`, from this source tree; `main_prefix` is run first when the
    CLI module is imported (a release made to fail at start, or to be unhealthy)."""
    files: dict[str, bytes] = {}
    for package in PACKAGES:
        for path in sorted((SOURCE / package).rglob("*")):
            rel = path.relative_to(SOURCE).as_posix()
            if path.is_file() and "__pycache__" not in rel and not rel.endswith(".pyc"):
                files[rel] = path.read_bytes()
    if main_prefix:
        key = "cluster/cli/__init__.py"
        future = b"from __future__ import annotations\n"
        head, sep, rest = files[key].partition(future)  # which must stay the first statement
        files[key] = head + sep + main_prefix.encode() + b"\n" + rest
    dist_info = f"{PROJECT.replace('-', '_')}-{version}.dist-info"
    files[f"{dist_info}/METADATA"] = _metadata(version)
    scripts = _pyproject()["scripts"]
    entry_points = "[console_scripts]\n" + "".join(f"{k} = {v}\n" for k, v in scripts.items())
    files[f"{dist_info}/entry_points.txt"] = entry_points.encode()
    files[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: tests/wheelhouse.py\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n"
    )
    out.mkdir(parents=True, exist_ok=True)
    return write_wheel(out / _wheel_name(PROJECT, version, "py3-none-any"), files, dist_info)


def copy_all(wheels: list[Path], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy2(w, out / w.name)) for w in wheels]
