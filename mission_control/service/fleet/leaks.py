"""Leak reports (`POST /api/v1/leaks`): every reported credential the product issued is revoked
in the request that reports it.

Guarantees:
- The whole report is one transaction: each token is looked up by its SHA-256 digest among
  cluster credentials, renewal secrets, enrollment tokens and staff tokens (either format, so a
  credential issued before `contract.credentials` can be reported too) and revoked where found;
  the clusters concerned get a `credential_leaked` alert; every revocation is audited with the
  reporter and where the token was seen (`url`, `source`).
- The verdicts never carry a token back, only its digest (GitHub's feedback format).
- A token nobody issued is a `false_positive` and changes nothing.
"""

from __future__ import annotations

import logging

from contract.audit.canonical import JsonValue
from contract.audit.events import Actor
from contract.messages import LeakReply, LeakReport, LeakVerdict
from mission_control.service.accounts.bearer import digest
from mission_control.service.accounts.staff import revoke_leaked_token
from mission_control.service.context import ServiceContext
from mission_control.service.fleet.credentials import revoke_leaked

log = logging.getLogger(__name__)


async def report_leaks(ctx: ServiceContext, report: LeakReport, *, by: Actor) -> LeakReply:
    """Revoke every reported token that is one of ours; one verdict per token, in order."""
    now = ctx.clock()
    verdicts = []
    async with ctx.engine.begin() as conn:
        for leaked in report.root:
            token_hash = digest(leaked.token)
            where: dict[str, JsonValue] = {
                "reported_type": leaked.type,
                "url": leaked.url,
                "source": leaked.source,
            }
            found = await revoke_leaked(conn, ctx, token_hash, now, by=by, where=where)
            ours = found is not None or await revoke_leaked_token(
                conn, ctx, token_hash, now, by=by, where=where
            )
            if not ours:
                log.info("leak report from %s: %s is no credential of ours", by, token_hash[:12])
            verdicts.append(
                LeakVerdict(
                    token_hash=token_hash,
                    token_type=leaked.type,
                    label="true_positive" if ours else "false_positive",
                )
            )
    return LeakReply(verdicts)
