"""`managed support mode|requests|approve|deny|revoke|grants`: the cluster operator's decisions.

Every change is recorded in the audit log under the decider's name (`cluster.cli.deciders`:
the `--operator` name, or the verified person of `managed login` once approver groups are set)
and sent to Mission Control through the outbox.
Every change needs the cluster's ZooKeeper credential (`--zk-auth`, env `MANAGED_ZK_AUTH`): the
support state is writable only with it (`cluster.support.protection`), approving signs the grant
with the cluster's key, and a decision names an operator, which only a credential holder may do.
Reading (`mode` without changes, `requests`, `grants`) needs no credential.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click

from cluster.cli.common import Globals, emit, json_option, pass_globals
from cluster.cli.deciders import decider, operator_option, verified_decider

if TYPE_CHECKING:
    from cluster.support.records import StoredRequest
    from cluster.support.store import SupportStore
    from cluster.zk import ZooKeeper

# The domain (pydantic, cryptography) is imported inside the commands: `managed node run`
# shares this CLI and must start in well under a second. These mirror `SupportMode` and
# `AccessRole` (a unit test keeps them equal).
MODES = ("off", "approval", "allowed")
ROLES = ("viewer", "user", "admin")

F = TypeVar("F", bound=Callable[..., Any])


def domain_errors(f: F) -> F:
    """Support domain errors (invalid transition, bad policy) end in one line, exit 1."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from contract.support.errors import SupportError

        try:
            return f(*args, **kwargs)
        except SupportError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


def _require_credential(g: Globals, doing: str) -> None:
    """Changing support state needs the credential: say so before connecting."""
    if not g.zk_auth:
        raise click.ClickException(
            f"{doing} needs the cluster's ZooKeeper credential: "
            "pass --zk-auth USER:PASSWORD or set MANAGED_ZK_AUTH"
        )


def _store(g: Globals, client: ZooKeeper, *, need_key: bool) -> SupportStore:
    """A store that writes (and signs) with the cluster's credential (required for changes)."""
    from cluster.support import keys
    from cluster.support.store import SupportStore

    signer = keys.signing_key(client, g.paths, g.zk_auth) if need_key or g.zk_auth else None
    return SupportStore(client, g.paths, signer=signer, auth=g.zk_auth)


def _confirm(question: str) -> bool:
    """Ask on the terminal; no answer (stdin closed) means no."""
    try:
        return click.confirm(question, default=False)
    except click.Abort:
        return False


def _now() -> datetime:
    return datetime.now(UTC)


