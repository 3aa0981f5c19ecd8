"""Remote-support state in ZooKeeper: the policy, request records, answered commands.

Layout (under `<cluster>/support/`)::

    policy             the `SupportPolicy` (JSON); absent means the defaults (mode approval)
    public-key         the cluster's Ed25519 public key (PEM), see `cluster.support.keys`
    requests/<id>      {"request": <AccessRequest>, "approval": <SignedApproval>|null, ...}
    open/<id>          empty; present while request <id> is pending or approved (what sweeps read)
    commands/<id>      {"request_id", "status", "at"}: command <id> was answered

Guarantees: every change is ONE ZooKeeper transaction made of the new record (compare-and-set on
the version that was read), its audit entries (`cluster.audit.store`) and the message for
Mission Control (a message queued through `cluster.link.outbox.Outbox`): all of them happen, or
none.
A conflicting writer makes the loser re-read and re-decide (the pure state machine then refuses
what is no longer allowed). A command id is claimed in the same transaction as its result, so a
command is answered, and a `config set` applied, exactly once.

The policy lives in its own znode rather than in the cluster config so that `config set`, which
a support engineer may run, can never reach the setting that governs support access itself.

Every support znode is world-readable and changeable only with the cluster's ZooKeeper
credential (`cluster.support.protection`): a store without `auth` can read, not write.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cluster import zk
from cluster.audit.store import AuditLog
from cluster.link.outbox import Outbox
from cluster.paths import ClusterPaths
from cluster.secrets import SecretsUnavailable
from cluster.support import protection
from cluster.support.records import (
    StoredRequest,
    SupportStoreError,
    check_id,
    decision_body,
    dump_json,
)
from cluster.zk import Check, Create, Delete, Fence, Op, OpFailed, SetData, ZooKeeper
from cluster.zk.errors import BadVersionError, NoAuthError, NodeExistsError, NoNodeError
from contract.audit.canonical import format_time
from contract.audit.chain import CheckpointSchedule
from contract.audit.events import SYSTEM, Actor, AuditEvent
from contract.messages import SupportCommandResultBody, SupportPolicyReportBody
from contract.support.approval import ApproverIdentity, SignedApproval, sign_approval
from contract.support.policy import SupportPolicy
from contract.support.requests import (
    TERMINAL_STATES,
    AccessRequest,
    RequestState,
    Transition,
)

MAX_ATTEMPTS = 20
READ_TIMEOUT = 10.0  # seconds for each read of a listing


class SupportStore:
    """Read and change one cluster's support state. Blocking ZooKeeper calls (run them
    off-loop)."""

    def __init__(
        self,
        client: ZooKeeper,
        paths: ClusterPaths,
        *,
        fence: Fence | None = None,
        signer: Ed25519PrivateKey | None = None,
        schedule: CheckpointSchedule | None = None,
        auth: str | None = None,
    ) -> None:
        self.client = client
        self.paths = paths
        self.signer = signer
        self.auth = auth
        self.audit = AuditLog(client, paths, fence=fence, signer=signer, schedule=schedule)
        self.outbox = Outbox(paths)
        self._ensured = False

    def _ensure(self) -> None:
        """Create the protected parents; every write below needs the credential."""
        if not self._ensured:
            protection.ensure_parents(self.client, self.paths, self.auth)
            self.outbox.ensure(self.client)
            self._ensured = True

    def _acl(self) -> tuple[Any, ...]:
        return tuple(protection.write_acl(self.auth))

    def _commit(self, events: Sequence[AuditEvent], now: datetime, ops: Sequence[Op]) -> None:
        """Append `events` with `ops` in one transaction; a znode protected by another
        credential ends in one clear line."""
        try:
            self.audit.append(events, now, ops)
        except OpFailed as failed:
            if isinstance(failed.error, NoAuthError):
                raise SecretsUnavailable(protection.WRONG_CREDENTIAL) from None
            raise

    def record_refused(
        self,
        by: Actor,
        action: str,
        subject: str,
        reason: str,
        now: datetime,
        *,
        audit_action: str = "support.decision.refused",
    ) -> None:
        """Audit an attempt to decide that was refused before anything changed (one entry,
        `audit_action`; needs the credential like every support write)."""
        detail = {"action": action, "reason": reason}
        event = AuditEvent(now, by, audit_action, self.paths.cluster, subject, detail)
        self._commit([event], now, [])

    def protect(self, now: datetime) -> list[str]:
        """Migrate support znodes made before they were protected (see `protection.protect`);
        the znodes that were open are recorded in the audit log."""
        opened = protection.protect(self.client, self.paths, self.auth)
        if opened:
            names = [p.removeprefix(self.paths.base + "/") for p in opened]
            event = AuditEvent(
                now,
                SYSTEM,
                "support.protected",
                self.paths.cluster,
                "support",
                {"znodes": list(names[:50]), "count": len(names), "policy": self._policy_doc()},
            )
            self._commit([event], now, [])
        return opened

    def _policy_doc(self) -> dict[str, Any] | None:
        try:
            policy, version = self.policy()
        except SupportStoreError:
            return None
        return policy.to_config() if version >= 0 else None

    # --- policy -----------------------------------------------------------------------------

    def policy(self) -> tuple[SupportPolicy, int]:
        """The stored policy (defaults when none) and its znode version (-1: not stored)."""
        try:
            data, stat = self.client.get(self.paths.support_policy)
        except NoNodeError:
            return SupportPolicy(), -1
        try:
            stored = json.loads(data or b"{}")
        except ValueError:
            raise SupportStoreError("support/policy is not JSON; set the mode again") from None
        return SupportPolicy.from_config(stored), stat.version

    def set_policy(
        self, change: Callable[[SupportPolicy], SupportPolicy], by: Actor, now: datetime
    ) -> SupportPolicy:
        """Apply `change` to the policy (compare-and-set), audit it, tell Mission Control.

        Needs the credential (`auth`): the policy decides who gets in. An open policy znode
        left by an older version is protected first (`protect`)."""
        self._ensure()
        self.protect(now)
        for _ in range(MAX_ATTEMPTS):
            old, version = self.policy()
            new = change(old)
            data = dump_json(new.to_config())
            op: Op = (
                Create(self.paths.support_policy, data, acl=self._acl())
                if version < 0
                else SetData(self.paths.support_policy, data, version)
            )
            report = SupportPolicyReportBody(
                mode=new.mode.value,
                max_grant_seconds=int(new.max_grant.total_seconds()),
                allowed_roles=sorted(r.value for r in new.allowed_roles),
                preapproved=sorted(new.preapproved),
            )
            message = self.outbox.message(report, now.timestamp())
            event = AuditEvent(
                now,
                by,
                "support.policy",
                self.paths.cluster,
                "policy",
                {"before": old.to_config(), "after": new.to_config()},
            )
            try:
                self._commit([event], now, [op, message])
            except OpFailed as failed:
                if isinstance(failed.error, BadVersionError | NodeExistsError):
                    continue
                raise
            return new
        raise SupportStoreError("the support policy keeps changing; try again")

    # --- requests ---------------------------------------------------------------------------

    def get(self, request_id: str) -> StoredRequest | None:
        try:
            path = self.paths.support_request(check_id("request", request_id))
            data, stat = self.client.get(path)
        except NoNodeError:
            return None
        return StoredRequest.from_bytes(request_id, bytes(data), stat.version)

    def _read_many(self, parent: str, names: Sequence[str]) -> list[StoredRequest]:
        got = self.client.get_many((f"{parent}/{n}" for n in names), READ_TIMEOUT)
        return [
            StoredRequest.from_bytes(name, read[0], read[1].version)
            for name, read in zip(names, got, strict=True)
            if read is not None
        ]

    def all(self) -> list[StoredRequest]:
        """Every request ever received (history is kept), oldest request first."""
        try:
            names = self.client.children(self.paths.support_requests)
        except NoNodeError:
            return []
        found = self._read_many(self.paths.support_requests, names)
        return sorted(found, key=lambda s: (s.request.requested_at, s.request.id))

    def open(self) -> list[StoredRequest]:
        """Requests still pending or approved (read through the `open/` index)."""
        try:
            names = self.client.children(self.paths.support_open)
        except NoNodeError:
            return []
        return self._read_many(self.paths.support_requests, names)

    def _decision_ops(
        self,
        request: AccessRequest,
        approval: SignedApproval | None,
        now: datetime,
        identity: ApproverIdentity | None = None,
    ) -> list[Op]:
        decision = decision_body(request, approval, identity)
        mid = self.outbox.stable_id("decision", request.id, request.state.value)
        return [self.outbox.message(decision, now.timestamp(), message_id=mid)]

    def _approval(
        self, request: AccessRequest, identity: ApproverIdentity | None = None
    ) -> SignedApproval | None:
        if request.state is not RequestState.APPROVED or request.grant is None:
            return None
        if self.signer is None:
            raise SupportStoreError(
                "approving needs the cluster's signing key: pass --zk-auth USER:PASSWORD"
            )
        return sign_approval(request.grant, self.signer, identity)

    def record_arrival(
        self, transition: Transition, now: datetime, engineer_role: str | None = None
    ) -> bool:
        """Store a request that just arrived, decided by `decide_on_arrival` (or refused).

        Returns False (and changes nothing) when the request was already received.
        """
        request = transition.request
        approval = self._approval(request)
        self._ensure()
        record = StoredRequest(request, approval, engineer_role, -1)
        acl = self._acl()
        ops: list[Op] = [Create(self.paths.support_request(request.id), record.to_bytes(), acl=acl)]
        if request.state not in TERMINAL_STATES:
            ops.append(Create(self.paths.support_open_request(request.id), b"", acl=acl))
        if request.state is not RequestState.PENDING:
            ops += self._decision_ops(request, approval, now)
        try:
            self._commit([transition.event], now, ops)
        except OpFailed as failed:
            if isinstance(failed.error, NodeExistsError):
                return False
            raise
        return True

    def change(
        self,
        request_id: str,
        step: Callable[[AccessRequest], Transition],
        now: datetime,
        *,
        identity: ApproverIdentity | None = None,
    ) -> Transition:
        """Apply `step` to request `request_id` (compare-and-set, re-decided on conflict).

        `step` raises `InvalidTransition` when the change is not allowed; nothing is written then.
        An approval it makes is signed with the approver's `identity` embedded, when given; a
        denial or revocation sends it to Mission Control with the decision.
        """
        self._ensure()
        for _ in range(MAX_ATTEMPTS):
            stored = self.get(request_id)
            if stored is None:
                raise SupportStoreError(f"no support request {request_id} on this cluster")
            transition = step(stored.request)
            request = transition.request
            approval = self._approval(request, identity) or stored.approval
            record = StoredRequest(request, approval, stored.engineer_role, stored.version)
            ops: list[Op] = [
                SetData(self.paths.support_request(request.id), record.to_bytes(), stored.version)
            ]
            marker = self.paths.support_open_request(request.id)
            if request.state in TERMINAL_STATES and self.client.exists(marker) is not None:
                ops.append(Delete(marker))
            ops += self._decision_ops(request, approval, now, identity)
            try:
                self._commit([transition.event], now, ops)
            except OpFailed as failed:
                if isinstance(failed.error, BadVersionError | NoNodeError):
                    continue  # changed (or its open marker removed) meanwhile: decide again
                raise
            return transition
        raise SupportStoreError(f"support request {request_id} keeps changing; try again")

    # --- commands ---------------------------------------------------------------------------

    def answered(self, command_id: str) -> bool:
        path = self.paths.support_command(check_id("command", command_id))
        return self.client.exists(path) is not None

    def answer(
        self,
        result: SupportCommandResultBody,
        event: AuditEvent,
        now: datetime,
        extra_ops: Sequence[Op] = (),
        *,
        request_version: int | None = None,
    ) -> bool:
        """Claim the result's command id, record `event` and queue the result, in one
        transaction.

        Returns False (nothing written) when the command was already answered. With
        `request_version` (the version of the request record the grant was read from) the
        transaction also checks that record is unchanged, so a revocation that lands between
        the grant check and this commit makes it fail (`OpFailed` on `support/requests/<id>`)
        and nothing is written, not even `extra_ops` (a config change). On any conflict the
        caller re-reads, checks the grant again and runs again.
        """
        self._ensure()
        checks: list[Op] = []
        command_id = result.command_id
        if request_version is not None:
            checks.append(Check(self.paths.support_request(result.request_id), request_version))
        claim = Create(
            self.paths.support_command(check_id("command", command_id)),
            dump_json(
                {
                    "request_id": result.request_id,
                    "status": result.status,
                    "at": format_time(now),
                }
            ),
            acl=self._acl(),
        )
        message = self.outbox.message(
            result,
            now.timestamp(),
            message_id=self.outbox.stable_id("result", command_id),
        )
        try:
            self._commit([event], now, [claim, *checks, *extra_ops, message])
        except OpFailed as failed:
            if failed.op is claim and isinstance(failed.error, NodeExistsError):
                return False
            raise
        return True

    def config(self) -> tuple[dict[str, Any], int]:
        """The cluster config znode and its version."""
        try:
            data, stat = self.client.get(self.paths.config)
        except NoNodeError:
            return {}, -1
        return zk.parse_config(data), stat.version

    def health_summary(self) -> dict[str, Any]:
        """The leader's health summary (`paths.health`), empty when none was written."""
        try:
            data, _ = self.client.get(self.paths.health)
            loaded = json.loads(data or b"{}")
        except (NoNodeError, ValueError):
            return {}
        return loaded if isinstance(loaded, dict) else {}
