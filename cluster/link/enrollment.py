"""Enrolling a cluster with Mission Control: token in, credential stored, link configured.

Guarantees: everything that can be checked is checked before the one-time token is spent
(ZooKeeper reachable, the secrets credential works, the CA file a readable PEM certificate, the
URL acceptable, the outage limit sane); afterwards the credential (secret, digest ACL) and the
link (config: URL, CA, intervals, outage limit, outbox bound, enrollment time) are stored in one
ZooKeeper transaction, so a cluster is never left half-enrolled.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from cluster import zk
from cluster.errors import ClusterError
from cluster.link.credentials import CREDENTIAL_SECRET, RENEWAL_SECRET, secret_op
from cluster.link.settings import DEFAULT_OUTAGE_LIMIT_DAYS, OutboxBound, check_outage_limit_days
from cluster.paths import ClusterPaths
from cluster.secrets import parse_auth, read_secret
from cluster.zk import SetData, ZooKeeper
from cluster.zk.errors import BadVersionError
from contract.messages import EnrollReply


class EnrollmentError(ClusterError):
    """Enrollment was refused or could not be stored."""


@dataclass(frozen=True)
class Enrolled:
    cluster_id: str
    name: str
    geography: str


def check_ca_file(ca_file: str) -> None:
    """EnrollmentError (one line) unless `ca_file` holds a PEM certificate TLS can use."""
    from cluster.link.client import verifying_context

    try:
        verifying_context(ca_file)
    except ValueError as e:
        raise EnrollmentError(str(e)) from None


def preflight(client: ZooKeeper, paths: ClusterPaths, auth: str | None) -> None:
    """Fail early, before the token is spent, if the credential could not be stored."""
    parse_auth(auth)
    zk.ensure_cluster(client, paths)
    read_secret(client, paths, auth, CREDENTIAL_SECRET)  # wrong credential -> clear error


async def exchange_token(url: str, token: str, ca_file: str | None) -> tuple[Enrolled, EnrollReply]:
    from cluster.link.client import MissionControlClient
    from cluster.link.errors import MessageRejected, MissionControlUnavailable

    try:
        async with MissionControlClient(url, credential=None, ca_file=ca_file) as mc:
            reply = await mc.enroll(token)
    except MessageRejected as e:
        raise EnrollmentError(f"Mission Control refused the enrollment: {e}") from e
    except (MissionControlUnavailable, ValueError) as e:
        raise EnrollmentError(str(e)) from e
    return Enrolled(reply.cluster_id, reply.name, reply.geography), reply


def store(
    client: ZooKeeper,
    paths: ClusterPaths,
    auth: str | None,
    enrolled: Enrolled,
    credential: str,
    link: dict[str, Any],
    renewal: str | None = None,
) -> None:
    """Credential, renewal secret and link in one transaction (retried if the config changed
    meanwhile)."""
    client.ensure_path(f"{paths.base}/secrets")
    for _ in range(10):
        data, stat = client.get(paths.config)
        config = json.loads(data or b"{}")
        config["mission_control"] = {**link, "cluster_id": enrolled.cluster_id}
        config.setdefault("geography", enrolled.geography)
        secrets = [secret_op(client, paths, auth, CREDENTIAL_SECRET, credential)]
        if renewal is not None:
            secrets.append(secret_op(client, paths, auth, RENEWAL_SECRET, renewal))
        updated = json.dumps(config, sort_keys=True).encode()
        outcome = client.commit([*secrets, SetData(paths.config, updated, stat.version)])
        results = outcome.results
        if outcome.applied:
            return
        if not isinstance(results[-1], BadVersionError):
            raise EnrollmentError(
                f"could not store the enrollment: {[type(r).__name__ for r in results]}"
            )
    raise EnrollmentError("the cluster config kept changing; enroll again")


def enroll(
    client: ZooKeeper,
    paths: ClusterPaths,
    auth: str | None,
    url: str,
    token: str,
    ca_pem: str | None,
    ca_file: str | None,
    intervals: dict[str, float],
    *,
    outage_limit_days: float = DEFAULT_OUTAGE_LIMIT_DAYS,
    outbox: OutboxBound | None = None,
    now: float | None = None,
) -> Enrolled:
    """Check everything, spend `token`, store the credential and the link; `EnrollmentError`
    (one line) on any refusal, before the token is spent wherever it can be checked first."""
    try:
        days = check_outage_limit_days(outage_limit_days)
    except ValueError as e:
        raise EnrollmentError(str(e)) from None
    if ca_file:
        check_ca_file(ca_file)
    preflight(client, paths, auth)
    enrolled, reply = asyncio.run(exchange_token(url, token, ca_file))
    link: dict[str, Any] = {
        "url": url,
        "intervals": intervals,
        "outage_limit_days": days,
        "outbox": (outbox or OutboxBound()).to_json(),
        # The outage limit counts from here until Mission Control is first reached.
        "enrolled_at": time.time() if now is None else now,
    }
    if ca_pem:
        link["ca_pem"] = ca_pem
    store(client, paths, auth, enrolled, reply.credential, link, reply.renewal_secret)
    return enrolled
