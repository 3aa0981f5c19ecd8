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
        ("session_timeout = 0", "session_timeout"),
        ("session_timeout = nan", "finite"),
        ("loop_interval = inf", "finite"),
        ('session_timeout = "soon"', "number of seconds"),
        ('cluster = "Bad Name"', "cluster"),
        ("unknown_key = 1", "unknown setting unknown_key"),
        ("[node]\nunknown_key = 1", "unknown setting unknown_key"),
        ('zk = "a:1"\n[node]\ncluster = "c"', r"zk is outside the \[node\] table"),
        ("node = 5", "node must be a string"),
        ("[node.extra]\nx = 1", "unknown setting extra"),
        ("data_dir = 5", "data_dir must be a path"),
        ("session_timeout = ", "not valid TOML"),
        ('listen = "nohost"', "HOST:PORT"),
        ('zk_auth = "nocolon"', "USER:PASSWORD"),
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


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "-1", "0", "soon"])
def test_environment_refuses_non_finite_and_non_positive_timings(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("MANAGED_LOOP_INTERVAL", value)
    with pytest.raises(ConfigError, match="loop_interval") as e:
        load(node="n1")
    assert "\n" not in str(e.value)


def test_a_top_level_node_id_is_not_taken_for_the_table(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    # Once, a string `node` made the loader take the whole file for an empty table: the bad
    # timing below was silently dropped.
    f.write_text('node = "n2"\nsession_timeout = 3\nloop_interval = 1\nretry_timeout = 2\n')
    with pytest.raises(ConfigError, match="must not exceed session_timeout"):
        load(f)
    f.write_text('node = "n2"\ncluster = "fromfile"\nsession_timeout = 12\n')
    s = load(f)
    assert (s.node, s.cluster, s.session_timeout) == ("n2", "fromfile", 12)
    assert load(f, node="n1").node == "n1"  # the command line still wins


def test_a_node_table_may_name_the_node(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('[node]\nnode = "n3"\nloop_interval = 1.5\n')
    s = load(f)
    assert (s.node, s.loop_interval) == ("n3", 1.5)


def test_reserved_node_id_is_refused() -> None:
    with pytest.raises(ConfigError, match="reserved"):
        load(node="zookeeper")


def test_an_empty_environment_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MANAGED_ZK_AUTH", "")
    monkeypatch.setenv("MANAGED_SESSION_TIMEOUT", "")
    s = load(node="n1")
    assert (s.zk_auth, s.session_timeout) == (None, 10.0)
