"""`managed env ...` and `managed token ...`: environments of monitoring data, their privacy
settings and processing rules, and the tokens that write or read their data.

Every change is validated whole, written to the cluster config together with its audit entry
(`cluster.data.registry`) under the operator's name (`--operator`, env `MANAGED_OPERATOR`), and
needs the cluster's credential. A token is printed once; only its SHA-256 is stored.
"""

from __future__ import annotations

import time
from typing import Any

import click

from cluster.cli.common import Globals, emit, json_option, pass_globals
from cluster.cli.deciders import operator_actor, operator_option

DNT = ("anonymous", "nothing")
IP_MODES = ("all", "public", "off")


@click.group()
def env() -> None:
    """Environments of monitoring data: retention, processing rules, applications' privacy."""


def _change(g: Globals, operator: str, action: str, subject: str, change: Any) -> Any:
    from cluster.data import registry

    with g.session() as client:
        return registry.change_settings(
            client, g.paths, operator_actor(operator), action, subject, change
        )


@env.command("create")
@click.argument("name")
@click.option("--retention-days", type=click.IntRange(1, 3650), default=35, show_default=True)
@operator_option
@pass_globals
def create(g: Globals, name: str, retention_days: int, operator: str) -> None:
    """Create environment NAME (card numbers and IP addresses masked in its log records)."""
    from cluster.data.settings import DataSettingsError, Environment, check_data_name

    check_data_name("environment", name)

    def add(settings: Any) -> Any:
        if name in settings.environments:
            raise DataSettingsError(f"environment {name} exists already")
        new = Environment(name, retention_days)
        envs = {**settings.environments, name: new}
        return type(settings)(envs, settings.sensitive_data), {"retention_days": retention_days}

    _change(g, operator, "data.env.created", name, add)
    click.echo(f"environment {name} created (retention {retention_days} days)")


@env.command("list")
@json_option
@pass_globals
def list_envs(g: Globals, as_json: bool) -> None:
    """Environments with their retention, rules and applications."""
    from cluster.data import registry

    with g.session() as client:
        settings = registry.read_settings(client, g.paths)
    doc = {k: v.to_json() for k, v in sorted(settings.environments.items())}

    def text() -> str:
        if not doc:
            return "no environments (create one with `managed env create NAME`)"
        lines = []
        for name, e in doc.items():
            rules = ", ".join(r["name"] for r in e["rules"]) or "none"
            apps = ", ".join(e["applications"]) or "none configured"
            lines.append(f"{name}: retention {e['retention_days']}d; rules: {rules}; apps: {apps}")
        return "\n".join(lines)

    emit(as_json, doc, text)


@env.command("retention")
@click.argument("name")
@click.argument("days", type=click.IntRange(1, 3650))
@operator_option
@pass_globals
def retention(g: Globals, name: str, days: int, operator: str) -> None:
    """Keep environment NAME's data for DAYS days."""
    from dataclasses import replace

    def set_days(settings: Any) -> Any:
        current = settings.environment(name)
        envs = {**settings.environments, name: replace(current, retention_days=days)}
        detail = {"before": current.retention_days, "after": days}
        return type(settings)(envs, settings.sensitive_data), detail

    _change(g, operator, "data.env.retention", name, set_days)
    click.echo(f"environment {name}: retention {days} days")


@env.group()
def rule() -> None:
    """Processing rules: what is masked in log records at ingest (and at capture)."""


@rule.command("add")
@click.argument("env_name", metavar="ENV")
@click.argument("name")
@click.option("--pattern", help="A regular expression (Python syntax).")
@click.option("--replacement", default="<masked>", show_default=True)
@click.option("--detector", type=click.Choice(["card", "iban", "email", "ip", "uuid", "id"]))
@operator_option
@pass_globals
def rule_add(
    g: Globals,
    env_name: str,
    name: str,
    pattern: str | None,
    replacement: str,
    detector: str | None,
    operator: str,
) -> None:
    """Add rule NAME to ENV (applied after the existing ones)."""
    from dataclasses import replace

    from cluster.data.settings import DataSettingsError
    from contract.privacy.rules import MAX_RULES, ProcessingRule

    try:
        new_rule = ProcessingRule(name, pattern, replacement, detector)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None

    def add(settings: Any) -> Any:
        current = settings.environment(env_name)
        if any(r.name == name for r in current.rules):
            raise DataSettingsError(f"environment {env_name} has a rule {name} already")
        if len(current.rules) >= MAX_RULES:
            raise DataSettingsError(f"at most {MAX_RULES} rules per environment")
        updated = replace(current, rules=(*current.rules, new_rule))
        envs = {**settings.environments, env_name: updated}
        return type(settings)(envs, settings.sensitive_data), new_rule.to_json()

    _change(g, operator, "data.rule.added", env_name, add)
    click.echo(
        f"environment {env_name}: rule {name} added; `managed data remask --env {env_name}` "
        "applies it to what is stored already"
    )


