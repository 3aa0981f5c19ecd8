"""What a support command does once `authorize` let it through: pure, testable without servers.

`run_command` takes everything it may look at as arguments (the cluster snapshot, the leader's
health summary, the config, the path of the leader's log) and returns a `CommandResult`.

Guarantees:
- Output and summary are redacted (`redact`, `redact_config`) and the output is at most
  `MAX_OUTPUT_BYTES` of UTF-8 (a log keeps its newest lines).
- `config set` changes only a key of the allowlist (`contract.support.settable.SETTABLE`), never
  a secret key (`check_config_key`), and only to a value that passes the same check the
  operator's own command applies; anything else is refused and nothing changes. It does not
  write: it returns the new config in `new_config` and the caller stores it (compare-and-set,
  with the grant re-checked) together with the answer.
- Nothing here reads secrets; `logs tail` reads only the given log file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from cluster.model import ClusterSnapshot
from cluster.support.settable import apply
from contract.limits import MAX_LOG_LINES, MAX_OUTPUT_BYTES, MAX_SUMMARY_CHARS, printable
from contract.support.commands import DATA_COMMANDS, SupportCommand, check_config_key
from contract.support.redaction import MARK, is_secret_key, redact, redact_config
from contract.support.settable import SettingRefused

DEFAULT_LOG_LINES = 100
#: `logs tail` lines: Mission Control's API and the cluster both use this bound.
_SEGMENT = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
_MAX_DEPTH = 4
_BLOCK = 64 * 1024


class CommandStatus(StrEnum):
    OK = "ok"
    REFUSED = "refused"
    ERROR = "error"


@dataclass(frozen=True)
class CommandResult:
    """What goes back to the engineer (already redacted), and a config to store, if any."""

    status: CommandStatus
    summary: str
    output: str = ""
    new_config: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        # Mission Control refuses (422) a summary with control characters other than tab,
        # newline and return, or longer than MAX_SUMMARY_CHARS (`contract.messages.Text`);
        # an engineer's value or a file name may carry them, and a refused result would be set
        # aside instead of reaching the engineer. Output is made to fit by `limit_output`.
        object.__setattr__(self, "summary", printable(self.summary, MAX_SUMMARY_CHARS))


def _refused(reason: str) -> CommandResult:
    return CommandResult(CommandStatus.REFUSED, redact(reason))


def _error(reason: str) -> CommandResult:
    return CommandResult(CommandStatus.ERROR, redact(reason))


def limit_output(text: str, *, keep_end: bool = False) -> str:
    """Cut `text` to at most `MAX_OUTPUT_BYTES` of UTF-8, keeping its start (or its end), with
    NUL (which Mission Control refuses, `contract.messages.Output`) shown as U+FFFD."""
    text = text.replace("\x00", "\ufffd")
    data = text.encode("utf-8")
    if len(data) <= MAX_OUTPUT_BYTES:
        return text
    cut = data[-MAX_OUTPUT_BYTES:] if keep_end else data[:MAX_OUTPUT_BYTES]
    return cut.decode("utf-8", errors="ignore")


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def _diagnostics(snapshot: ClusterSnapshot, health: Mapping[str, Any]) -> CommandResult:
    status = snapshot.status_json()
    quorum = status["quorum"]
    live = sum(1 for r in status["roster"] if r["live"])
    summary = (
        f"{live}/{len(status['roster'])} nodes live, quorum "
        f"{'ok' if quorum['ok'] else 'NOT MET'} ({quorum['have']}/{quorum['need']}), "
        f"leader {status['leader'] or '-'} (epoch {status['epoch']})"
    )
    doc = {
        "cluster": status,
        "health": {
            "written_by": health.get("leader"),
            "written_at": health.get("at"),
            "nodes": redact_config(health.get("nodes") or {}),
        },
    }
    return CommandResult(CommandStatus.OK, summary, limit_output(redact(_json(doc))))


def _split_key(key: Any) -> list[str] | str:
    """The key's segments, or the reason it is refused."""
    if not isinstance(key, str) or not key.strip():
        return "a config key is required (a dotted name such as backup.schedule)"
    parts = key.split(".")
    if len(parts) > _MAX_DEPTH or not all(_SEGMENT.fullmatch(p) for p in parts):
        return (
            f"invalid config key {key!r}: use up to {_MAX_DEPTH} dotted names of letters, "
            "digits, _ and -"
        )
    return parts