def _short(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if moment else "-"


@click.group()
def support() -> None:
    """Remote support: the mode, engineers' requests, approvals and grants."""


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


@support.command()
@click.argument("mode", required=False, type=click.Choice(MODES))
@click.option("--max-grant", help="Longest access window, e.g. 8h (at most 7d).")
@click.option("--roles", help="Roles that may be requested, comma separated (viewer,user,admin).")
@click.option("--preapproved", help="Engineers approved at once, comma separated ('' for none).")
@click.option("--pending-ttl", help="How long a request waits for a decision, e.g. 4d.")
@click.option(
    "--approver-groups",
    help="Groups whose verified members may decide (managed login), comma separated.",
)
@click.option("--approver-issuer", help="The OpenID Connect provider approvers log in at.")
@click.option("--approver-client-id", help="The client id `managed login` uses there.")
@operator_option
@json_option
@pass_globals
@domain_errors
def mode(
    g: Globals,
    mode: str | None,
    max_grant: str | None,
    roles: str | None,
    preapproved: str | None,
    pending_ttl: str | None,
    approver_groups: str | None,
    approver_issuer: str | None,
    approver_client_id: str | None,
    operator: str,
    as_json: bool,
) -> None:
    """Show or set the support mode (off, approval, allowed) and its limits."""
    from contract.support.policy import SupportPolicy

    changes: dict[str, Any] = {}
    if mode is not None:
        changes["mode"] = mode
    if max_grant is not None:
        changes["max_grant"] = max_grant
    if roles is not None:
        changes["allowed_roles"] = _csv(roles)
    if preapproved is not None:
        changes["preapproved"] = _csv(preapproved)
    if pending_ttl is not None:
        changes["pending_ttl"] = pending_ttl
    if approver_groups is not None:
        changes["approver_groups"] = _csv(approver_groups)
    if approver_issuer is not None:
        changes["approver_issuer"] = approver_issuer
    if approver_client_id is not None:
        changes["approver_client_id"] = approver_client_id
    # Validate before touching ZooKeeper: bad input changes nothing.
    SupportPolicy.from_config({**SupportPolicy().to_config(), **changes})
    if changes:
        _require_credential(g, "changing the support mode")
    with g.session() as client:
        store = _store(g, client, need_key=False)
        if changes:
            # Once approver groups are set, changing them (or anything) needs an approver.
            actor = decider(store, operator, "change the support settings", "policy")
            policy = store.set_policy(
                lambda old: SupportPolicy.from_config({**old.to_config(), **changes}),
                actor,
                _now(),
            )
        else:
            policy, _ = store.policy()
    doc = policy.to_config()
    emit(
        as_json,
        doc,
        lambda: "\n".join(
            [
                f"mode          {doc['mode']}" + (" (changed)" if changes else ""),
                f"max grant     {doc['max_grant']}",
                f"roles         {', '.join(doc['allowed_roles'])}",
                f"preapproved   {', '.join(doc['preapproved']) or '-'}",
                f"pending ttl   {doc['pending_ttl']}",
                f"approvers     {', '.join(doc['approver_groups']) or '-'}"
                + (f" at {doc['approver_issuer']}" if doc["approver_groups"] else ""),
            ]
        ),
    )


def _view(stored: StoredRequest, now: datetime) -> dict[str, Any]:
    """A request as the operator sees it; `state` says `expired`/`ended` once due."""
    from contract.audit.canonical import format_time
    from contract.support.policy import format_duration
    from contract.support.requests import expire_due

    request = stored.request
    due = expire_due(request, now)
    shown = due.request if due is not None else request
    grant = shown.grant
    return {
        "id": request.id,
        "state": shown.state.value,
        "engineer": request.engineer,
        "engineer_role": stored.engineer_role,
        "reason": request.reason,
        "role": request.role.value,
        "duration": format_duration(request.duration),
        "requested_at": format_time(request.requested_at),
        "pending_until": format_time(request.pending_until) if request.pending_until else None,
        "decided_at": format_time(shown.decided_at) if shown.decided_at else None,
        "decided_by": shown.decided_by.name if shown.decided_by else None,
        "note": shown.note,
        "grant": (
            {
                "id": grant.grant_id,
                "role": grant.role.value,
                "starts_at": format_time(grant.starts_at),
                "ends_at": format_time(grant.ends_at),
                "duration": format_duration(grant.ends_at - grant.starts_at),
                "approved_by": grant.approved_by.name,
                "closed_at": format_time(grant.closed_at) if grant.closed_at else None,
                "closed_by": grant.closed_by.name if grant.closed_by else None,
                "close_reason": grant.close_reason,
            }
            if grant is not None
            else None
        ),
    }


def _table(rows: list[dict[str, Any]], empty: str) -> str:
    """Pending first; UNTIL is the grant's end, or a pending request's deadline."""
    if not rows:
        return empty
    width = max(len("ID"), *(len(r["id"]) for r in rows))
    lines = [
        f"{'ID':<{width}} {'STATE':<9} {'ENGINEER':<12} {'ROLE':<7} {'FOR':<7} {'UNTIL':<21} WHY"
    ]
    for r in rows:
        grant = r["grant"]
        until = grant["ends_at"] if grant else r["pending_until"]
        if r["state"] in ("denied", "expired"):
            until = None
        lines.append(
            f"{r['id']:<{width}} {r['state']:<9} {r['engineer']:<12} "
            f"{(grant['role'] if grant else r['role']):<7} "
            f"{(grant['duration'] if grant else r['duration']):<7} "
            f"{_short(datetime.fromisoformat(until) if until else None):<21} {r['reason']}"
        )
        if r["decided_by"]:
            note = f": {r['note']}" if r["note"] else ""
            at = _short(datetime.fromisoformat(r["decided_at"])) if r["decided_at"] else "-"
            lines.append(f"{'':<{width}} decided by {r['decided_by']} at {at}{note}")
        if grant and grant["closed_by"]:
            why = f": {grant['close_reason']}" if grant["close_reason"] else ""
            at = _short(datetime.fromisoformat(grant["closed_at"]))
            lines.append(f"{'':<{width}} closed by {grant['closed_by']} at {at}{why}")
    return "\n".join(lines)


@support.command("requests")
@json_option
@pass_globals
@domain_errors
def list_requests(g: Globals, as_json: bool) -> None:
    """Pending and past requests: who, why, which role, for how long, and what was decided."""
    from cluster.support.store import SupportStore

    now = _now()
    with g.session() as client:
        stored = SupportStore(client, g.paths).all()
    rows = [_view(s, now) for s in stored]
    rows.sort(key=lambda r: (r["state"] != "pending", r["requested_at"]), reverse=False)
    emit(as_json, rows, lambda: _table(rows, "no support requests yet"))


@support.command()
@json_option
@pass_globals
@domain_errors
def grants(g: Globals, as_json: bool) -> None:
    """Grants running now (approved, inside their window, not revoked)."""
    from cluster.support.store import SupportStore
    from contract.support.requests import RequestState

    now = _now()
    with g.session() as client:
        stored = SupportStore(client, g.paths).open()
    rows = [
        _view(s, now)
        for s in stored
        if s.request.state is RequestState.APPROVED
        and s.request.grant is not None
        and s.request.grant.is_open(now)
    ]
    rows.sort(key=lambda r: r["grant"]["ends_at"])
    emit(as_json, rows, lambda: _table(rows, "no running grants"))


@support.command("approve")
@click.argument("request_id", metavar="ID")
@click.option("--for", "duration", help="Grant a shorter window than requested, e.g. 2h.")
@click.option("--role", type=click.Choice(ROLES), help="Grant a lesser role.")
@click.option(
    "--sensitive-data",
    is_flag=True,
    help="Also let the engineer see sensitive monitoring data (user tags) unmasked.",
)
@operator_option
@pass_globals
@domain_errors
def approve_cmd(
    g: Globals,
    request_id: str,
    duration: str | None,
    role: str | None,
    sensitive_data: bool,
    operator: str,
) -> None:
    """Approve a pending request; the window starts now. Needs --zk-auth (signs the grant).
    Monitoring data is shown masked to the engineer unless --sensitive-data is given."""
    from contract.support.policy import AccessRole, parse_duration
    from contract.support.requests import approve

    window = parse_duration(duration) if duration is not None else None
    _require_credential(g, "approving")
    with g.session() as client:
        store = _store(g, client, need_key=True)
        actor, identity = verified_decider(store, operator, "approve", request_id)
        policy, _ = store.policy()
        now = _now()
        done = store.change(
            request_id,
            lambda r: approve(
                r,
                actor,
                now,
                policy=policy,
                role=AccessRole(role) if role else None,
                duration=window,
                sensitive_data=sensitive_data,
            ),
            now,
            identity=identity,
        )
    click.echo(done.notice + (" (with sensitive data)" if sensitive_data else ""))


@support.command("deny")
@click.argument("request_id", metavar="ID")
@click.option("--reason", required=True, help="Shown to the engineer.")
@operator_option
@pass_globals
@domain_errors
def deny_cmd(g: Globals, request_id: str, reason: str, operator: str) -> None:
    """Deny a pending request, with a reason the engineer will see."""
    from contract.support.requests import deny

    if not reason.strip():
        raise click.BadParameter("give a reason", param_hint="--reason")
    _require_credential(g, "denying")
    with g.session() as client:
        store = _store(g, client, need_key=False)
        actor, identity = verified_decider(store, operator, "deny", request_id)
        now = _now()
        done = store.change(
            request_id, lambda r: deny(r, actor, now, reason), now, identity=identity
        )
    click.echo(done.notice)


@support.command("revoke")
@click.argument("request_id", metavar="ID")
@click.option("--reason", help="Shown to the engineer.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@operator_option
@pass_globals
@domain_errors
def revoke_cmd(g: Globals, request_id: str, reason: str | None, yes: bool, operator: str) -> None:
    """End a running grant now; the next command under it is refused."""
    from contract.support.requests import revoke

    _require_credential(g, "revoking")
    if not yes and not _confirm(f"End the engineer's access under request {request_id} now?"):
        raise click.ClickException("not revoked (answer y, or pass --yes)")
    with g.session() as client:
        store = _store(g, client, need_key=False)
        actor, identity = verified_decider(store, operator, "revoke", request_id)
        now = _now()
        done = store.change(
            request_id, lambda r: revoke(r, actor, now, reason), now, identity=identity
        )
    click.echo(done.notice)
