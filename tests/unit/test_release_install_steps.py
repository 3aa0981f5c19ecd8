"""The install step and the launcher without servers: which version `node run` starts, how the
links move, and that a failed install leaves nothing that could be started."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from wheelhouse import project_wheel

from cluster.upgrade import install


def _fake_install(data: Path, version: str) -> Path:
    """A complete install as far as the launcher can tell (its entry point and marker)."""
    entry = install.entry_point(data, version)
    entry.parent.mkdir(parents=True)
    entry.write_text("#!/bin/sh\n")
    (install.version_dir(data, version) / install.COMPLETE).write_text(version)
    return entry


def test_the_launcher_starts_only_a_complete_other_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(install.LAUNCHED_ENV, raising=False)
    assert install.launch_target(tmp_path, "1.0.0") is None  # no versions/ at all
    install.version_dir(tmp_path, "1.1.0").mkdir(parents=True)
    os.symlink("1.1.0", install.versions_dir(tmp_path) / install.CURRENT)
    assert install.launch_target(tmp_path, "1.0.0") is None  # half-done install: not started
    (install.versions_dir(tmp_path) / install.CURRENT).unlink()
    entry = _fake_install(tmp_path, "1.1.0")
    with pytest.raises(install.InstallError, match="not installed"):
        install.make_current(tmp_path, "1.2.0", "1.0.0")
    install.make_current(tmp_path, "1.1.0", "1.0.0")
    assert install.current_version(tmp_path) == "1.1.0"
    assert install.previous_version(tmp_path) == "1.0.0"
    assert install.launch_target(tmp_path, "1.0.0") == entry
    assert install.launch_target(tmp_path, "1.1.0") is None  # already running it
    monkeypatch.setenv(install.LAUNCHED_ENV, "1.1.0")
    assert install.launch_target(tmp_path, "1.0.0") is None  # launched once: no exec loop
    _fake_install(tmp_path, "1.2.0")
    install.make_current(tmp_path, "1.2.0", "1.1.0")
    assert (install.current_version(tmp_path), install.previous_version(tmp_path)) == (
        "1.2.0",
        "1.1.0",
    )
    with pytest.raises(install.InstallError, match="not a release version"):
        install.version_dir(tmp_path, "../evil")


def test_a_failed_install_leaves_nothing_startable(tmp_path: Path) -> None:
    """The project's wheel alone: pip (no index) cannot find its dependencies."""
    wheels = install.staging_dir(tmp_path, "0.1.1")
    project_wheel(wheels, "0.1.1")
    with install.install_lock(tmp_path):
        with pytest.raises(install.InstallError, match="installing 0.1.1 failed") as failed:
            install.install(tmp_path, "0.1.1")
        busy = pytest.raises(install.InstallError, match="another install is running")
        with busy, install.install_lock(tmp_path):
            pass
    assert "\n" not in str(failed.value)
    assert not install.is_installed(tmp_path, "0.1.1")
    assert not (install.version_dir(tmp_path, "0.1.1") / "venv").exists()
    assert install.current_version(tmp_path) is None
