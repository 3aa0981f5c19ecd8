"""Who may change support state in ZooKeeper (only the credential), a revocation that lands while
a command runs, Mission Control's deadlines and refusals as the leader applies them; on the real
ensemble."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from clusterkit import managed
from kazoo.exceptions import NoAuthError
from kazoo.security import OPEN_ACL_UNSAFE
from supportkit import AUTH, Leader, command_item, later, request_item

from cluster import zk
from cluster.audit.store import CHECKPOINT_KIND, AuditLog
from cluster.secrets import is_protected
from cluster.support.items import CommandItem
from cluster.support.runner import CommandResult
from cluster.support.service import SupportService
from cluster.support.store import SupportStore
from cluster.zk import Op
from contract.audit.events import Actor, ActorKind
from contract.support.errors import InvalidTransition
from contract.support.policy import SupportPolicy
from contract.support.requests import RequestState, approve, revoke

OLGA = Actor("olga", ActorKind.OPERATOR)
OPERATOR = OLGA


def set_mode(leader: Leader, mode: str) -> None:
    SupportStore(leader.client, leader.paths, auth=AUTH).set_policy(
        lambda old: SupportPolicy.from_config({**old.to_config(), "mode": mode}), OLGA, later()
    )


def without_credential(leader: Leader, *args: str) -> tuple[int, str]:
    c = leader.cluster
    r = managed("--zk", c.hosts, "--cluster", c.name, *args)
    return r.returncode, r.stderr.strip()


def test_without_the_credential_nothing_widens_access(leader: Leader) -> None:
    set_mode(leader, "approval")
    policy_before = leader.client.get(leader.paths.support_policy)[0]
    for args in (
        ("support", "mode", "allowed", "--operator", "eve"),
        ("support", "mode", "approval", "--preapproved", "eve"),
        ("support", "deny", "r1", "--reason", "x"),
        ("support", "revoke", "r1", "--yes"),
    ):
        code, err = without_credential(leader, *args)
        assert code == 1, err
        assert err.endswith("pass --zk-auth USER:PASSWORD or set MANAGED_ZK_AUTH"), err
        assert "Traceback" not in err
    assert leader.client.get(leader.paths.support_policy)[0] == policy_before
    # Reading needs it too: nothing of a cluster is readable without its credential.
    code, err = without_credential(leader, "support", "mode", "--json")
    assert code == 1 and err.endswith("pass --zk-auth USER:PASSWORD or set MANAGED_ZK_AUTH")

    # Nor does writing ZooKeeper directly: the znodes and their parents are protected.
    open_client = zk.connect(leader.cluster.hosts)
    try:
        with pytest.raises(NoAuthError):
            open_client.set(leader.paths.support_policy, b'{"mode":"allowed"}')
        with pytest.raises(NoAuthError):
            open_client.delete(leader.paths.support_policy)
        with pytest.raises(NoAuthError):
            # As an outsider would: asking for an open ACL (our client would not send it).
            forged = f"{leader.paths.support_requests}/forged"
            open_client.create(forged, b"{}", acl=OPEN_ACL_UNSAFE)
    finally:
        zk.close(open_client)
    for path in (leader.paths.support, leader.paths.support_policy):
        assert is_protected(leader.client.get_acls(path)[0], AUTH)
    # The wrong credential is one clear line too.
    c = leader.cluster
    r = managed(
        "--zk", c.hosts, "--cluster", c.name, "--zk-auth", "eve:guess", "support", "mode", "off"
    )
    assert r.returncode == 1 and "credential" in r.stderr and "Traceback" not in r.stderr
    assert json.loads(leader.client.get(leader.paths.support_policy)[0])["mode"] == "approval"


def test_the_leader_protects_znodes_left_open_by_an_older_version(leader: Leader) -> None:
    # As an older version wrote them: open ACLs, a policy that pre-approves someone.
    leader.client.create(leader.paths.support, acl=OPEN_ACL_UNSAFE)
    leader.client.create(leader.paths.support_requests, acl=OPEN_ACL_UNSAFE)
    leader.client.create(leader.paths.support_policy, b'{"mode":"approval"}', acl=OPEN_ACL_UNSAFE)
    leader.heartbeat(later(minutes=1))
    for path in (leader.paths.support, leader.paths.support_requests, leader.paths.support_policy):
        assert is_protected(leader.client.get_acls(path)[0], AUTH), path
    (entry,) = [e for e in AuditLog(leader.client, leader.paths).entries()]
    assert (entry.action, entry.actor.name) == ("support.protected", "system")
    assert entry.detail["policy"] == SupportPolicy().to_config()


def test_a_revocation_while_a_command_runs_refuses_it_and_changes_nothing(
    leader: Leader,
) -> None:
    leader.client.set(leader.paths.config, json.dumps({"geography": "EU", "backup": {}}).encode())
    set_mode(leader, "allowed")
    item = request_item(cluster=leader.paths.cluster, role="user")
    leader.heartbeat(later(minutes=1), [item])

    class RevokedMeanwhile(SupportService):
        """Runs the command, then lets an operator revoke before the answer commits."""

        revoked = False

        def _execute(
            self, store: SupportStore, item: CommandItem
        ) -> tuple[CommandResult, list[Op]]:
            result = super()._execute(store, item)
            if not self.revoked:
                self.revoked = True
                operator = SupportStore(store.client, store.paths, auth=AUTH)
                operator.change(
                    item.request_id, lambda r: revoke(r, OLGA, later(minutes=2)), later(minutes=2)
                )
            return result

    service = RevokedMeanwhile(log_path=leader.service.log_path)
    change = command_item(item["id"], "config set", key="backup.bandwidth_limit", value="1MiB/s")
    leader.heartbeat(later(minutes=2), commands=[change], service=service)
    assert service.revoked
    config = json.loads(leader.client.get(leader.paths.config)[0])
    assert config == {"geography": "EU", "backup": {}}  # the config write was not committed
    (result,) = [m.payload for m in leader.outbox("support/command-result")]
    assert result["status"] == "refused" and "was closed" in result["summary"]
    assert leader.audit_actions()[-2:] == ["support.revoked", "support.command.refused"]


def test_mission_controls_deadline_is_honoured(leader: Leader) -> None:
    now = datetime.now(UTC)
    soon = now + timedelta(hours=1)
    item = request_item(
        cluster=leader.paths.cluster, requested_at=now, pending_until=soon.isoformat()
    )
    late = request_item(
        cluster=leader.paths.cluster,
        requested_at=now - timedelta(days=5),
        pending_until=(now - timedelta(days=1)).isoformat(),
    )
    leader.heartbeat(now, [item, late])
    store = SupportStore(leader.client, leader.paths)
    stored = store.get(item["id"])
    assert stored is not None and stored.request.pending_until == soon  # not now + 4 days
    expired = store.get(late["id"])
    assert expired is not None and expired.request.state is RequestState.EXPIRED
    # After Mission Control's deadline an operator's approval is refused with a clear line
    # (what `managed support approve` prints), although the cluster's own 4 days are not over.
    signer = SupportStore(leader.client, leader.paths, auth=AUTH)
    after = soon + timedelta(seconds=1)
    with pytest.raises(InvalidTransition, match="expired at .*; the engineer must ask again"):
        signer.change(
            item["id"], lambda r: approve(r, OPERATOR, after, policy=SupportPolicy()), after
        )
    leader.heartbeat(after)
    swept = store.get(item["id"])
    assert swept is not None and swept.request.state is RequestState.EXPIRED


def test_an_approval_mission_control_refused_is_closed_here(leader: Leader) -> None:
    set_mode(leader, "allowed")
    item = request_item(cluster=leader.paths.cluster)
    leader.heartbeat(later(minutes=1), [item])
    refused = dict(
        item,
        state="revoked",
        state_changed_by="system",
        state_reason="Mission Control refused the approval: starts before the request was made",
    )
    diag = command_item(item["id"], "diagnostics")
    leader.heartbeat(later(minutes=2), [refused], commands=[diag])
    stored = SupportStore(leader.client, leader.paths).get(item["id"])
    assert stored is not None and stored.request.state is RequestState.REVOKED
    assert stored.request.grant is not None and "starts before" in str(
        stored.request.grant.close_reason
    )
    states = [m.payload["state"] for m in leader.outbox("support/decision")]
    assert states == ["approved", "revoked"]
    (result,) = [m.payload for m in leader.outbox("support/command-result")]
    assert result["status"] == "refused"
    assert "support.approval.refused" in leader.audit_actions()


def test_each_signed_checkpoint_is_queued_for_mission_control(leader: Leader) -> None:
    set_mode(leader, "allowed")  # the first entry: a checkpoint is due at once
    leader.heartbeat(later(minutes=1), [request_item(cluster=leader.paths.cluster)])
    copies = [m.payload for m in leader.outbox(CHECKPOINT_KIND)]
    local, _ = AuditLog(leader.client, leader.paths).checkpoints()
    assert copies and copies == [c.to_json() for c in local]
