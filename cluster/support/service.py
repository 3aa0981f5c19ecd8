"""The leader's side of remote support: apply what a Mission Control heartbeat reply carries.

`SupportService.handle_heartbeat` runs in the leader only, once per heartbeat reply:

1. requests: a new `pending` request is decided on arrival by the cluster's policy (`off` refuses,
   `allowed` approves and signs, `approval` leaves it pending for an operator, until the earlier
   of the cluster's and Mission Control's deadlines); a request whose state Mission Control
   changed (`revoked` by staff, `ended` by the engineer, or `revoked` by `system` when Mission
   Control refused the cluster's approval) gets that transition;
2. the sweep: pending requests past their deadline expire, grants past their window end; with
   approver groups set, each operator's approval is verified (`cluster.support.approvers`: the
   embedded ID token, the provider's keys) and a refused one is withdrawn (`revoked` by
   `system`, audited as `support.approval.refused` with the reason, reported to Mission
   Control);
3. commands: each is checked with `authorize` (and must come from the grant's engineer, under
   an approval the leader verified) BEFORE it runs, runs at most once per command id, and is
   answered with `support/command-result`. The answer commits only if the request record is
   unchanged since the check, so a revocation that lands while a command runs refuses it (and
   a `config set` is then not applied).

Guarantees: every step is idempotent (a reply may repeat items; a repeated request or an answered
command changes nothing) and is one ZooKeeper transaction (record, audit entry, outbox message;
see `cluster.support.store`), fenced by the leader's epoch. Steps 1 and 2 run before step 3, so
a revocation or expiry carried by the same reply takes effect before any command runs. A
malformed item is logged and skipped; it never stops the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cluster import zk
from cluster.errors import ClusterError
from cluster.leadership import LeaderContext
from cluster.link.exchange import HeartbeatHandler
from cluster.model import dump
from cluster.paths import ClusterPaths
from cluster.secrets import SecretsUnavailable
from cluster.support import keys
from cluster.support.approvers import ApproverCheck, ApproversUnreachable
from cluster.support.items import (
    VIA,
    CommandItem,
    RequestItem,
    already_expired,
    arriving_request,
    honour_deadline,
    mc_actor,
    refuse_foreign,
    refused_by_mission_control,
    safe_arguments,
    via,
    withdraw,
)
from cluster.support.records import StoredRequest, SupportStoreError, check_id
from cluster.support.runner import CommandResult, CommandStatus, run_command
from cluster.support.store import SupportStore
from cluster.zk import Create, Op, OpFailed, SetData, ZooKeeper
from cluster.zk.errors import BadVersionError, NoNodeError
from contract.audit.chain import CheckpointSchedule
from contract.audit.events import ActorKind
from contract.messages import HeartbeatReply, SupportCommandResultBody
from contract.support.commands import Decision, authorize, command_event
from contract.support.errors import InvalidTransition, SupportError
from contract.support.requests import (
    TERMINAL_STATES,
    AccessRequest,
    Transition,
    decide_on_arrival,
    end,
    expire_due,
    revoke,
)

if TYPE_CHECKING:
    from cluster.data.support_reads import SupportDataReader  # loaded only by nodes serving data

__all__ = ["VIA", "CommandItem", "RequestItem", "SupportService", "handle_heartbeat"]

log = logging.getLogger(__name__)


Item = TypeVar("Item", RequestItem, CommandItem)


def node_log_path(data_dir: Path) -> Path:
    """Where the node daemon writes its log; `logs tail` reads it."""
    return data_dir / "logs" / "node.log"


class SupportService:
    """Applies heartbeat replies for one cluster; keep one instance per leader term.

    `cluster_id` is the id Mission Control uses for this cluster in requests and grants; by
    default `mission_control.cluster_id` from the cluster config (written at enrollment), else
    the cluster's name. `oidc_ca` is the CA of the approvers' provider's certificate (None: the
    system's store).
    """

    name = "support"

    def __init__(
        self,
        *,
        cluster_id: str | None = None,
        log_path: Path | None = None,
        schedule: CheckpointSchedule | None = None,
        data_reader: SupportDataReader | None = None,
        oidc_ca: Path | None = None,
    ) -> None:
        self.cluster_id = cluster_id
        self.log_path = log_path
        self.data_reader = data_reader
        self.schedule = schedule
        self._key: Ed25519PrivateKey | None = None
        self._protected = False
        self._approvers = ApproverCheck(oidc_ca)

    async def handle_heartbeat(
        self,
        ctx: LeaderContext,
        client: ZooKeeper,
        paths: ClusterPaths,
        auth: str | None,
        reply: HeartbeatReply,
        now: datetime,
    ) -> list[str]:
        """Apply `reply`; returns one readable line per thing done (for the leader's log)."""
        if not ctx.leading or ctx.fence is None:
            return ["support: not leading, nothing applied"]
        requests, commands = reply.support_requests, reply.commands
        if self._key is None and auth:
            try:
                self._key = await ctx.blocking(keys.signing_key, client, paths, auth)
            except ClusterError as exc:
                log.error("support: no signing key, approvals and checkpoints wait: %s", exc)
        store = SupportStore(
            client, paths, fence=ctx.fence, signer=self._key, schedule=self.schedule, auth=auth
        )
        if not self._protected and auth:
            try:
                await ctx.blocking(store.protect, now)
                self._protected = True
            except ClusterError as exc:
                log.error("support: cannot protect the support znodes: %s", exc)
        cluster_id = self.cluster_id
        if not cluster_id:
            cluster_id = await ctx.blocking(_enrolled_id, store)
        done: list[str] = []
        for request in requests:
            done.append(
                await self._guard(ctx, self._apply_request, store, request, cluster_id, now)
            )
        try:
            done.extend(await ctx.blocking(self._sweep, store, now))
            done.extend(await ctx.blocking(self._check_approvals, store, now))
        except (SecretsUnavailable, SupportStoreError) as exc:
            done.append(f"sweep skipped: {exc}")
        for command in commands:
            done.append(await self._guard(ctx, self._run_command, store, command, cluster_id, now))
        for line in done:
            log.info("%s", line)
        return done

    def for_exchange(self, auth: str | None) -> HeartbeatHandler:
        """The `(ctx, reply, now)` handler `cluster.link.exchange.MissionControlExchange` calls.

        Uses the leader's own ZooKeeper session (`ctx.zookeeper`, the daemon's).
        """

        async def handle(ctx: LeaderContext, reply: HeartbeatReply, now: datetime) -> None:
            await self.handle_heartbeat(ctx, ctx.zookeeper, ctx.paths, auth, reply, now)

        return handle

    async def _guard(
        self,
        ctx: LeaderContext,
        step: Callable[[SupportStore, Item, str, datetime], str],
        store: SupportStore,
        item: Item,
        cluster_id: str,
        now: datetime,
    ) -> str:
        """One item's step; a user-level failure is logged and does not stop the others."""
        try:
            return await ctx.blocking(step, store, item, cluster_id, now)
        except (SupportError, SupportStoreError, SecretsUnavailable) as exc:
            log.warning("support: %s", exc)
            return f"skipped: {exc}"

    # --- the steps (blocking; run through ctx.blocking) ---------------------------------------

    def _apply_request(
        self, store: SupportStore, item: RequestItem, cluster_id: str, now: datetime
    ) -> str:
        check_id("request", item.id)
        stored = store.get(item.id)
        if item.state == "pending":
            if stored is not None:
                return f"request {item.id}: already received ({stored.request.state.value})"
            request = arriving_request(item)
            deadline = item.pending_until
            if item.cluster != cluster_id:
                transition = refuse_foreign(request, cluster_id, now)
            elif deadline is not None and deadline <= now:
                transition = already_expired(request, deadline, now)
            else:
                policy, _ = store.policy()
                transition = honour_deadline(decide_on_arrival(request, policy, now), deadline)
            transition = replace(transition, event=via(transition.event, item.engineer_role))
            if not store.record_arrival(transition, now, item.engineer_role):
                return f"request {item.id}: already received"
            return transition.notice
        if item.state not in ("revoked", "ended"):
            return f"request {item.id}: state {item.state!r} from Mission Control ignored"
        if stored is None:
            if refused_by_mission_control(item):
                # Refused there before it ever reached us: kept here too, as denied.
                refused = withdraw(arriving_request(item), now, item.state_reason)
                refused = replace(refused, event=via(refused.event, item.engineer_role))
                if not store.record_arrival(refused, now, item.engineer_role):
                    return f"request {item.id}: already received"
                return refused.notice
            return f"request {item.id}: {item.state} by Mission Control, but never received here"
        if stored.request.state in TERMINAL_STATES:
            return f"request {item.id}: already {stored.request.state.value}"
        actor = mc_actor(item)

        def step(current: AccessRequest) -> Transition:
            if refused_by_mission_control(item):
                return withdraw(current, now, item.state_reason)
            if item.state == "ended" and actor.kind is ActorKind.ENGINEER:
                return end(current, actor, now)
            return revoke(current, actor, now, item.state_reason)

        try:
            return store.change(item.id, step, now).notice
        except InvalidTransition as exc:
            return f"request {item.id}: {item.state} by Mission Control not applied: {exc}"

    def _sweep(self, store: SupportStore, now: datetime) -> list[str]:
        done = []
        for stored in store.open():
            if expire_due(stored.request, now) is None:
                continue

            def step(current: AccessRequest) -> Transition:
                due = expire_due(current, now)
                if due is None:
                    raise InvalidTransition(f"request {current.id}: nothing is due any more")
                return due

            try:
                done.append(store.change(stored.request.id, step, now).notice)
            except InvalidTransition as exc:
                done.append(str(exc))
        return done

    def _check_approvals(self, store: SupportStore, now: datetime) -> list[str]:
        """Withdraw every running grant whose approval does not prove a verified approver."""
        policy, _ = store.policy()
        done = []
        running = store.open()
        self._approvers.forget_all_but({s.approval.approval_id for s in running if s.approval})
        for stored in running:
            try:
                refusal = self._approvers.refusal(policy, stored)
            except ApproversUnreachable as exc:
                done.append(f"request {stored.request.id}: approver not checked yet: {exc}")
                continue
            if refusal is not None:
                done.append(_withdraw(store, stored.request.id, refusal, now))
        return done

    def _verified_approval(self, store: SupportStore, stored: StoredRequest) -> Decision:
        """Commands run only under an approval this leader verified (see `_check_approvals`)."""
        policy, _ = store.policy()
        try:
            refusal = self._approvers.refusal(policy, stored)
        except ApproversUnreachable as exc:
            refusal = f"the approver cannot be checked yet: {exc}"
        return Decision.refuse(refusal) if refusal else Decision.allow("approver verified")

    def _run_command(
        self, store: SupportStore, item: CommandItem, cluster_id: str, now: datetime
    ) -> str:
        check_id("command", item.id)
        if store.answered(item.id):
            return f"command {item.id}: already answered"
        for _ in range(10):
            try:
                stored = store.get(item.request_id)
            except SupportStoreError:
                stored = None  # an invalid request id names no grant
            grant = stored.request.grant if stored is not None else None
            decision = authorize(grant, item.command, cluster_id, now)
            if decision.allowed and grant is not None and grant.engineer != item.engineer:
                decision = Decision.refuse(
                    f"grant {grant.grant_id} belongs to {grant.engineer}, not {item.engineer}"
                )
            if decision.allowed and stored is not None:
                checked = self._verified_approval(store, stored)
                decision = decision if checked.allowed else checked
            version = stored.version if stored is not None else None
            ops: list[Op] = []
            if decision.allowed:
                result, ops = self._execute(store, item)
                if result.status is CommandStatus.REFUSED:
                    decision = Decision.refuse(result.summary)
            else:
                result = CommandResult(CommandStatus.REFUSED, decision.reason)
            answer = SupportCommandResultBody(
                command_id=item.id,
                request_id=item.request_id,
                status=result.status.value,
                summary=result.summary,
                output=result.output,
                at=now,
            )
            event = command_event(
                grant,
                item.engineer,
                item.command,
                cluster_id,
                decision,
                now,
                arguments=safe_arguments(item.arguments),
                result_summary=f"{result.status.value}: {result.summary}",
            )
            try:
                if not store.answer(answer, via(event), now, ops, request_version=version):
                    return f"command {item.id}: already answered"
            except OpFailed as failed:
                if isinstance(failed.error, BadVersionError | NoNodeError):
                    # The grant (revoked meanwhile) or the config changed while we ran: check
                    # the grant again and run again on what is stored now.
                    continue
                raise
            return f"command {item.id} ({item.command}) by {item.engineer}: " + (
                f"{result.status.value}: {result.summary}"
            )
        raise SupportStoreError(
            f"command {item.id}: the grant or the config keeps changing; will retry"
        )

    def _execute(self, store: SupportStore, item: CommandItem) -> tuple[CommandResult, list[Op]]:
        config, version = store.config()
        # Read again here (the caller checked the grant a moment ago): what a data command may
        # show depends on the grant's approval, and unmasked only when it says so.
        stored = store.get(item.request_id)
        grant = stored.request.grant if stored is not None else None
        sensitive_data = grant is not None and grant.sensitive_data
        snapshot = zk.read_snapshot(store.client, store.paths)
        reader = self.data_reader

        def read_data(kind: str, arguments: Mapping[str, Any], sensitive: bool) -> Any:
            assert reader is not None
            return reader.read(store.client, store.paths, kind, arguments, item.engineer, sensitive)

        result = run_command(
            item.command,
            item.arguments,
            snapshot,
            store.health_summary(),
            config,
            self.log_path,
            data=read_data if reader is not None else None,
            sensitive_data=sensitive_data,
        )
        if result.new_config is None:
            return result, []
        data = dump(result.new_config)
        if version < 0:
            return result, [Create(store.paths.config, data)]
        return result, [SetData(store.paths.config, data, version)]


def _withdraw(store: SupportStore, request_id: str, reason: str, now: datetime) -> str:
    """Close the grant of an approval the leader refused (`revoked` by `system`, audited as
    `support.approval.refused` with `reason`, reported to Mission Control)."""
    try:
        return store.change(request_id, lambda current: withdraw(current, now, reason), now).notice
    except InvalidTransition as exc:
        return str(exc)


def _enrolled_id(store: SupportStore) -> str:
    """The id Mission Control knows this cluster by (set at enrollment), else its name."""
    config, _ = store.config()
    link = config.get("mission_control")
    enrolled = link.get("cluster_id") if isinstance(link, dict) else None
    return enrolled if isinstance(enrolled, str) and enrolled else store.paths.cluster


async def handle_heartbeat(
    ctx: LeaderContext,
    client: ZooKeeper,
    paths: ClusterPaths,
    auth: str | None,
    reply: HeartbeatReply,
    now: datetime,
    *,
    cluster_id: str | None = None,
    log_path: Path | None = None,
) -> list[str]:
    """One-shot form of `SupportService.handle_heartbeat` (keep a service to cache the key)."""
    service = SupportService(cluster_id=cluster_id, log_path=log_path)
    return await service.handle_heartbeat(ctx, client, paths, auth, reply, now)
