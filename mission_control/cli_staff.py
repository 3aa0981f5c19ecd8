"""`mission-control users|tokens|audit`: staff accounts, their API tokens, the audit log.

- `users add NAME --role ROLE` reads the password twice (hidden prompts on a terminal, two lines
  from stdin otherwise), refuses a weak one without storing anything, and prints the TOTP
  enrolment URI (otpauth://) alone on stdout.
- `tokens create --user NAME` needs an existing user and takes that user's role; `tokens list`
  shows every token ever issued (id, owner, kind, hint, dates; never the token), `tokens revoke
  ID` revokes one at once.
- `audit verify` exits 1 and names the first altered, inserted or removed entry.
Every change is audited with the person running the command (the OS login name).
"""

from __future__ import annotations

import getpass
import json
import sys

import click

from contract.messages import StaffRole
from mission_control.cli_common import (
    ROW_ID,
    db_option,
    json_option,
    name_param,
    run_on_db,
    table,
    when,
)
from mission_control.service.accounts import audit_log, staff
from mission_control.service.accounts import users as user_store

ROLES = tuple(role.value for role in StaffRole)


def _operator() -> str:
    """Who runs this command, for the audit log."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in this environment (some containers)
        return "unknown-operator"


def _read_password() -> str:
    if sys.stdin.isatty():
        password: str = click.prompt(
            "Password", hide_input=True, confirmation_prompt="Repeat the password"
        )
        return password
    first, second = sys.stdin.readline(), sys.stdin.readline()
    if not first.endswith("\n") or not second:
        raise click.ClickException("give the password twice, one line each, on stdin")
    first, second = first.rstrip("\r\n"), second.rstrip("\r\n")
    if first != second:
        raise click.ClickException("the two passwords differ; nothing was stored")
    return first


@click.group()
def users() -> None:
    """Staff accounts (password + TOTP)."""


@users.command("add")
@click.argument("name", callback=name_param)
@click.option("--role", required=True, type=click.Choice(ROLES))
@db_option
def users_add(name: str, role: str, db_url: str) -> None:
    """Create a staff account; prints its TOTP enrolment URI (only that, on stdout)."""
    password = _read_password()
    by = audit_log.cli_actor(_operator())
    created = run_on_db(
        db_url,
        lambda ctx: user_store.add_user(ctx, name, StaffRole(role), password, by=by),
        migrate=False,
    )
    click.echo(f"user {name} ({role}) created; add this to an authenticator app:", err=True)
    click.echo(created.totp_uri)


@users.command("list")
@db_option
@json_option
def users_list(db_url: str, as_json: bool) -> None:
    """Staff accounts."""
    found = run_on_db(db_url, user_store.list_users, migrate=False)
    if as_json:
        listed = [
            {
                "name": u.name,
                "role": u.role.value,
                "created_at": u.created_at.isoformat(),
                "disabled": u.disabled,
            }
            for u in found
        ]
        click.echo(json.dumps(listed, indent=2))
        return
    rows = [
        (u.name, u.role.value, when(u.created_at), "yes" if u.disabled else "no") for u in found
    ]
    table(rows, ("NAME", "ROLE", "CREATED", "DISABLED"))


@users.command("disable")
@click.argument("name", callback=name_param)
@db_option
def users_disable(name: str, db_url: str) -> None:
    """Disable an account: no more logins, and its tokens stop working at once."""
    by = audit_log.cli_actor(_operator())
    run_on_db(db_url, lambda ctx: user_store.disable_user(ctx, name, by=by), migrate=False)
    click.echo(f"user {name} disabled", err=True)


@click.group()
def tokens() -> None:
    """Staff API tokens."""


@tokens.command("create")
@click.option("--user", required=True, callback=name_param)
@click.option("--role", type=click.Choice(ROLES), help="Optional check: the user's role.")
@db_option
def tokens_create(user: str, role: str | None, db_url: str) -> None:
    """Create an API token for an existing user; prints it once (only that, on stdout)."""
    by = audit_log.cli_actor(_operator())
    issued = run_on_db(
        db_url,
        lambda ctx: staff.create_staff_token(ctx, user, by=by, expect_role=role),
        migrate=False,
    )
    click.echo(f"token for {user} ({issued.role}) shown once:", err=True)
    click.echo(issued.token)


def _optional_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    return name_param(ctx, param, value) if value is not None else None


@tokens.command("list")
@click.option("--user", callback=_optional_name, help="Only this user's tokens.")
@db_option
@json_option
def tokens_list(user: str | None, db_url: str, as_json: bool) -> None:
    """Staff tokens (API and login sessions): id, owner, kind, hint, issued, expiry, revoked."""
    found = run_on_db(db_url, lambda ctx: staff.list_tokens(ctx, user), migrate=False)
    if as_json:
        listed = [
            {
                "id": t.id,
                "user": t.user,
                "kind": t.kind,
                "hint": t.hint,
                "created_at": t.created_at.isoformat(),
                "expires_at": t.expires_at.isoformat() if t.expires_at else None,
                "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
            }
            for t in found
        ]
        click.echo(json.dumps(listed, indent=2))
        return
    rows = [
        (
            str(t.id),
            t.user,
            t.kind,
            t.hint,
            when(t.created_at),
            when(t.expires_at),
            when(t.revoked_at),
        )
        for t in found
    ]
    table(rows, ("ID", "USER", "KIND", "HINT", "ISSUED", "EXPIRES", "REVOKED"))


@tokens.command("revoke")
@click.argument("token_id", type=ROW_ID, metavar="ID")
@db_option
def tokens_revoke(token_id: int, db_url: str) -> None:
    """Revoke a staff token at once (see `tokens list` for ids)."""
    by = audit_log.cli_actor(_operator())
    done = run_on_db(db_url, lambda ctx: staff.revoke_token(ctx, token_id, by=by), migrate=False)
    click.echo(f"token {token_id} of {done.user} ({done.hint}) revoked", err=True)


@click.group()
def audit() -> None:
    """Mission Control's audit log."""


@audit.command("verify")
@db_option
def audit_verify(db_url: str) -> None:
    """Check the hash chain and signed checkpoints; exit 1 at the first problem."""
    result = run_on_db(db_url, audit_log.verify, migrate=False)
    if not result.ok:
        raise click.ClickException(result.summary())
    click.echo(result.summary())
