"""Remote-support state in ZooKeeper: the policy, request records, answered commands.

Layout (under `<cluster>/support/`)::

    policy             the `SupportPolicy` (JSON); absent means the defaults (mode approval)
    public-key         the cluster's Ed25519 public key (PEM), see `cluster.support.keys`
    requests/<id>      {"request": <AccessRequest>, "approval": <SignedApproval>|null, ...}
    open/<id>          empty; present while request <id> is pending or approved (what sweeps read)
    commands/<id>      {"request_id", "status", "at"}: command <id> was answered

Guarantees: every change is ONE ZooKeeper transaction made of the new record (compare-and-set on
the version that was read), its audit entries (`cluster.audit.store`) and the message for
Mission Control (the outbox record that `cluster.outbox` delivers): all of them happen, or none.
A conflicting writer makes the loser re-read and re-decide (the pure state machine then refuses
what is no longer allowed). A command id is claimed in the same transaction as its result, so a
command is answered, and a `config set` applied, exactly once.

The policy lives in its own znode rather than in the cluster config so that `config set`, which
a support engineer may run, can never reach the setting that governs support access itself.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError

from cluster.audit.canonical import format_time
from cluster.audit.chain import CheckpointSchedule
from cluster.audit.events import Actor, AuditEvent
from cluster.audit.store import AuditLog, CreateNode, DeleteNode, OpFailed, SetNode, TxOp
from cluster.errors import ClusterError
from cluster.outbox import PREFIX, outbox_path, record
from cluster.paths import ClusterPaths
from cluster.support.approval import SignedApproval, sign_approval
from cluster.support.errors import SupportError
from cluster.support.policy import SupportPolicy
from cluster.support.requests import (
    TERMINAL_STATES,
    AccessRequest,
    RequestState,
    Transition,
    request_from_json,
    request_to_json,
)
from cluster.zk import Fence

DECISION_KIND = "support/decision"
RESULT_KIND = "support/command-result"
PUBLIC_KEY_KIND = "support/public-key"
POLICY_KIND = "support/policy"
MAX_ATTEMPTS = 20
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


class SupportStoreError(ClusterError):
    """A support record is missing, unreadable or cannot be written."""


def check_id(what: str, value: str) -> str:
    """Request and command ids become znode names: letters, digits, `.`, `_`, `:`, `-` only."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise SupportStoreError(f"invalid {what} id {value!r}: use letters, digits, . _ : -")
    return value


def message_id(paths: ClusterPaths, *parts: str) -> str:
    """A stable message id, so a message re-made for the same fact is deduplicated upstream."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join((paths.cluster, *parts))))


def outbox_op(
    paths: ClusterPaths, kind: str, payload: dict[str, Any], mid: str, now: datetime
) -> CreateNode:
    """The create operation `cluster.outbox.enqueue` would make, to run inside a transaction."""
    body = record(kind, payload, now.timestamp(), mid)
    return CreateNode(f"{outbox_path(paths)}/{PREFIX}", body, sequence=True)


def _dump(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class StoredRequest:
    """A request record as stored, with the znode version a change must compare against."""

    request: AccessRequest
    approval: SignedApproval | None
    engineer_role: str | None
    version: int

    def to_bytes(self) -> bytes:
        return _dump(
            {
                "request": request_to_json(self.request),
                "approval": self.approval.to_json() if self.approval else None,
                "engineer_role": self.engineer_role,
            }
        )

    @classmethod
    def from_bytes(cls, request_id: str, data: bytes, version: int) -> StoredRequest:
        try:
            doc = json.loads(data)
            approval = doc.get("approval")
            return cls(
                request_from_json(doc["request"]),
                SignedApproval.from_json(approval) if approval else None,
                doc.get("engineer_role"),
                version,
            )
        except (ValueError, KeyError, TypeError, AttributeError, SupportError) as exc:
            raise SupportStoreError(f"support request {request_id} is unreadable: {exc}") from None


def decision_payload(request: AccessRequest, approval: SignedApproval | None) -> dict[str, Any]:
    """The `support/decision` message body (protocol) for a request's current state."""
    grant = request.grant
    if request.state in (RequestState.REVOKED, RequestState.ENDED) and grant is not None:
        by = grant.closed_by.name if grant.closed_by else "system"
        reason = grant.close_reason
        at = grant.closed_at or request.decided_at
    else:
        by = request.decided_by.name if request.decided_by else "system"
        reason = request.note
        at = request.decided_at
    return {
        "request_id": request.id,
        "state": request.state.value,
        "by": by,
        "reason": reason,
        "at": format_time(at) if at else None,
        "approval": approval.to_json()
        if approval and request.state is RequestState.APPROVED
        else None,
        "grant": (
            {
                "role": grant.role.value,
                "starts_at": format_time(grant.starts_at),
                "ends_at": format_time(grant.ends_at),
            }
            if grant is not None
            else None
        ),
    }


