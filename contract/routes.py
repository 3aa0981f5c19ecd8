"""Where each cluster message goes and what answers it: one table for both sides.

A `Route` binds a message kind (the name the outbox stores) to its path under
``/api/v1/clusters/{cluster_id}/``, the body a producer builds, the message sent (body plus
envelope) and the reply. The cluster's client sends through it; Mission Control serves each
path with the same two models (`tests/mission_control/test_mc_wire_models.py` holds its router
to this table), so a message, its path and its reply cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from contract.messages import (
    AuditCheckpointCopy,
    AuditCheckpointCopyBody,
    ClusterEvent,
    ClusterEventBody,
    ClusterMessage,
    ConsumptionReply,
    ConsumptionReport,
    ConsumptionReportBody,
    EventReply,
    HealthReply,
    HealthReport,
    HealthReportBody,
    Heartbeat,
    HeartbeatReply,
    LicenseCheck,
    LicenseCheckBody,
    LicenseReply,
    SupportAck,
    SupportCommandResult,
    SupportCommandResultBody,
    SupportDecision,
    SupportDecisionBody,
    SupportPolicyReport,
    SupportPolicyReportBody,
    SupportPublicKey,
    SupportPublicKeyBody,
)

M = TypeVar("M", bound=ClusterMessage, covariant=True)
R = TypeVar("R", bound=BaseModel, covariant=True)


@dataclass(frozen=True)
class Route(Generic[M, R]):
    """One kind of cluster message: its outbox kind, its path, its model and its reply."""

    kind: str
    path: str  # below /api/v1/clusters/{cluster_id}/
    message: type[M]
    reply: type[R]

    def stamped(self, body: Mapping[str, Any], message_id: str, epoch: int) -> M:
        """The message as sent: a stored body with its envelope. Raises pydantic's
        ValidationError when the body is not one this route carries."""
        return self.message.model_validate({**body, "message_id": message_id, "epoch": epoch})


HEALTH = Route("health", "health", HealthReport, HealthReply)
LICENSE = Route("license", "license", LicenseCheck, LicenseReply)
CONSUMPTION = Route("consumption", "consumption", ConsumptionReport, ConsumptionReply)
HEARTBEAT = Route("heartbeat", "heartbeat", Heartbeat, HeartbeatReply)
EVENT = Route("event", "events", ClusterEvent, EventReply)
SUPPORT_DECISION = Route("support/decision", "support/decision", SupportDecision, SupportAck)
SUPPORT_COMMAND_RESULT = Route(
    "support/command-result", "support/command-result", SupportCommandResult, SupportAck
)
SUPPORT_PUBLIC_KEY = Route("support/public-key", "support/public-key", SupportPublicKey, SupportAck)
SUPPORT_POLICY = Route("support/policy", "support/policy", SupportPolicyReport, SupportAck)
AUDIT_CHECKPOINT = Route("audit/checkpoint", "audit/checkpoint", AuditCheckpointCopy, SupportAck)

#: Every route, by the kind the outbox stores.
ROUTES: Mapping[str, Route[ClusterMessage, BaseModel]] = {
    r.kind: r
    for r in (
        HEALTH,
        LICENSE,
        CONSUMPTION,
        HEARTBEAT,
        EVENT,
        SUPPORT_DECISION,
        SUPPORT_COMMAND_RESULT,
        SUPPORT_PUBLIC_KEY,
        SUPPORT_POLICY,
        AUDIT_CHECKPOINT,
    )
}

#: The route each queueable body travels by (a heartbeat is never queued).
QUEUED_BODIES: Mapping[type[BaseModel], Route[ClusterMessage, BaseModel]] = {
    HealthReportBody: HEALTH,
    LicenseCheckBody: LICENSE,
    ConsumptionReportBody: CONSUMPTION,
    ClusterEventBody: EVENT,
    SupportDecisionBody: SUPPORT_DECISION,
    SupportCommandResultBody: SUPPORT_COMMAND_RESULT,
    SupportPublicKeyBody: SUPPORT_PUBLIC_KEY,
    SupportPolicyReportBody: SUPPORT_POLICY,
    AuditCheckpointCopyBody: AUDIT_CHECKPOINT,
}

#: A body the outbox can queue.
QueuedBody = (
    HealthReportBody
    | LicenseCheckBody
    | ConsumptionReportBody
    | ClusterEventBody
    | SupportDecisionBody
    | SupportCommandResultBody
    | SupportPublicKeyBody
    | SupportPolicyReportBody
    | AuditCheckpointCopyBody
)


def route_of(body: QueuedBody) -> Route[ClusterMessage, BaseModel]:
    """The route `body` travels by: its exact class decides (a full message is no body)."""
    return QUEUED_BODIES[type(body)]
