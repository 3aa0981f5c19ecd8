"""The data settings and tokens in ZooKeeper: every change made by an operator is audited.

Layout (under `<cluster>/`)::

    config                      the cluster config; section `data` (`cluster.data.settings`)
    data/tokens/<id>            one `TokenRecord` (the token's SHA-256, never the token)
    data/jobs/job-<ms>-<rand>   forget and remask requests, in order: {kind, env, tag_hash, at}
    data/jobs/<job>/<node>      a node's report that it applied the job (what it changed)
    data/endpoints/<node>       ephemeral: the node's HTTPS data address while it serves

Guarantees: a settings change is validated whole, then written with the config's version in the
same transaction as its audit entry (both or neither; retried when someone else changed the
config meanwhile); token creation and revocation are audited the same way. Every znode gets the
cluster's ACL (`ZooKeeper.acl_for`). Jobs stay after they ran, so a node that was down, or whose
store is restored from an older backup, applies them when it comes back. Does not guarantee:
that a job reached a node that never comes back.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cluster.audit.store import AuditLog
from cluster.backups.config_store import read_config
from cluster.data.settings import DataSettings, DataSettingsError
from cluster.data.store import tag_hash
from cluster.data.tokens import TokenRecord
from cluster.errors import ClusterError
from cluster.paths import ClusterPaths
from cluster.zk import Create, Delete, OpFailed, SetData, ZooKeeper
from cluster.zk.errors import NodeExistsError, NoNodeError
from contract.audit.canonical import JsonValue
from contract.audit.events import Actor, AuditEvent

ATTEMPTS = 10


@dataclass(frozen=True)
class DataPaths:
    cluster: ClusterPaths

    @property
    def base(self) -> str:
        return f"{self.cluster.base}/data"

    @property
    def tokens(self) -> str:
        return f"{self.base}/tokens"

    @property
    def jobs(self) -> str:
        return f"{self.base}/jobs"

    @property
    def endpoints(self) -> str:
        return f"{self.base}/endpoints"

    def token(self, token_id: str) -> str:
        return f"{self.tokens}/{token_id}"

    def job(self, name: str) -> str:
        return f"{self.jobs}/{name}"

    def endpoint(self, node: str) -> str:
        return f"{self.endpoints}/{node}"

    def ensure(self, client: ZooKeeper) -> None:
        for path in (self.tokens, self.jobs, self.endpoints):
            client.ensure_path(path)


def read_settings(client: ZooKeeper, paths: ClusterPaths) -> DataSettings:
    return DataSettings.from_config(read_config(client, paths)[0])


def change_settings(
    client: ZooKeeper,
    paths: ClusterPaths,
    actor: Actor,
    action: str,
    subject: str,
    change: Callable[[DataSettings], tuple[DataSettings, dict[str, JsonValue]]],
) -> DataSettings:
    """Apply `change` (settings -> new settings and the audit detail), validate, and write it
    with its audit entry in one transaction."""
    for _ in range(ATTEMPTS):
        config, version = read_config(client, paths)
        new, detail = change(DataSettings.from_config(config))
        written = {**config, "data": new.to_config()}
        DataSettings.from_config(written)  # what is written must read back
        now = datetime.now(UTC)
        event = AuditEvent(now, actor, action, paths.cluster, subject, detail)
        data = json.dumps(written, sort_keys=True).encode()
        try:
            AuditLog(client, paths).append([event], now, [SetData(paths.config, data, version)])
        except OpFailed:
            continue
        return new
    raise DataSettingsError("the cluster config kept changing; try again")


def list_tokens(client: ZooKeeper, paths: ClusterPaths) -> list[TokenRecord]:
    dp = DataPaths(paths)
    records = []
    for name in sorted(client.children_or_none(dp.tokens)):
        found = client.find(dp.token(name))
        if found is not None:
            try:
                records.append(TokenRecord.from_json(json.loads(found[0])))
            except (ValueError, KeyError, TypeError):
                continue  # a damaged record opens nothing
    return records


def add_token(client: ZooKeeper, paths: ClusterPaths, actor: Actor, record: TokenRecord) -> None:
    dp = DataPaths(paths)
    dp.ensure(client)
    now = datetime.now(UTC)
    detail: dict[str, JsonValue] = {
        "id": record.id,
        "scope": record.scope,
        "env": record.env,
        "operator": record.operator,
    }
    event = AuditEvent(now, actor, "data.token.created", paths.cluster, record.id, detail)
    data = json.dumps(record.to_json(), sort_keys=True).encode()
    AuditLog(client, paths).append([event], now, [Create(dp.token(record.id), data)])


def revoke_token(client: ZooKeeper, paths: ClusterPaths, actor: Actor, token_id: str) -> None:
    dp = DataPaths(paths)
    now = datetime.now(UTC)
    event = AuditEvent(now, actor, "data.token.revoked", paths.cluster, token_id, {})
    try:
        AuditLog(client, paths).append([event], now, [Delete(dp.token(token_id))])
    except OpFailed as e:
        if isinstance(e.error, NoNodeError):
            raise ClusterError(f"no token {token_id} (see `managed token list`)") from None
        raise


@dataclass(frozen=True)
class Job:
    name: str  # job-<milliseconds>-<random>: names sort in the order jobs were asked for
    kind: str  # forget | remask
    env: str
    tag_hash: str | None


def submit_job(
    client: ZooKeeper,
    paths: ClusterPaths,
    actor: Actor,
    kind: str,
    env: str,
    tag: str | None = None,
) -> Job:
    """Queue a forget or remask for every node, audited (the tag only as its hash)."""
    dp = DataPaths(paths)
    dp.ensure(client)
    hashed = tag_hash(env, tag) if tag is not None else None
    doc = {"kind": kind, "env": env, "tag_hash": hashed, "at": time.time()}
    now = datetime.now(UTC)
    detail: dict[str, JsonValue] = {"env": env, "tag_hash": hashed}
    event = AuditEvent(now, actor, f"data.{kind}", paths.cluster, env, detail)
    name = f"job-{int(time.time() * 1000):015d}-{secrets.token_hex(4)}"
    AuditLog(client, paths).append([event], now, [Create(dp.job(name), json.dumps(doc).encode())])
    return Job(name, kind, env, hashed)


def read_jobs(client: ZooKeeper, paths: ClusterPaths, done: set[str]) -> list[Job]:
    """The jobs not in `done`, oldest first."""
    dp = DataPaths(paths)
    jobs = []
    for name in sorted(set(client.children_or_none(dp.jobs)) - done):
        found = client.find(dp.job(name))
        if found is None:
            continue
        try:
            doc = json.loads(found[0])
            jobs.append(Job(name, str(doc["kind"]), str(doc["env"]), doc.get("tag_hash")))
        except (ValueError, KeyError, TypeError):
            continue
    return jobs


def report_job(
    client: ZooKeeper, paths: ClusterPaths, job: Job, node: str, result: dict[str, Any]
) -> None:
    # Applied again after a restore: the first report stands.
    with contextlib.suppress(NodeExistsError):
        client.create(f"{DataPaths(paths).job(job.name)}/{node}", json.dumps(result).encode())


def job_reports(client: ZooKeeper, paths: ClusterPaths, job: Job) -> dict[str, dict[str, Any]]:
    base = DataPaths(paths).job(job.name)
    out = {}
    for node in client.children_or_none(base):
        found = client.find(f"{base}/{node}")
        if found is not None:
            out[node] = json.loads(found[0])
    return out


def register_endpoint(client: ZooKeeper, paths: ClusterPaths, node: str, address: str) -> None:
    dp = DataPaths(paths)
    dp.ensure(client)
    data = json.dumps({"address": address}).encode()
    try:
        client.create(dp.endpoint(node), data, ephemeral=True)
    except NodeExistsError:
        client.delete(dp.endpoint(node))  # a previous session's, about to expire anyway
        client.create(dp.endpoint(node), data, ephemeral=True)


def endpoints(client: ZooKeeper, paths: ClusterPaths) -> dict[str, str]:
    """Each serving node's HTTPS data address."""
    dp = DataPaths(paths)
    out = {}
    for node in sorted(client.children_or_none(dp.endpoints)):
        found = client.find(dp.endpoint(node))
        if found is not None:
            out[node] = str(json.loads(found[0])["address"])
    return out