class SupportStore:
    """Read and change one cluster's support state. Blocking kazoo calls (run them off-loop)."""

    def __init__(
        self,
        client: KazooClient,
        paths: ClusterPaths,
        *,
        fence: Fence | None = None,
        signer: Ed25519PrivateKey | None = None,
        schedule: CheckpointSchedule | None = None,
    ) -> None:
        self.client = client
        self.paths = paths
        self.signer = signer
        self.audit = AuditLog(client, paths, fence=fence, signer=signer, schedule=schedule)
        self._ensured = False

    def _ensure(self) -> None:
        if not self._ensured:
            for path in (
                self.paths.support_requests,
                self.paths.support_open,
                self.paths.support_commands,
                outbox_path(self.paths),
            ):
                self.client.ensure_path(path)
            self._ensured = True

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
        """Apply `change` to the policy (compare-and-set), audit it, tell Mission Control."""
        self._ensure()
        for _ in range(MAX_ATTEMPTS):
            old, version = self.policy()
            new = change(old)
            data = _dump(new.to_config())
            op: TxOp = (
                CreateNode(self.paths.support_policy, data)
                if version < 0
                else SetNode(self.paths.support_policy, data, version)
            )
            payload = {
                "mode": new.mode.value,
                "max_grant_seconds": int(new.max_grant.total_seconds()),
                "allowed_roles": sorted(r.value for r in new.allowed_roles),
                "preapproved": sorted(new.preapproved),
            }
            message = outbox_op(self.paths, POLICY_KIND, payload, str(uuid.uuid4()), now)
            event = AuditEvent(
                now,
                by,
                "support.policy",
                self.paths.cluster,
                "policy",
                {"before": old.to_config(), "after": new.to_config()},
            )
            try:
                self.audit.append([event], now, [op, message])
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
        pending = [(n, self.client.get_async(f"{parent}/{n}")) for n in names]
        out = []
        for name, req in pending:
            try:
                data, stat = req.get(timeout=10)
            except NoNodeError:
                continue
            out.append(StoredRequest.from_bytes(name, bytes(data), stat.version))
        return out

    def all(self) -> list[StoredRequest]:
        """Every request ever received (history is kept), oldest request first."""
        try:
            names = self.client.get_children(self.paths.support_requests)
        except NoNodeError:
            return []
        found = self._read_many(self.paths.support_requests, names)
        return sorted(found, key=lambda s: (s.request.requested_at, s.request.id))

    def open(self) -> list[StoredRequest]:
        """Requests still pending or approved (read through the `open/` index)."""
        try:
            names = self.client.get_children(self.paths.support_open)
        except NoNodeError:
            return []
        return self._read_many(self.paths.support_requests, names)

    def _decision_ops(
        self, request: AccessRequest, approval: SignedApproval | None, now: datetime
    ) -> list[TxOp]:
        payload = decision_payload(request, approval)
        mid = message_id(self.paths, "decision", request.id, request.state.value)
        return [outbox_op(self.paths, DECISION_KIND, payload, mid, now)]

    def _approval(self, request: AccessRequest) -> SignedApproval | None:
        if request.state is not RequestState.APPROVED or request.grant is None:
            return None
        if self.signer is None:
            raise SupportStoreError(
                "approving needs the cluster's signing key: pass --zk-auth USER:PASSWORD"
            )
        return sign_approval(request.grant, self.signer)

    def record_arrival(
        self, transition: Transition, now: datetime, engineer_role: str | None = None
    ) -> bool:
        """Store a request that just arrived, decided by `decide_on_arrival` (or refused).

        Returns False (and changes nothing) when the request was already received.
        """
        self._ensure()
        request = transition.request
        approval = self._approval(request)
        record = StoredRequest(request, approval, engineer_role, -1)
        ops: list[TxOp] = [CreateNode(self.paths.support_request(request.id), record.to_bytes())]
        if request.state not in TERMINAL_STATES:
            ops.append(CreateNode(self.paths.support_open_request(request.id), b""))
        if request.state is not RequestState.PENDING:
            ops += self._decision_ops(request, approval, now)
        try:
            self.audit.append([transition.event], now, ops)
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
    ) -> Transition:
        """Apply `step` to request `request_id` (compare-and-set, re-decided on conflict).

        `step` raises `InvalidTransition` when the change is not allowed; nothing is written then.
        """
        self._ensure()
        for _ in range(MAX_ATTEMPTS):
            stored = self.get(request_id)
            if stored is None:
                raise SupportStoreError(f"no support request {request_id} on this cluster")
            transition = step(stored.request)
            request = transition.request
            approval = self._approval(request) or stored.approval
            record = StoredRequest(request, approval, stored.engineer_role, stored.version)
            ops: list[TxOp] = [
                SetNode(self.paths.support_request(request.id), record.to_bytes(), stored.version)
            ]
            marker = self.paths.support_open_request(request.id)
            if request.state in TERMINAL_STATES and self.client.exists(marker) is not None:
                ops.append(DeleteNode(marker))
            ops += self._decision_ops(request, approval, now)
            try:
                self.audit.append([transition.event], now, ops)
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
        command_id: str,
        payload: dict[str, Any],
        event: AuditEvent,
        now: datetime,
        extra_ops: Sequence[TxOp] = (),
    ) -> bool:
        """Claim `command_id`, record `event` and queue the result, in one transaction.

        Returns False (nothing written) when the command was already answered. `extra_ops` (a
        config change) fail with `OpFailed` on conflict; the caller re-reads and runs again.
        """
        self._ensure()
        claim = CreateNode(
            self.paths.support_command(check_id("command", command_id)),
            _dump(
                {
                    "request_id": payload.get("request_id"),
                    "status": payload.get("status"),
                    "at": format_time(now),
                }
            ),
        )
        message = outbox_op(
            self.paths, RESULT_KIND, payload, message_id(self.paths, "result", command_id), now
        )
        try:
            self.audit.append([event], now, [claim, *extra_ops, message])
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
        try:
            loaded = json.loads(data or b"{}")
        except ValueError:
            loaded = {}
        return (loaded if isinstance(loaded, dict) else {}), stat.version

    def health_summary(self) -> dict[str, Any]:
        """The leader's health summary (`paths.health`), empty when none was written."""
        try:
            data, _ = self.client.get(self.paths.health)
            loaded = json.loads(data or b"{}")
        except (NoNodeError, ValueError):
            return {}
        return loaded if isinstance(loaded, dict) else {}
