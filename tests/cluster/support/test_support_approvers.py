"""Approvals by a verified person: with `approver_groups` set on the cluster, approving,
denying, revoking and changing the support settings need the operator's `managed login` at the
cluster's provider (a real device-flow provider process), verified against its keys and in an
approver group; the decision and the audit log name the verified person, never the
`--operator` name, and a denial or revocation sends Mission Control that person's ID token.
Without a login, with an expired one, or as a person outside the groups: refused, nothing
changes. The approval embeds the approver's ID token, and the leader checks it again before it
acts: approvals a holder of the cluster's credential wrote with a token that does not prove the
person are withdrawn and audited. Securing the cluster and redirecting settings need the login
too."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from device_kit import CLIENT, DeviceProvider, device_provider, logged_in, run_login
from supportkit import AUTH, CliResult, Leader, command_item, request_item

from cluster.audit.store import AuditLog
from cluster.cli.deciders import UNVERIFIED
from cluster.operator_identity import StoredIdentity, load_identity, save_identity
from cluster.support import keys
from cluster.support.service import SupportService
from cluster.support.store import SupportStore
from contract.audit.events import Actor, ActorKind
from contract.support.approval import ApproverIdentity
from contract.support.requests import approve


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeviceProvider]:
    with device_provider(tmp_path_factory.mktemp("device-provider")) as running:
        yield running


def env_for(home: Path, provider: DeviceProvider) -> dict[str, str]:
    return {"XDG_CONFIG_HOME": str(home), "MANAGED_OIDC_CA": str(provider.tls.ca_cert)}


def require_approvers(
    leader: Leader, provider: DeviceProvider, home: Path, *more: str
) -> CliResult:
    """`managed support mode ... --approver-groups cluster-approvers` at `provider`."""
    group, issuer, client = "cluster-approvers", provider.issuer, CLIENT
    return leader.cli(
        "support",
        "mode",
        *more,
        "--approver-groups",
        group,
        "--approver-issuer",
        issuer,
        "--approver-client-id",
        client,
        env=env_for(home, provider),
    )


def test_only_a_verified_approver_decides_and_is_named(
    leader: Leader, provider: DeviceProvider, tmp_path: Path
) -> None:
    olga, tim, nobody = tmp_path / "olga", tmp_path / "tim", tmp_path / "nobody"
    changed = require_approvers(leader, provider, nobody, "approval", "--operator", "root")
    assert changed.returncode == 0, changed.stderr
    assert "approvers     cluster-approvers at https://" in changed.stdout
    item = request_item(
        cluster=leader.paths.cluster,
        role="user",
        hours=2,
        requested_at=datetime.now(UTC) - timedelta(minutes=1),
    )
    leader.heartbeat(datetime.now(UTC), [item])

    # Nobody logged in: refused, whatever --operator says; the request stays pending.
    refused = leader.cli(
        "support", "approve", item["id"], "--operator", "root", env=env_for(nobody, provider)
    )
    assert refused.returncode == 1 and "managed login" in refused.stderr, refused.stderr
    # A verified person outside the approver groups: refused.
    assert run_login(provider, tim, "u-1002", approve=True).returncode == 0
    refused = leader.cli("support", "approve", item["id"], env=env_for(tim, provider))
    assert refused.returncode == 1 and "none of the approver groups" in refused.stderr
    # A login whose stored token was altered (groups added) does not verify.
    stored = load_identity(tim / "managed" / "identity.json", time.time())
    header, payload, signature = stored.id_token.split(".")
    forged = StoredIdentity(**{**stored.__dict__, "id_token": f"{header}.{payload}x.{signature}"})
    save_identity(tim / "managed" / "identity.json", forged)
    refused = leader.cli("support", "approve", item["id"], env=env_for(tim, provider))
    assert refused.returncode == 1 and "not allowed to decide" in refused.stderr
    # Nor may anyone but an approver remove the requirement.
    refused = leader.cli("support", "mode", "--approver-groups", "", env=env_for(tim, provider))
    assert refused.returncode == 1
    assert json.loads(leader.cli("support", "requests", "--json").stdout)[0]["state"] == "pending"
    # Each refused attempt is one audit entry: the action, its target, the reason, and the
    # --operator name given, marked unverified.
    entries = AuditLog(leader.client, leader.paths).entries()
    attempts = [e for e in entries if e.action == "support.decision.refused"]
    assert [(e.subject, e.detail["action"]) for e in attempts] == [
        (item["id"], "approve"),
        (item["id"], "approve"),
        (item["id"], "approve"),
        ("policy", "change the support settings"),
    ]
    assert attempts[0].actor.name == "root" and "managed login" in attempts[0].detail["reason"]
    assert "none of the approver groups" in attempts[1].detail["reason"]
    assert all(e.actor.via == UNVERIFIED for e in attempts)
    assert not [e for e in entries if e.action == "support.approved"]

    assert run_login(provider, olga, "u-1001", approve=True).returncode == 0
    approved = leader.cli(
        "support", "approve", item["id"], "--operator", "root", env=env_for(olga, provider)
    )
    assert approved.returncode == 0, approved.stderr
    assert "approved by olga (u-1001)" in approved.stdout
    (decision,) = leader.outbox("support/decision")
    assert decision.payload["by"] == "olga (u-1001)"
    entries = AuditLog(leader.client, leader.paths).entries()
    approval = [e for e in entries if e.action == "support.approved"]
    assert [(e.actor.name, e.actor.via) for e in approval] == [
        ("olga (u-1001)", f"oidc {provider.issuer}")
    ]
    assert all(e.actor.name != "root" for e in entries if e.action.startswith("support.approv"))

    # Revoking (and denying) name the verified person too; without a login: refused, audited.
    refused = leader.cli(
        "support",
        "revoke",
        item["id"],
        "--yes",
        "--operator",
        "root",
        env=env_for(nobody, provider),
    )
    assert refused.returncode == 1 and "managed login" in refused.stderr, refused.stderr
    revoked = leader.cli("support", "revoke", item["id"], "--yes", env=env_for(olga, provider))
    assert revoked.returncode == 0, revoked.stderr
    entries = AuditLog(leader.client, leader.paths).entries()
    assert [(e.actor.name, e.actor.via) for e in entries if e.action == "support.revoked"] == [
        ("olga (u-1001)", f"oidc {provider.issuer}")
    ]
    last = [e for e in entries if e.action == "support.decision.refused"][-1]
    assert (last.subject, last.detail["action"], last.actor.via) == (
        item["id"],
        "revoke",
        UNVERIFIED,
    )
    # The revocation reaches Mission Control with the ID token of the person it names.
    sent = {m.payload["state"]: m.payload for m in leader.outbox("support/decision")}
    token = load_identity(olga / "managed" / "identity.json", time.time()).id_token
    assert sent["revoked"]["by"] == "olga (u-1001)"
    assert sent["revoked"]["approver_identity"] == {
        "issuer": provider.issuer,
        "client_id": CLIENT,
        "id_token": token,
    }
    assert sent["approved"]["approver_identity"] is None  # an approval carries it signed


def test_an_expired_login_is_refused(
    leader: Leader, provider: DeviceProvider, tmp_path: Path
) -> None:
    set_up = require_approvers(leader, provider, tmp_path)
    assert set_up.returncode == 0, set_up.stderr
    save_identity(
        tmp_path / "managed" / "identity.json",
        StoredIdentity(
            provider.issuer, CLIENT, "a.b.c", "u-1001", "olga", ("cluster-approvers",), 1
        ),
    )
    refused = leader.cli("support", "mode", "off", env=env_for(tmp_path, provider))
    assert refused.returncode == 1 and "expired" in refused.stderr, refused.stderr


def one_character_changed(token: str) -> str:
    header, payload, signature = token.split(".")
    middle = len(signature) // 2
    changed = "A" if signature[middle] != "A" else "B"
    return f"{header}.{payload}.{signature[:middle]}{changed}{signature[middle + 1 :]}"


def approve_with(
    leader: Leader, provider: DeviceProvider, request_id: str, person: StoredIdentity,
    token: str, at: datetime,
) -> None:  # fmt: skip
    """What a holder of the cluster's credential can do without the person: write and sign an
    approval naming `person`, embedding `token`, through the store."""
    signer = keys.signing_key(leader.client, leader.paths, AUTH)
    store = SupportStore(leader.client, leader.paths, signer=signer, auth=AUTH)
    policy, _ = store.policy()
    actor = Actor(f"{person.name} ({person.subject})", ActorKind.OPERATOR)
    identity = ApproverIdentity(provider.issuer, CLIENT, token)
    store.change(request_id, lambda r: approve(r, actor, at, policy=policy), at, identity=identity)


def test_the_leader_acts_only_on_approvals_that_prove_their_approver(
    leader: Leader, provider: DeviceProvider, tmp_path: Path
) -> None:
    assert require_approvers(leader, provider, tmp_path).returncode == 0
    service = SupportService(oidc_ca=provider.tls.ca_cert)
    olga = logged_in(provider, tmp_path / "olga", "u-1001")
    tim = logged_in(provider, tmp_path / "tim", "u-1002")
    kim = logged_in(provider, tmp_path / "kim", "u-1003")  # tokens valid for one second
    now = datetime.now(UTC)
    cases = ("verified", "altered", "outsider", "expired")
    items = {
        case: request_item(cluster=leader.paths.cluster, role="user", hours=2, requested_at=now)
        for case in cases
    }
    leader.heartbeat(now, list(items.values()), service=service)
    approved = leader.cli(
        "support", "approve", items["verified"]["id"], env=env_for(tmp_path / "olga", provider)
    )
    assert approved.returncode == 0, approved.stderr
    forged = one_character_changed(olga.id_token)
    approve_with(leader, provider, items["altered"]["id"], olga, forged, now)
    approve_with(leader, provider, items["outsider"]["id"], tim, tim.id_token, now)
    expired_at = datetime.fromtimestamp(kim.expires_at + 61, UTC)  # signed after it expired
    approve_with(leader, provider, items["expired"]["id"], kim, kim.id_token, expired_at)

    commands = {case: command_item(items[case]["id"], "diagnostics") for case in cases}
    leader.heartbeat(datetime.now(UTC), [], list(commands.values()), service=service)

    rows = {r["id"]: r for r in json.loads(leader.cli("support", "requests", "--json").stdout)}
    assert {case: rows[items[case]["id"]]["state"] for case in cases} == {
        "verified": "approved",
        "altered": "revoked",
        "outsider": "revoked",
        "expired": "revoked",
    }
    results = {m.payload["command_id"]: m.payload for m in leader.outbox("support/command-result")}
    assert results[commands["verified"]["id"]]["status"] == "ok"
    assert all(results[commands[c]["id"]]["status"] == "refused" for c in cases[1:])
    entries = AuditLog(leader.client, leader.paths).entries()
    refused = {
        e.subject: e.detail["note"] for e in entries if e.action == "support.approval.refused"
    }
    assert "signature does not verify" in refused[items["altered"]["id"]]
    assert "none of the approver groups" in refused[items["outsider"]["id"]]
    assert "expired" in refused[items["expired"]["id"]]
    assert items["verified"]["id"] not in refused
    # Each refusal reaches Mission Control as a revocation by `system`; the verified approval
    # travels with the token that proves its approver.
    decisions = {m.payload["request_id"]: m.payload for m in leader.outbox("support/decision")}
    assert decisions[items["outsider"]["id"]]["state"] == "revoked"
    embedded = decisions[items["verified"]["id"]]["approval"]["approver_identity"]
    assert embedded == {"issuer": provider.issuer, "client_id": CLIENT, "id_token": olga.id_token}


def test_securing_and_redirecting_settings_need_the_login(
    leader: Leader, provider: DeviceProvider, tmp_path: Path
) -> None:
    """`managed cluster secure` and changes of guarded settings (here the backup target) need
    an approver's login too: without one, one line, one `settings.change.refused` entry naming
    the credential's user as unverified, and nothing changed."""
    olga, nobody = tmp_path / "olga", tmp_path / "nobody"
    assert require_approvers(leader, provider, nobody).returncode == 0
    config_before = leader.client.get(leader.paths.config)[0]

    for args in (("cluster", "secure"), ("backup", "configure", "--target", "file:///srv/b")):
        refused = leader.cli(*args, env=env_for(nobody, provider))
        assert refused.returncode == 1 and "managed login" in refused.stderr, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert leader.client.get(leader.paths.config)[0] == config_before
    entries = AuditLog(leader.client, leader.paths).entries()
    attempts = [e for e in entries if e.action == "settings.change.refused"]
    assert [(e.subject, e.detail["action"], e.actor.via) for e in attempts] == [
        ("acl", "managed cluster secure", UNVERIFIED),
        ("backup", "managed backup configure", UNVERIFIED),
    ]
    assert attempts[0].actor.name == AUTH.split(":", 1)[0]

    assert run_login(provider, olga, "u-1001", approve=True).returncode == 0
    secured = leader.cli("cluster", "secure", env=env_for(olga, provider))
    assert secured.returncode == 0, secured.stderr
