"""Who decides a support change at the command line, and the trace of attempts refused.

Without `approver_groups` in the cluster's support policy, the decider is the `--operator`
name (env `MANAGED_OPERATOR`, default the login name): a holder of the cluster's credential
names whom they like. With them set, approving, denying, revoking and changing the support
settings need the operator's `managed login`: the verified person (in one of those groups,
checked against the provider's keys now) decides and is named, and an approval embeds their ID
token so the leader and Mission Control can check it too.

A refused attempt (no login, an expired or altered one, another provider's, a person outside
the groups) changes nothing but leaves one audit entry, ``support.decision.refused``, naming
the action, what it aimed at, the reason, and the `--operator` name given (marked unverified:
nothing proves it): a credential holder trying to decide without being an approver is seen.
When even that entry cannot be written (the credential is wrong), the refusal still stands
and its line says the entry is missing.

The same login guards `managed cluster secure` and the commands that change a guarded setting
(`cluster.guarded`: backup key, target and mirrors, the Mission Control URL and CA), with
``settings.change.refused`` entries naming the credential's user as the claimed person.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from cluster.cli.common import Globals
    from cluster.support.store import SupportStore
    from cluster.zk import ZooKeeper
    from contract.audit.events import Actor
    from contract.support.approval import ApproverIdentity

F = TypeVar("F", bound=Callable[..., Any])
#: How an unverified `--operator` name is marked in the audit entry of a refused attempt.
UNVERIFIED = "unverified --operator"
#: The audit action of a refused change of a guarded setting (or of `managed cluster secure`).
GUARDED_REFUSED = "settings.change.refused"


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown-operator"


def operator_option(f: F) -> F:
    return click.option(
        "--operator",
        envvar="MANAGED_OPERATOR",
        default=_login_name,
        show_default="your login name",
        help="Who decides; recorded in the audit log (env MANAGED_OPERATOR).",
    )(f)


def operator_actor(name: str) -> Actor:
    """The `--operator` name as an actor; one clear line when it is empty."""
    from contract.audit.events import Actor, ActorKind

    if not name.strip():
        raise click.BadParameter("the operator name must not be empty", param_hint="--operator")
    return Actor(name.strip(), ActorKind.OPERATOR)


def decider(store: SupportStore, operator: str, action: str, subject: str) -> Actor:
    """Who decides `action` on `subject` (see `verified_decider`)."""
    actor, _ = verified_decider(store, operator, action, subject)
    return actor


def guarded_changer(client: ZooKeeper, g: Globals, action: str, subject: str) -> Actor:
    """Who changes a guarded setting or secures the cluster (`action` on `subject`): the
    credential's user without approver groups; with them, the operator's verified `managed
    login`, as for support decisions. A refusal changes nothing, is audited as
    ``settings.change.refused`` and ends in one line (`click.ClickException`)."""
    from cluster.support.store import SupportStore

    claimed = g.operator(action)
    store = SupportStore(client, g.paths, auth=g.zk_auth)
    actor, identity = verified_decider(
        store, claimed.name, action, subject, refused_action=GUARDED_REFUSED
    )
    return claimed if identity is None else actor


def verified_decider(
    store: SupportStore,
    operator: str,
    action: str,
    subject: str,
    *,
    refused_action: str = "support.decision.refused",
) -> tuple[Actor, ApproverIdentity | None]:
    """Who decides `action` on `subject` (a request id, or ``policy``), with the ID token an
    approval, a denial or a revocation carries; the `--operator` name and no token without
    approver groups. A refusal is audited (`refused_action`), then ends in one line
    (`click.ClickException`)."""
    import os
    import time
    from pathlib import Path

    from cluster.operator_identity import LoginFailed, identity_path, verified_approver
    from contract.audit.events import Actor, ActorKind
    from contract.support.approval import ApproverIdentity

    policy, _ = store.policy()
    if not policy.approver_groups:
        return operator_actor(operator), None
    ca = os.environ.get("MANAGED_OIDC_CA")
    try:
        person, id_token = verified_approver(
            identity_path(),
            issuer=policy.approver_issuer,
            client_id=policy.approver_client_id,
            approver_groups=policy.approver_groups,
            ca_file=Path(ca) if ca else None,
            now=time.time(),
        )
    except LoginFailed as e:
        line = _refused(store, operator, action, subject, str(e), refused_action)
        raise click.ClickException(line) from e
    actor = Actor(person.label, ActorKind.OPERATOR, via=f"oidc {person.issuer}")
    identity = ApproverIdentity(policy.approver_issuer, policy.approver_client_id, id_token)
    return actor, identity


def _refused(
    store: SupportStore, operator: str, action: str, subject: str, reason: str, audit_action: str
) -> str:
    """Audit the refused attempt; the line to show."""
    from datetime import UTC, datetime

    from cluster.errors import ClusterError
    from cluster.zk import OpFailed
    from contract.audit.events import Actor, ActorKind

    claimed = Actor(operator.strip() or "unknown-operator", ActorKind.OPERATOR, via=UNVERIFIED)
    try:
        store.record_refused(
            claimed, action, subject, reason, datetime.now(UTC), audit_action=audit_action
        )
    except (ClusterError, OpFailed) as e:
        return f"{reason} (and the refusal could not be audited: {e})"
    return reason
