"""Node settings: defaults < TOML file (`--config`) < environment (`MANAGED_*`) < command line.

Validated once at start; a bad value ends in one clear line naming the setting. The timing rule
is Patroni's: `loop_interval + 2 * retry_timeout <= session_timeout`, so that a leader notices a
lost session and stops before another node can take over.

The file holds its settings either all at top level or all in a `[node]` table, never both; a
top-level string `node = "n1"` is the node id, not the table. Unknown keys are refused.

A plain frozen dataclass rather than a pydantic model: `managed node run` must be live within a
second of starting, and nine settings do not justify pydantic's import and schema cost.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cluster.errors import ConfigError
from cluster.names import check_address, check_credential, check_name, check_node_id

ENV_PREFIX = "MANAGED_"
TIMINGS = ("session_timeout", "loop_interval", "retry_timeout", "offer_interval")


def default_data_dir(cluster: str, node: str) -> Path:
    return Path.home() / ".local" / "share" / "managed" / cluster / node


@dataclass(frozen=True)
class NodeSettings:
    """Everything `managed node run` needs. Environment variables are `MANAGED_<FIELD>`."""

    zk: str = "127.0.0.1:2181"
    cluster: str = "default"
    node: str = ""
    data_dir: Path | None = None
    session_timeout: float = 10.0
    loop_interval: float = 2.0
    retry_timeout: float = 4.0
    listen: str | None = None  # defaults to the roster's api_address
    zk_auth: str | None = None  # USER:PASSWORD: the cluster's credential (required)
    zk_ca: str | None = None  # the CA of ZooKeeper's TLS certificates (required)
    data_listen: str | None = None  # HOST:PORT of the HTTPS data API (ingest, reads, /rum.js)
    tls_cert: Path | None = None  # the data API's certificate chain (PEM)
    tls_key: Path | None = None  # and its private key
    # The CA of the approvers' OpenID Connect provider, when not in the system's store: the
    # leader fetches its keys to check approvals (the same MANAGED_OIDC_CA `managed login` uses).
    oidc_ca: Path | None = None
    # Seconds between the leader's looks for a release Mission Control offers, inside the
    # maintenance window only (`managed upgrade window`).
    offer_interval: float = 60.0

    def __post_init__(self) -> None:
        check_name("cluster", self.cluster)
        if self.node:
            check_node_id(self.node)
        if not self.zk.strip():
            raise ValueError("zk: a ZooKeeper connect string is required")
        for name in TIMINGS:
            value = getattr(self, name)
            # NaN compares false with everything, so `<= 0` alone would let it through.
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a finite number of seconds above 0, not {value}")
        if self.loop_interval + 2 * self.retry_timeout > self.session_timeout:
            raise ValueError(
                f"loop_interval + 2 * retry_timeout ({self.loop_interval:g} + 2 * "
                f"{self.retry_timeout:g}) must not exceed session_timeout "
                f"({self.session_timeout:g})"
            )
        if self.listen is not None:
            check_address(self.listen)
        if self.zk_auth is not None:
            check_credential(self.zk_auth)
        if self.data_listen is not None:
            check_address(self.data_listen)
            if self.tls_cert is None or self.tls_key is None:
                raise ValueError(
                    "data_listen: the data API is served over HTTPS only: give tls_cert and "
                    "tls_key (MANAGED_TLS_CERT, MANAGED_TLS_KEY)"
                )

    def check_access(self) -> None:
        """What a node needs to reach its cluster at all: the credential every znode of the
        cluster is created with, and the CA of ZooKeeper's TLS port. ValueError otherwise."""
        if self.zk_auth is None:
            raise ValueError(
                "zk_auth: a node reaches its cluster only with the cluster's credential "
                "(--zk-auth USER:PASSWORD, env MANAGED_ZK_AUTH)"
            )
        if self.zk_ca is None:
            raise ValueError(
                "zk_ca: ZooKeeper is reached over TLS only: give the CA of its certificates "
                "(--zk-ca FILE, env MANAGED_ZK_CA)"
            )

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir or default_data_dir(self.cluster, self.node)


FIELDS = {f.name: f for f in dataclasses.fields(NodeSettings)}


def _coerce(name: str, value: Any) -> Any:
    """Turn a file, environment or command-line value into the field's type."""
    kind = FIELDS[name].type
    if value is None:
        return None
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"{name} must be a number of seconds")
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"{name} must be a number of seconds, not {value!r}") from None
    if kind == "Path | None":
        if not isinstance(value, str | Path):
            raise ValueError(f"{name} must be a path")
        return Path(value)
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    return value


def read_file(config_file: Path) -> dict[str, Any]:
    """The settings a TOML file holds: top-level keys, or the `[node]` table; never both."""
    try:
        doc = tomllib.loads(config_file.read_text())
    except OSError as e:
        raise ConfigError(f"cannot read config file {config_file}: {e.strerror}") from e
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {config_file} is not valid TOML: {e}") from e
    table = doc.get("node")
    if isinstance(table, dict):
        outside = sorted(set(doc) - {"node"})
        if outside:
            raise ConfigError(
                f"config file {config_file}: {outside[0]} is outside the [node] table: put "
                "every setting in [node] or every setting at top level"
            )
        doc = table
    unknown = sorted(set(doc) - set(FIELDS))
    if unknown:
        raise ConfigError(
            f"config file {config_file}: unknown setting {unknown[0]} "
            f"(known: {', '.join(sorted(FIELDS))})"
        )
    try:
        # Typed here too, so a bad value in the file is reported even when overridden.
        return {k: _coerce(k, v) for k, v in doc.items()}
    except ValueError as e:
        raise ConfigError(f"config file {config_file}: {e}") from e


def load(config_file: Path | None = None, **overrides: Any) -> NodeSettings:
    """Build validated settings; raises `ConfigError` with one readable line on bad input."""
    from_file = read_file(config_file) if config_file is not None else {}
    # An empty variable counts as unset, as click treats the CLI's own env options.
    env = {name: value for name in FIELDS if (value := os.environ.get(ENV_PREFIX + name.upper()))}
    cli = {k: v for k, v in overrides.items() if v is not None}
    merged = {**from_file, **env, **cli}  # defaults < file < environment < command line
    try:
        return NodeSettings(**{k: _coerce(k, v) for k, v in merged.items()})
    except ValueError as e:
        raise ConfigError(f"invalid settings: {e}") from e
