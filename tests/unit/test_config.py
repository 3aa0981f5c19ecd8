"""Settings: layering and validation, no servers."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.config import load
from cluster.errors import ConfigError


def test_defaults_satisfy_the_timing_rule() -> None:
    s = load(node="n1")
    assert s.loop_interval + 2 * s.retry_timeout <= s.session_timeout


def test_timing_rule_is_enforced_with_a_clear_message(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text("session_timeout = 3\nloop_interval = 1\nretry_timeout = 2\n")
    with pytest.raises(ConfigError, match=r"loop_interval \+ 2 \* retry_timeout"):
        load(f, node="n1")


def test_file_then_environment_then_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = tmp_path / "c.toml"
    f.write_text('[node]\nzk = "file:1"\ncluster = "fromfile"\nsession_timeout = 12\n')
    s = load(f, node="n1")
    assert (s.zk, s.cluster, s.session_timeout) == ("file:1", "fromfile", 12)
    monkeypatch.setenv("MANAGED_ZK", "env:1")
    s = load(f, node="n1")
    assert (s.zk, s.cluster) == ("env:1", "fromfile")
    s = load(f, node="n1", zk="cli:1")
    assert s.zk == "cli:1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("session_timeout = -1", "session_timeout"),
        ('session_timeout = "soon"', "number of seconds"),
        ('cluster = "Bad Name"', "cluster"),
        ("unknown_key = 1", "unknown_key"),
        ("session_timeout = ", "not valid TOML"),
        ('listen = "nohost"', "HOST:PORT"),
    ],
)
def test_bad_settings_give_one_line(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "c.toml"
    f.write_text(text + "\n")
    with pytest.raises(ConfigError, match=message) as e:
        load(f, node="n1")
    assert "\n" not in str(e.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load(tmp_path / "nope.toml", node="n1")


def test_environment_timing_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MANAGED_SESSION_TIMEOUT", "1")
    with pytest.raises(ConfigError, match="session_timeout"):
        load(node="n1")
