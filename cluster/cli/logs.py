"""`managed logs ship FILE --env ENV`: a small log forwarder that masks at capture.

It fetches the environment's processing rules from a node (with the ingest token), applies them
to every line on this host, and only then sends the records (JSON lines, in batches) to the
node. Plain text lines become `{"message": line}`; JSON-object lines keep their level, timestamp
and attributes, with the message and every attribute value masked. What leaves the host is
already masked; the node applies the same rules again (harmless: masking is idempotent).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from cluster.cli.common import Globals, pass_globals

BATCH = 1000
MAX_MESSAGE = 4096  # what a node accepts per message: longer lines are cut, not refused


def capture_record(line: str, rules: Any) -> dict[str, Any]:
    """One line as the record to send, masked by `rules` (pure)."""
    from contract.privacy.rules import apply_rules

    try:
        doc = json.loads(line)
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or not isinstance(doc.get("message"), str):
        return {"message": apply_rules(line, rules)[:MAX_MESSAGE]}
    record = dict(doc)
    record["message"] = apply_rules(doc["message"], rules)[:MAX_MESSAGE]
    attributes = doc.get("attributes")
    if isinstance(attributes, dict):
        record["attributes"] = {
            k: apply_rules(v, rules) if isinstance(v, str) else v for k, v in attributes.items()
        }
    return record


@click.group()
def logs() -> None:
    """Ship log files to the cluster, masked before they leave the host."""


@logs.command()
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--env", "env_name", required=True, help="The environment the token writes.")
@click.option("--token", envvar="MANAGED_INGEST_TOKEN", required=True, help="Ingest token.")
@click.option("--url", help="A node's data API, https://HOST:PORT (default: ask ZooKeeper).")
@click.option(
    "--ca-file",
    envvar="MANAGED_DATA_CA",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="CA of the nodes' HTTPS certificates (env MANAGED_DATA_CA).",
)
@pass_globals
def ship(
    g: Globals, file: Path, env_name: str, token: str, url: str | None, ca_file: Path | None
) -> None:
    """Mask FILE's lines with ENV's capture rules, then send them."""
    from cluster.data.reader import client_context, request_json
    from contract.privacy.rules import parse_rules

    if url is None:
        from cluster.data import registry

        with g.session() as client:
            nodes = registry.endpoints(client, g.paths)
        if not nodes:
            raise click.ClickException("no node serves the data API; give --url")
        url = f"https://{next(iter(nodes.values()))}"
    context = client_context(ca_file)
    answer = request_json(f"{url}/v1/capture-rules", token, context)
    if answer.get("env") != env_name:
        raise click.ClickException(
            f"this token writes environment {answer.get('env')}, not {env_name}"
        )
    rules = parse_rules(answer.get("rules", []))
    sent = 0
    batch: list[str] = []

    def flush() -> None:
        nonlocal sent
        if batch:
            body = "\n".join(batch).encode()
            reply = request_json(f"{url}/v1/logs", token, context, body, "application/x-ndjson")
            sent += int(reply.get("stored", 0))
            batch.clear()

    with file.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            line = line.rstrip("\n")
            if line.strip():
                batch.append(json.dumps(capture_record(line, rules)))
            if len(batch) >= BATCH:
                flush()
    flush()
    click.echo(f"shipped {sent} record(s) to {env_name}, masked with {len(rules)} rule(s)")
