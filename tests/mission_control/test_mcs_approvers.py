"""Mission Control checks the approver an approval embeds, independently of the cluster: with
the customer's provider (a real device-flow provider process) trusted here for the cluster, an
approval must carry an ID token of a person in the approver groups configured here, valid when
the approval was signed, checked with the provider's own keys. The cluster's signature is not
enough: each approval below is signed with the cluster's real key, as a holder of the cluster's
credential could. A cluster with no trusted provider keeps working on its signature alone."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from device_kit import CLIENT, DeviceProvider, device_provider, logged_in
from mc_kit import FakeClock
from mcs_support import Cluster, support_running

from cluster.operator_identity import StoredIdentity
from contract.audit.canonical import format_time
from contract.audit.events import Actor, ActorKind
from contract.support.approval import ApproverIdentity
from mission_control.db.engine import create_engine
from mission_control.service.context import ServiceContext
from mission_control.service.fleet import enrollment

OLGA, TIM, KIM = "u-1001", "u-1002", "u-1003"  # approver, not an approver, short-lived tokens


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeviceProvider]:
    with device_provider(tmp_path_factory.mktemp("device-provider")) as running:
        yield running


@pytest.fixture(scope="module")
def people(
    provider: DeviceProvider, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, StoredIdentity]:
    homes = tmp_path_factory.mktemp("logins")
    return {sub: logged_in(provider, homes / sub, sub) for sub in (OLGA, TIM, KIM)}


async def created_before_start(
    sqlite_url: str, clock: FakeClock, name: str
) -> enrollment.CreatedCluster:
    """A cluster record made before Mission Control starts, so its settings can name its id."""
    engine = create_engine(sqlite_url)
    try:
        return await enrollment.create_cluster(ServiceContext(engine, clock), name, "EU")
    finally:
        await engine.dispose()


def trusted_for(provider: DeviceProvider, cluster_id: str) -> dict[str, Any]:
    """Mission Control's setting that holds `cluster_id` to `provider`'s approver group."""
    return {
        "issuer": provider.issuer,
        "client_id": CLIENT,
        "approver_groups": ["cluster-approvers"],
        "clusters": [cluster_id],
        "ca_file": str(provider.tls.ca_cert),
    }


def one_character_changed(token: str) -> str:
    middle = len(token) - 20  # inside the signature
    return token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]


async def test_mission_control_verifies_the_embedded_approver_itself(
    provider: DeviceProvider, people: dict[str, StoredIdentity], sqlite_url: str, clock: FakeClock
) -> None:
    clock.now = datetime.now(UTC).replace(microsecond=0)  # the provider's tokens are real-time
    held = await created_before_start(sqlite_url, clock, "acme")
    trusted = trusted_for(provider, held.id)
    async with support_running(sqlite_url, clock, operator_providers=[trusted]) as support:
        acme = await support.cluster("acme", created=held)
        legacy = await support.cluster("legacy")  # no provider trusted for it here
        alice = await support.staff("alice", "support-l2")
        admin = await support.staff("root", "admin")

        async def approve(
            cluster: Cluster, sub: str, token: str | None = None, at: datetime | None = None
        ) -> tuple[int, Any, str]:
            request = await support.request_access(alice, "acme" if cluster is acme else "legacy")
            person = people[sub]
            by = Actor(f"{person.name} ({person.subject})", ActorKind.OPERATOR)
            identity = ApproverIdentity(provider.issuer, CLIENT, token or person.id_token)
            approval = support.approval(cluster, request, by=by, identity=identity, starts_at=at)
            status, reply = await support.decide(cluster, request["id"], "approved", approval)
            return status, reply, request["id"]

        async def state(request_id: str) -> Any:
            return await support.ok("GET", f"/api/v1/access-requests/{request_id}", token=alice)

        status, reply, verified = await approve(acme, OLGA)
        assert status == 200, reply
        seen = await state(verified)
        assert seen["state"] == "approved" and seen["grant"]["approved_by"] == "olga (u-1001)"

        kim_expired = datetime.fromtimestamp(people[KIM].expires_at + 61, UTC)
        refusals = {
            "signature does not verify": await approve(
                acme, OLGA, one_character_changed(people[OLGA].id_token)
            ),
            "none of the approver groups": await approve(acme, TIM),
            "has expired": await approve(acme, KIM, at=kim_expired),
        }
        unsigned_by_a_person = support.approval(acme, await support.request_access(alice, "acme"))
        status, reply = await support.decide(
            acme, unsigned_by_a_person["request_id"], "approved", unsigned_by_a_person
        )
        refusals["embeds no verified approver"] = (
            status,
            reply,
            unsigned_by_a_person["request_id"],
        )
        for why, (status, reply, request_id) in refusals.items():
            assert (status, reply["error"]["code"]) == (422, "approval_rejected"), why
            assert why in reply["error"]["message"]
            seen = await state(request_id)  # no grant opens; the cluster is told
            assert seen["state"] == "denied" and why in seen["note"] and seen["grant"] is None

        # No provider trusted for this cluster: its signature decides, as before; the audit
        # says the person was not verifiable here.
        status, reply, unverifiable = await approve(legacy, TIM)
        assert status == 200, reply

        audit = await support.ok("GET", "/api/v1/audit?action=support.approved", token=admin)
        approver = {e["subject"]: e["detail"].get("approver") for e in audit["entries"]}
        assert (
            approver[verified] == f"olga (u-1001) verified by Mission Control at {provider.issuer}"
        )
        assert approver[unverifiable].startswith("not verifiable by the vendor")
        refused = await support.ok(
            "GET", "/api/v1/audit?action=support.decision.refused", token=admin
        )
        reasons = {e["subject"]: e["detail"]["reason"] for e in refused["entries"]}
        for why, (_, _, request_id) in refusals.items():
            assert why in reasons[request_id]


async def test_denials_and_revocations_name_a_verified_operator(
    provider: DeviceProvider, people: dict[str, StoredIdentity], sqlite_url: str, clock: FakeClock
) -> None:
    """Denying and revoking carry the operator's ID token too: checked here with the provider's
    keys at the decision's time; an altered, expired, outsider's or missing one is refused and
    audited, and the request stays as it was. A cluster without a trusted provider sends
    decisions without the field, as before."""
    clock.now = datetime.now(UTC).replace(microsecond=0)
    held = await created_before_start(sqlite_url, clock, "acme")
    trusted = trusted_for(provider, held.id)
    async with support_running(sqlite_url, clock, operator_providers=[trusted]) as support:
        acme = await support.cluster("acme", created=held)
        legacy = await support.cluster("legacy")
        alice = await support.staff("alice", "support-l2")
        admin = await support.staff("root", "admin")
        olga = people[OLGA]
        olga_by = f"{olga.name} ({olga.subject})"

        def embedded(sub: str, token: str | None = None) -> dict[str, str]:
            return ApproverIdentity(
                provider.issuer, CLIENT, token or people[sub].id_token
            ).to_json()

        async def close(
            cluster: Cluster, request_id: str, state: str, by: str, identity: Any, at: datetime
        ) -> tuple[int, Any]:
            return await support.send(
                cluster, "support/decision", request_id=request_id, state=state, by=by,
                reason="not now", at=format_time(at), approver_identity=identity,
            )  # fmt: skip

        async def state(request_id: str) -> str:
            seen = await support.ok("GET", f"/api/v1/access-requests/{request_id}", token=alice)
            return str(seen["state"])

        now = clock.now
        kim = people[KIM]
        kim_expired = datetime.fromtimestamp(kim.expires_at + 61, UTC)
        refusals: dict[str, tuple[int, Any, str]] = {}
        for why, by, identity, at in (
            ("signature does not verify", olga_by,
             embedded(OLGA, one_character_changed(olga.id_token)), now),
            ("none of the approver groups", f"{people[TIM].name} ({TIM})", embedded(TIM), now),
            ("has expired", f"{kim.name} ({KIM})", embedded(KIM), kim_expired),
            ("embeds no verified approver", olga_by, None, now),
        ):  # fmt: skip
            pending = await support.request_access(alice, "acme")
            status, reply = await close(acme, pending["id"], "denied", by, identity, at)
            refusals[why] = (status, reply, pending["id"])
            assert await state(pending["id"]) == "pending", why

        # A revocation with an altered token leaves the grant running here; a verified one ends it.
        running = await support.request_access(alice, "acme")
        by = Actor(olga_by, ActorKind.OPERATOR)
        approval = support.approval(
            acme, running, by=by, identity=ApproverIdentity(provider.issuer, CLIENT, olga.id_token)
        )
        status, reply = await support.decide(acme, running["id"], "approved", approval, by=olga_by)
        assert status == 200, reply
        altered = embedded(OLGA, one_character_changed(olga.id_token))
        status, reply = await close(acme, running["id"], "revoked", olga_by, altered, now)
        refusals["revoked: signature does not verify"] = (status, reply, running["id"])
        assert await state(running["id"]) == "approved"
        status, reply = await close(acme, running["id"], "revoked", olga_by, embedded(OLGA), now)
        assert status == 200, reply
        assert await state(running["id"]) == "revoked"

        denied = await support.request_access(alice, "acme")
        status, reply = await close(acme, denied["id"], "denied", olga_by, embedded(OLGA), now)
        assert status == 200, reply
        assert await state(denied["id"]) == "denied"

        old_style = await support.request_access(alice, "legacy")  # no field, no provider
        status, reply = await close(legacy, old_style["id"], "denied", "root", None, now)
        assert status == 200, reply
        assert await state(old_style["id"]) == "denied"

        for why, (status, reply, _) in refusals.items():
            assert (status, reply["error"]["code"]) == (422, "approval_rejected"), why
            assert why.removeprefix("revoked: ") in reply["error"]["message"], why
        refused = await support.ok(
            "GET", "/api/v1/audit?action=support.decision.refused", token=admin
        )
        reasons = {(e["subject"], e["detail"]["state"]): e["detail"]["reason"]
                   for e in refused["entries"]}  # fmt: skip
        for why, (_, _, request_id) in refusals.items():
            wanted = "revoked" if why.startswith("revoked") else "denied"
            assert why.removeprefix("revoked: ") in reasons[(request_id, wanted)]
        verified = f"olga (u-1001) verified by Mission Control at {provider.issuer}"
        for action, request_id in (("revoked", running["id"]), ("denied", denied["id"])):
            audit = await support.ok("GET", f"/api/v1/audit?action=support.{action}", token=admin)
            deciders = {e["subject"]: e["detail"].get("decider") for e in audit["entries"]}
            assert deciders[request_id] == verified, action
        audit = await support.ok("GET", "/api/v1/audit?action=support.denied", token=admin)
        assert {e["subject"]: e["detail"].get("decider") for e in audit["entries"]}[
            old_style["id"]
        ] is None
