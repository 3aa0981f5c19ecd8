"""The audit log in ZooKeeper: serialized appends, and `managed audit verify` finding tampering."""

from __future__ import annotations

import json
import threading
from dataclasses import replace

from clusterkit import ZK_AUTH, ClusterUnderTest
from supportkit import AUTH, T0, Leader, command_item, later, request_item

from cluster import zk
from cluster.audit.store import AuditLog
from cluster.support.service import SupportService
from cluster.support.store import SupportStore
from contract.audit.chain import CheckpointSchedule, append
from contract.audit.events import Actor, ActorKind, AuditEvent
from contract.support.policy import SupportPolicy


def test_concurrent_appenders_serialize_into_one_sound_chain(cluster: ClusterUnderTest) -> None:
    clients = [zk.connect(cluster.hosts, auth=ZK_AUTH) for _ in range(3)]
    try:
        zk.ensure_cluster(clients[0], cluster.paths)

        errors: list[BaseException] = []

        def work(index: int) -> None:
            log = AuditLog(clients[index], cluster.paths, timeout=20)
            try:
                for n in range(10):
                    actor = Actor(f"op{index}", ActorKind.OPERATOR)
                    event = AuditEvent(T0, actor, "test.append", cluster.name, f"{index}-{n}")
                    log.append([event], T0)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        log = AuditLog(clients[0], cluster.paths)
        entries = log.entries()
        assert [e.seq for e in entries] == list(range(1, 31))
        assert sorted(e.subject for e in entries) == sorted(
            f"{i}-{n}" for i in range(3) for n in range(10)
        )
        result = log.verify(None)
        assert result.ok, result.summary()
    finally:
        for c in clients:
            zk.close(c)


def _build_log(leader: Leader) -> int:
    """Requests, a grant and commands: about ten entries with a checkpoint every 3 entries."""
    service = SupportService(schedule=CheckpointSchedule(every_entries=3))
    SupportStore(leader.client, leader.paths, auth=AUTH).set_policy(
        lambda p: SupportPolicy.from_config({**p.to_config(), "mode": "allowed"}),
        Actor("olga", ActorKind.OPERATOR),
        T0,
    )
    first = request_item(cluster=leader.paths.cluster)
    second = request_item(cluster=leader.paths.cluster)
    leader.heartbeat(later(minutes=1), [first, second], service=service)
    commands = [command_item(first["id"], "diagnostics") for _ in range(4)]
    leader.heartbeat(later(minutes=2), commands=commands, service=service)
    revoked = dict(second, state="revoked", state_changed_by="alice")
    leader.heartbeat(later(minutes=3), [revoked], service=service)
    return len(AuditLog(leader.client, leader.paths).entries())


def verify(leader: Leader, process: bool = False) -> tuple[int, str]:
    r = leader.cli_process("audit", "verify") if process else leader.cli("audit", "verify")
    return r.returncode, (r.stdout + r.stderr).strip()


def test_audit_verify_names_the_altered_removed_or_inserted_entry(leader: Leader) -> None:
    count = _build_log(leader)
    assert count == 8
    paths, client = leader.paths, leader.client
    code, out = verify(leader)
    assert code == 0, out
    assert out.startswith(f"ok: {count} entries; signed checkpoints cover up to entry")

    # Edit entry 3 in place.
    original, _ = client.get(paths.audit_entry(3))
    doc = json.loads(original)
    doc["detail"]["reason"] = "nothing to see"
    client.set(paths.audit_entry(3), json.dumps(doc).encode())
    code, out = verify(leader, process=True)
    assert (code, out.split(":")[0]) == (1, "audit log damaged")
    assert "entry 3 altered" in out
    client.set(paths.audit_entry(3), original)
    assert verify(leader)[0] == 0

    # Delete entry 4.
    original, _ = client.get(paths.audit_entry(4))
    client.delete(paths.audit_entry(4))
    code, out = verify(leader)
    assert code == 1 and "entry 4 removed" in out, out
    client.create(paths.audit_entry(4), original)

    # Insert a well-formed, correctly hashed entry between 2 and 3.
    log = AuditLog(client, paths)
    entries = log.entries()
    forged = append(
        entries[1],
        AuditEvent(
            later(minutes=1),
            Actor("olga", ActorKind.OPERATOR),
            "support.approved",
            paths.cluster,
            "x",
        ),
    )
    client.create(f"{paths.audit_entries}/0000000002a", json.dumps(forged.to_json()).encode())
    code, out = verify(leader)
    assert code == 1 and "entry 3 inserted" in out, out
    client.delete(f"{paths.audit_entries}/0000000002a")

    # Rewrite entry 2 and re-hash everything after it: the signed checkpoints catch it.
    rewritten = [replace(entries[0])]
    for e in entries[1:]:
        event = e.event()
        if e.seq == 2:
            event = replace(event, detail={**event.detail, "reason": "rewritten"})
        rewritten.append(append(rewritten[-1], event))
    for e in rewritten[1:]:
        client.set(paths.audit_entry(e.seq), json.dumps(e.to_json()).encode())
    code, out = verify(leader)
    assert code == 1 and "entries 1..2 do not match the signed checkpoint at entry 2" in out, out
    for e in entries[1:]:
        client.set(paths.audit_entry(e.seq), json.dumps(e.to_json()).encode())
    assert verify(leader)[0] == 0

    # Drop the newest entry, then add a forged one at the end: the head names the difference.
    last = entries[-1]
    client.delete(paths.audit_entry(last.seq))
    code, out = verify(leader)
    assert code == 1 and f"entry {last.seq} removed" in out, out
    client.create(paths.audit_entry(last.seq), json.dumps(last.to_json()).encode())
    extra = append(
        last, AuditEvent(later(hours=1), Actor("eve", ActorKind.ENGINEER), "x", paths.cluster, "x")
    )
    client.create(paths.audit_entry(extra.seq), json.dumps(extra.to_json()).encode())
    code, out = verify(leader)
    assert code == 1 and f"entry {extra.seq} inserted" in out, out


def test_audit_log_lists_filters_and_prints_json(leader: Leader) -> None:
    count = _build_log(leader)
    everything = leader.cli("audit", "log", "--json")
    assert everything.returncode == 0, everything.stderr
    rows = json.loads(everything.stdout)
    assert [r["seq"] for r in rows] == list(range(1, count + 1))
    assert rows[0]["actor"]["name"] == "olga"
    recent = json.loads(
        leader.cli("audit", "log", "--json", "--since", "2026-11-22T14:02:30Z").stdout
    )
    assert [r["action"] for r in recent] == ["support.revoked"]
    text = leader.cli("audit", "log", "--since", "2026-11-22T14:02:00")
    assert "support.command" in text.stdout and "support.policy" not in text.stdout
    assert "alice (support-engineer) via mission-control" in text.stdout
    bad = leader.cli("audit", "log", "--since", "yesterday-ish")
    assert bad.returncode == 2 and "neither an ISO time" in bad.stderr


def test_verify_without_the_public_key_says_so(leader: Leader) -> None:
    empty = verify(leader)
    assert empty == (
        0,
        "ok: 0 entries; signed checkpoints cover up to entry 0 (0 newer entries not yet "
        "covered); checked against the local copy only (not enrolled at Mission Control)",
    )
    _build_log(leader)
    leader.client.delete(leader.paths.support_public_key)
    code, out = verify(leader)
    assert code == 1 and "public key is missing" in out