@rule.command("remove")
@click.argument("env_name", metavar="ENV")
@click.argument("name")
@operator_option
@pass_globals
def rule_remove(g: Globals, env_name: str, name: str, operator: str) -> None:
    """Remove rule NAME from ENV."""
    from dataclasses import replace

    from cluster.data.settings import DataSettingsError

    def remove(settings: Any) -> Any:
        current = settings.environment(env_name)
        kept = tuple(r for r in current.rules if r.name != name)
        if len(kept) == len(current.rules):
            raise DataSettingsError(f"environment {env_name} has no rule {name}")
        envs = {**settings.environments, env_name: replace(current, rules=kept)}
        return type(settings)(envs, settings.sensitive_data), {"rule": name}

    _change(g, operator, "data.rule.removed", env_name, remove)
    click.echo(f"environment {env_name}: rule {name} removed")


@env.command("app")
@click.argument("env_name", metavar="ENV")
@click.argument("app_name", metavar="APP")
@click.option("--dnt", type=click.Choice(DNT), help="Do Not Track: anonymous session or nothing.")
@click.option("--opt-in/--no-opt-in", default=None, help="Capture only after enable().")
@click.option("--ip-masking", type=click.Choice(IP_MODES), help="Which client addresses to mask.")
@click.option("--uri-masking/--no-uri-masking", default=None, help="Mask personal data in URIs.")
@click.option("--user-tags/--no-user-tags", default=None, help="Capture user tags (e-mails).")
@json_option
@operator_option
@pass_globals
def app(
    g: Globals,
    env_name: str,
    app_name: str,
    dnt: str | None,
    opt_in: bool | None,
    ip_masking: str | None,
    uri_masking: bool | None,
    user_tags: bool | None,
    as_json: bool,
    operator: str,
) -> None:
    """Show or change APP's privacy settings in ENV (each change audited)."""
    from dataclasses import replace

    from cluster.data import registry
    from cluster.data.settings import check_data_name

    check_data_name("application", app_name)
    asked = {
        "dnt": dnt,
        "opt_in": opt_in,
        "ip_masking": ip_masking,
        "uri_masking": uri_masking,
        "user_tags": user_tags,
    }
    changes = {k: v for k, v in asked.items() if v is not None}
    if not changes:
        with g.session() as client:
            current = registry.read_settings(client, g.paths).environment(env_name).app(app_name)
        doc = current.to_json()
        emit(as_json, doc, lambda: "\n".join(f"{k}: {v}" for k, v in doc.items()))
        return

    def update(settings: Any) -> Any:
        current = settings.environment(env_name)
        before = current.app(app_name)
        after = replace(before, **changes)
        envs = {**settings.environments, env_name: current.with_app(app_name, after)}
        detail = {
            "app": app_name,
            "before": {k: before.to_json()[k] for k in changes},
            "after": {k: after.to_json()[k] for k in changes},
        }
        return type(settings)(envs, settings.sensitive_data), detail

    new = _change(g, operator, "data.privacy.changed", env_name, update)
    doc = new.environment(env_name).app(app_name).to_json()
    emit(
        as_json,
        doc,
        lambda: f"{env_name}/{app_name}: " + ", ".join(f"{k}={v}" for k, v in doc.items()),
    )


@click.group()
def token() -> None:
    """Ingest tokens (write an environment's data) and read tokens (an operator's)."""


@token.command("create")
@click.option("--scope", type=click.Choice(["ingest", "read"]), required=True)
@click.option("--env", "env_name", help="The environment (ingest: required; read: limits it).")
@click.option("--for", "holder", help="Read tokens: the operator whose credential it is.")
@operator_option
@pass_globals
def create_token(
    g: Globals, scope: str, env_name: str | None, holder: str | None, operator: str
) -> None:
    """Create a token; it is printed once (on stdout, alone) and stored only hashed."""
    from cluster.data import registry
    from cluster.data.settings import check_data_name
    from cluster.data.tokens import new_token

    if scope == "ingest" and (env_name is None or holder is not None):
        raise click.UsageError("an ingest token needs --env ENV (and no --for)")
    if scope == "read" and not holder:
        raise click.UsageError("a read token needs --for OPERATOR: whose credential it is")
    if holder is not None:
        check_data_name("operator", holder)
    with g.session() as client:
        if env_name is not None:
            registry.read_settings(client, g.paths).environment(env_name)
        text, record = new_token(scope, env_name, holder, time.time())  # type: ignore[arg-type]
        registry.add_token(client, g.paths, operator_actor(operator), record)
    click.echo(text)


@token.command("list")
@json_option
@pass_globals
def list_tokens(g: Globals, as_json: bool) -> None:
    """Tokens by id, scope, environment and holder (never the token)."""
    from cluster.data import registry

    with g.session() as client:
        records = registry.list_tokens(client, g.paths)
    doc = [{k: v for k, v in r.to_json().items() if k != "digest"} for r in records]

    def text() -> str:
        return (
            "\n".join(
                f"{d['id']}  {d['scope']:6}  env={d['env'] or '*'}  for={d['operator'] or '-'}"
                for d in doc
            )
            or "no tokens"
        )

    emit(as_json, doc, text)


@token.command("revoke")
@click.argument("token_id")
@operator_option
@pass_globals
def revoke(g: Globals, token_id: str, operator: str) -> None:
    """Revoke token TOKEN_ID: nodes refuse it within about a second."""
    from cluster.data import registry

    with g.session() as client:
        registry.revoke_token(client, g.paths, operator_actor(operator), token_id)
    click.echo(f"token {token_id} revoked")