def _lookup(config: Mapping[str, Any], parts: list[str]) -> tuple[bool, Any]:
    node: Any = config
    for part in parts:
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _config_get(config: Mapping[str, Any], arguments: Mapping[str, Any]) -> CommandResult:
    key = arguments.get("key")
    if key in (None, ""):
        shown = redact_config(config)
        summary = f"config: {len(shown)} top-level settings"
        return CommandResult(CommandStatus.OK, summary, limit_output(_json(shown)))
    parts = _split_key(key)
    if isinstance(parts, str):
        return _refused(parts)
    found, value = _lookup(config, parts)
    if not found:
        return _error(f"no setting {key} in the cluster config")
    shown_value = redact_config({str(key): value})[str(key)]
    if any(is_secret_key(p) for p in parts) and value not in (None, ""):
        shown_value = MARK
    return CommandResult(
        CommandStatus.OK, f"config {key}", limit_output(_json({str(key): shown_value}))
    )


def _config_set(config: Mapping[str, Any], arguments: Mapping[str, Any]) -> CommandResult:
    key = arguments.get("key")
    parts = _split_key(key)
    if isinstance(parts, str):
        return _refused(parts)
    key = str(key)
    gate = check_config_key(key)
    if not gate.allowed:
        return _refused(gate.reason)
    if "value" not in arguments:
        return _refused("config set needs a value")
    value = arguments["value"]
    try:
        new, old, stored = apply(config, key, value)
    except SettingRefused as refused:
        return _refused(f"config set {key}: {refused}")
    change = redact_config({"key": key, "old": old, "new": stored})
    summary = redact(f"set {key} to {json.dumps(stored)} (was {json.dumps(old)})")
    return CommandResult(CommandStatus.OK, summary, _json(change), new_config=new)


def tail_lines(path: Path, lines: int) -> list[str]:
    """The last `lines` lines of a file, read backwards in blocks.

    Reads at most `4 * MAX_OUTPUT_BYTES` (the answer is cut to `MAX_OUTPUT_BYTES` anyway), so a
    huge log costs no more than a small one.
    """
    with path.open("rb") as handle:
        position = handle.seek(0, 2)
        data = b""
        while position > 0 and data.count(b"\n") <= lines and len(data) < 4 * MAX_OUTPUT_BYTES:
            step = min(_BLOCK, position)
            position -= step
            handle.seek(position)
            data = handle.read(step) + data
    got = data.decode("utf-8", errors="replace").splitlines()
    if position > 0 and got:
        got = got[1:]  # the first line read is probably cut
    return got[-lines:]


def _logs_tail(arguments: Mapping[str, Any], log_path: Path | None) -> CommandResult:
    raw = arguments.get("lines", DEFAULT_LOG_LINES)
    try:
        lines = int(raw)
    except (TypeError, ValueError):
        return _refused(f"lines must be a number from 1 to {MAX_LOG_LINES}")
    if isinstance(raw, bool) or not 1 <= lines <= MAX_LOG_LINES:
        return _refused(f"lines must be a number from 1 to {MAX_LOG_LINES}")
    if log_path is None:
        return _error("this node keeps no log file")
    try:
        got = tail_lines(log_path, lines)
    except FileNotFoundError:
        return _error(f"no log file at {log_path} yet")
    except OSError as exc:
        return _error(f"cannot read {log_path}: {exc.strerror}")
    output = limit_output("\n".join(redact(line) for line in got), keep_end=True)
    return CommandResult(CommandStatus.OK, f"last {len(got)} lines of {log_path.name}", output)


#: `(kind, arguments, sensitive) -> (ok, summary, output)`: reads monitoring data for a data
#: command (`cluster.data.support_reads`), given by the leader when its node serves data.
DataRead = Callable[[str, Mapping[str, Any], bool], tuple[bool, str, str]]


def _data(command: SupportCommand, arguments: Mapping[str, Any], read: DataRead | None,
          sensitive: bool) -> CommandResult:  # fmt: skip
    if read is None:
        return _refused("this cluster's leader serves no monitoring data (data_listen)")
    kind = command.value.split(" ", 1)[1]
    ok, summary, output = read(kind, arguments, sensitive)
    if not ok:
        return _error(summary)
    return CommandResult(CommandStatus.OK, summary, limit_output(redact(output)))


def run_command(
    command: str,
    arguments: Mapping[str, Any],
    snapshot: ClusterSnapshot,
    health_summary: Mapping[str, Any],
    config: Mapping[str, Any],
    log_path: Path | None,
    data: DataRead | None = None,
    sensitive_data: bool = False,
) -> CommandResult:
    """Run one authorized support command; refusals and errors are results, not exceptions.
    Data commands show sensitive fields only when `sensitive_data` (the grant's)."""
    try:
        wanted = SupportCommand(command)
    except ValueError:
        return _refused(f"unknown command {command!r}")
    if wanted is SupportCommand.DIAGNOSTICS:
        return _diagnostics(snapshot, health_summary)
    if wanted is SupportCommand.CONFIG_GET:
        return _config_get(config, arguments)
    if wanted is SupportCommand.CONFIG_SET:
        return _config_set(config, arguments)
    if wanted in DATA_COMMANDS:
        return _data(wanted, arguments, data, sensitive_data)
    return _logs_tail(arguments, log_path)
