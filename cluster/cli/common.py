"""What every `managed` command shares: global options, ZooKeeper sessions, output, errors."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from cluster import zk
from cluster.names import check_credential, check_name
from cluster.paths import ClusterPaths
from cluster.secrets import SecretsUnavailable
from cluster.zk import ZooKeeper
from contract.audit.events import Actor, ActorKind

#: An existing key file (PEM) given on the command line.
KEY_FILE = click.Path(dir_okay=False, exists=True, path_type=Path)

F = TypeVar("F", bound=Callable[..., Any])
ZK_TIMEOUT = 5.0  # seconds a command waits for ZooKeeper: to connect, then for each answer


@dataclass
class Globals:
    zk_hosts: str
    cluster: str
    zk_auth: str | None = None
    zk_ca: str | None = None

    @property
    def paths(self) -> ClusterPaths:
        return ClusterPaths(self.cluster)

    def operator(self, via: str) -> Actor:
        """The audit log's name for whoever runs this command: the credential's user (the
        only identity a ZooKeeper session proves), and the command it ran."""
        user = (self.zk_auth or "").split(":", 1)[0].strip() or "unknown"
        return Actor(user, ActorKind.OPERATOR, via=via)

    @contextmanager
    def session(self, timeout: float = ZK_TIMEOUT) -> Iterator[ZooKeeper]:
        """A client for one command: connecting, and each request made through `cluster.zk`,
        fail with one clear line after `timeout` seconds instead of hanging. Every command
        needs the cluster's credential: nothing of a cluster is readable without it."""
        if self.zk_auth is None:
            raise SecretsUnavailable(
                "the cluster is readable only with its ZooKeeper credential: pass "
                "--zk-auth USER:PASSWORD or set MANAGED_ZK_AUTH"
            )
        client = zk.connect(self.zk_hosts, timeout=timeout, auth=self.zk_auth, ca_file=self.zk_ca)
        try:
            yield client
        finally:
            zk.close(client)


pass_globals = click.make_pass_decorator(Globals)


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(f)


def emit(as_json: bool, data: Any, text: Callable[[], str]) -> None:
    """Print `data` as JSON or the human text."""
    click.echo(json.dumps(data, indent=2, sort_keys=True) if as_json else text())


def validate_cluster(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    try:
        return check_name("cluster", value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from e


def validate_credential(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> str | None:
    if not value:
        return None  # an empty MANAGED_ZK_AUTH means none
    try:
        return check_credential(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from e
