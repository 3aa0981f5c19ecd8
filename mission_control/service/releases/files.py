"""The files of the release repository that Mission Control serves to clusters.

Guarantees: only files of the repository layout are ever answered (`metadata/<n>.root.json`,
`metadata/{timestamp,snapshot,targets}.json`, `targets/releases/<version>/<file>`); every name is
checked against that shape before it touches the disk, and the resolved path must lie inside
the repository (a symlink pointing out of it is not followed out), so no path reaches anything
else. Anything else, or a file that is not there, is `NotFound`. Nothing here signs or checks
signatures: the cluster's TUF client verifies what it receives.
"""

from __future__ import annotations

import re
from pathlib import Path

from contract.releases import RELEASE_VERSION
from mission_control.errors import NotFound

METADATA_NAME = re.compile(r"^(\d{1,9}\.root|timestamp|snapshot|targets)\.json$")
#: A released file: a wheel or sdist name (no separators, no leading dot).
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,254}$")


def _inside(repo: Path | None, *parts: str) -> Path:
    if repo is None:
        raise NotFound("this Mission Control serves no release repository")
    base = repo.resolve()
    path = base.joinpath(*parts).resolve()
    if not path.is_relative_to(base) or not path.is_file():
        raise NotFound(f"no such release file: {'/'.join(parts)}")
    return path


def metadata_file(repo: Path | None, name: str) -> Path:
    """The metadata file `name` of the repository; NotFound for any other name."""
    if not METADATA_NAME.match(name):
        raise NotFound(f"no such release metadata: {name[:100]}")
    return _inside(repo, "metadata", name)


def target_file(repo: Path | None, version: str, name: str) -> Path:
    """The file `name` of release `version` (target path `releases/<version>/<name>`)."""
    if not RELEASE_VERSION.match(version) or not FILE_NAME.match(name) or ".." in name:
        raise NotFound(f"no such release file: releases/{version[:40]}/{name[:100]}")
    return _inside(repo, "targets", "releases", version, name)
