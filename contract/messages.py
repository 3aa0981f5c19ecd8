"""The wire protocol between clusters, staff and Mission Control: pydantic models only.

Guarantees:
- Requests forbid unknown fields and validate types and ranges, so a malformed message is
  refused before anything is stored; every accepted value is storable on both back ends (byte
  counts stay below 2^53 per node, so their sums fit a BIGINT; free text refuses control
  characters, which PostgreSQL's text type cannot all hold).
- Replies ignore unknown fields, so a cluster keeps working when a newer server adds fields.
- Every message a cluster sends carries `message_id` (chosen by the cluster, stable across
  resends) and `epoch` (its leader's epoch): see `ClusterMessage`.
The OpenAPI document is generated from these models; the client library parses replies with them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Self
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    RootModel,
    StrictBool,
    StrictFloat,
    StrictInt,
    field_validator,
    model_validator,
)

from contract import credentials
from contract.audit.canonical import format_time
from contract.datacenters import MAX_SITE_SERVERS, MAX_SITES, DatacenterState
from contract.limits import (
    CONTROL_CHARACTERS,
    MAX_EPOCH,
    MAX_NODES,
    MAX_OUTPUT_BYTES,
    MAX_SUMMARY_CHARS,
)
from contract.resources import MAX_CPU_CORES, MAX_NODE_BYTES, NodeResources

Geography = Literal["EU", "US", "AU"]


class StaffRole(StrEnum):
    """A Mission Control staff account's role (the one type on both sides)."""

    SUPPORT_L2 = "support-l2"
    SUPPORT_L3 = "support-l3"
    OPERATOR = "operator"
    ADMIN = "admin"


NodeState = Literal["healthy", "degraded", "down"]
Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
#: Bytes of one node. Below 2^53 (8 PiB): a report's sum over at most `MAX_NODES` nodes stays
#: below 2^63, so it fits the BIGINT columns of the health history on both back ends.
Bytes = Annotated[StrictInt, Field(ge=0, lt=MAX_NODE_BYTES)]


def _no_control_characters(value: str) -> str:
    if CONTROL_CHARACTERS.search(value):
        raise ValueError("control characters are not allowed (tab, newline and return are)")
    return value


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("NUL characters are not allowed")
    return value


#: Free text that is stored or shown: no control characters but tab, newline and return
#: (PostgreSQL refuses NUL in text; the others garble logs and terminals).
Text = Annotated[str, AfterValidator(_no_control_characters)]
#: Captured output (log lines may carry terminal escapes): only NUL is refused.
Output = Annotated[str, AfterValidator(_no_nul)]
AccessRoleName = Literal["viewer", "user", "admin"]
CommandName = Literal[
    "diagnostics",
    "config get",
    "config set",
    "logs tail",
    "data sessions",
    "data actions",
    "data logs",
]


def _time_as_text(value: object) -> object:
    """A time on the wire is RFC 3339 text (the OpenAPI document says `date-time`): pydantic's
    lax mode would also read a number, or a string of digits, as seconds since 1970."""
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError("a time is RFC 3339 text with a zone, such as 2030-01-01T00:00:00Z")
    return value


_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")
#: A time with its zone, read only from RFC 3339 text (or a datetime, in Python).
Time = Annotated[AwareDatetime, BeforeValidator(_time_as_text)]
#: Times the remote-support protocol carries: UTC with `Z`, as `format_time` writes them.
WireTime = Annotated[Time, PlainSerializer(format_time, return_type=str, when_used="json")]

#: Cluster credentials read ``mcc.<cluster id>.<secret>``; the server trusts only its digest.
CREDENTIAL_PREFIX = "mcc"


def cluster_id_of(credential: str) -> str | None:
    """The cluster id a credential names, or None if it is not a cluster credential (of the
    current format, `contract.credentials`, or the older ``mcc.<id>.<secret>``)."""
    parsed = credentials.parse(credential)
    if parsed is not None:
        return parsed.cluster_id
    parts = credential.split(".")
    if len(parts) != 3 or parts[0] != CREDENTIAL_PREFIX or not parts[1]:
        return None
    return parts[1]


class HealthStatus(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNDERSIZED = "undersized"


class LicenseState(StrEnum):
    VALID = "valid"
    EXPIRING = "expiring"
    EXPIRED = "expired"
    OVERAGE = "overage"


class AlertKind(StrEnum):
    CLUSTER_UNDERSIZED = "cluster_undersized"
    CLUSTER_SILENT = "cluster_silent"
    LICENSE_EXPIRING = "license_expiring"
    LICENSE_EXPIRED = "license_expired"
    LICENSE_OVERAGE = "license_overage"
    BACKUP_FAILED = "backup_failed"
    #: The last restore drill failed (`DrillReport`); cleared by the next successful one.
    DRILL_FAILED = "drill_failed"
    #: A setting that decides where data and credentials go changed (see `GuardedSetting`).
    SETTING_CHANGED = "setting_changed"
    #: A data center (or the witness) of a cluster is lost; cleared when none is.
    DATACENTER_LOST = "datacenter_lost"
    #: A lost data center came back (its nodes rejoined as followers): closed by a person.
    DATACENTER_BACK = "datacenter_back"
    #: The cluster refused a release: bad signature, expired or older metadata, a rollback...
    RELEASE_REFUSED = "release_refused"
    #: A cluster failed in a fleet rollout (refused, rolled back or late), pausing it; cleared
    #: when the rollout resumes.
    ROLLOUT_FAILED = "rollout_failed"
    #: A credential of the cluster was reported leaked and revoked (`POST /api/v1/leaks`).
    CREDENTIAL_LEAKED = "credential_leaked"


class Request(BaseModel):
    """Base of every request body: strict about unknown fields.

    Numbers and flags in request bodies are `StrictInt`, `StrictFloat` and `StrictBool`: pydantic's
    lax mode would read JSON `false` as the number 0 and `"5"` as 5; on the wire a number is a
    number (an integer is a valid float). Strings such as UUIDs and times keep their JSON form.
    Query strings use models of their own, whose numbers arrive as text."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Reply(BaseModel):
    """Base of every reply body: tolerant of fields added by newer servers."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class ClusterMessage(Request):
    """The envelope every message from a cluster's leader carries.

    Each message the outbox keeps is split in two: its body (`...Body`, what the producer
    builds and the outbox stores) and this envelope, which the leader adds when it delivers
    (`contract.routes.Route.stamped`): the id chosen when the message was queued, and the
    epoch of the leader sending it now."""

    message_id: UUID = Field(description="Chosen by the cluster; stable across resends.")
    epoch: StrictInt = Field(ge=0, le=MAX_EPOCH, description="The sending leader's epoch.")


class DedupedReply(Reply):
    duplicate: bool = Field(
        default=False, description="True when this message_id was already accepted."
    )


# --- enrollment -------------------------------------------------------------------------------


class EnrollRequest(Request):
    token: str = Field(min_length=1, max_length=256)


class EnrollReply(Reply):
    cluster_id: str
    name: str
    geography: Geography
    credential: str = Field(description="The cluster's own bearer credential, shown once.")
    renewal_secret: str | None = Field(
        default=None,
        description="The cluster's renewal secret (`mcr_`), shown once: after its credential is "
        "reported leaked, it buys one new credential (`credential/renew`); never sent otherwise.",
    )


class CredentialRequest(Request):
    """The (empty) body of `credential/rotate` and `credential/renew`: what proves the cluster
    is its bearer, the current credential or the renewal secret."""


class CredentialReply(Reply):
    """A new credential and renewal secret (rotation or renewal); the old ones are void."""

    cluster_id: str
    credential: str
    renewal_secret: str


# --- leak reports (GitHub's secret scanning partner format) ------------------------------------


class LeakedToken(BaseModel):
    """One match a secret scanner reports: GitHub sends `token`, `type`, `url`, `source`; more
    fields may come and are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    token: str = Field(min_length=1, max_length=1024)
    type: str = Field(default="", max_length=128)
    url: str = Field(default="", max_length=4096)
    source: str = Field(default="", max_length=64)


class LeakReport(RootModel[Annotated[list[LeakedToken], Field(min_length=1, max_length=1000)]]):
    """The body of `POST /api/v1/leaks`: a JSON array of matches."""


class LeakVerdict(Reply):
    """What became of one reported token (GitHub's feedback format, by hash: the token is never
    sent back)."""

    token_hash: str = Field(description="SHA-256 of the token, hex.")
    token_type: str
    label: Literal["true_positive", "false_positive"]


class LeakReply(RootModel[list[LeakVerdict]]):
    """One verdict per reported token, in order."""


# --- health -----------------------------------------------------------------------------------


class NodeHealth(Request):
    """One node in a health report: its resources (the fields of
    `contract.resources.NodeResources`, checked the same way) with its name, version and state
    as the leader sees them."""

    cpu_cores: StrictInt = Field(ge=1, le=MAX_CPU_CORES)
    cpu_percent: StrictFloat = Field(ge=0, le=100)
    memory_total_bytes: Bytes
    memory_used_bytes: Bytes
    disk_total_bytes: Bytes
    disk_used_bytes: Bytes
    node: Name
    version: Text = Field(min_length=1, max_length=64)
    state: NodeState
    datacenter: Name | None = Field(default=None, description="Where the node runs.")
    leader: StrictBool | None = Field(default=None, description="True for the cluster's leader.")

    @model_validator(mode="after")
    def _used_within_total(self) -> Self:
        if self.memory_used_bytes > self.memory_total_bytes:
            raise ValueError("memory_used_bytes exceeds memory_total_bytes")
        if self.disk_used_bytes > self.disk_total_bytes:
            raise ValueError("disk_used_bytes exceeds disk_total_bytes")
        return self

    @property
    def resources(self) -> NodeResources:
        return NodeResources(
            cpu_cores=self.cpu_cores,
            cpu_percent=self.cpu_percent,
            memory_total_bytes=self.memory_total_bytes,
            memory_used_bytes=self.memory_used_bytes,
            disk_total_bytes=self.disk_total_bytes,
            disk_used_bytes=self.disk_used_bytes,
        )


class DatacenterHealth(Request):
    """One site of a cluster declared over data centers, as its leader sees it (the witness
    holds ZooKeeper servers and no node). `zookeeper_reachable` is None when the leader could
    not ask."""

    name: Name
    witness: StrictBool = False
    nodes_live: StrictInt = Field(ge=0, le=MAX_NODES)
    nodes_total: StrictInt = Field(ge=0, le=MAX_NODES)
    zookeeper_reachable: StrictInt | None = Field(default=None, ge=0, le=MAX_SITE_SERVERS)
    zookeeper_total: StrictInt = Field(ge=0, le=MAX_SITE_SERVERS)
    state: DatacenterState

    @model_validator(mode="after")
    def _counts_within_totals(self) -> Self:
        if self.nodes_live > self.nodes_total:
            raise ValueError("nodes_live exceeds nodes_total")
        if (self.zookeeper_reachable or 0) > self.zookeeper_total:
            raise ValueError("zookeeper_reachable exceeds zookeeper_total")
        return self


class HealthReportBody(Request):
    nodes: list[NodeHealth] = Field(min_length=1, max_length=MAX_NODES)
    datacenters: list[DatacenterHealth] | None = Field(
        default=None,
        max_length=MAX_SITES,
        description="Each declared data center and the witness (None: none declared).",
    )
    quorum_rule: Text | None = Field(
        default=None, max_length=300, description="The rule that gives the cluster quorum now."
    )
    health_interval_s: StrictFloat | None = Field(
        default=None,
        gt=0,
        le=7 * 86400,
        description="Seconds between this cluster's health checks: the `cluster_silent` "
        "alert waits `silent_after_intervals` of them (the server's default when absent).",
    )

    @field_validator("nodes")
    @classmethod
    def _unique_nodes(cls, nodes: list[NodeHealth]) -> list[NodeHealth]:
        names = [n.node for n in nodes]
        if len(set(names)) != len(names):
            raise ValueError("node names must be unique")
        return nodes

    @field_validator("datacenters")
    @classmethod
    def _unique_sites(cls, sites: list[DatacenterHealth] | None) -> list[DatacenterHealth] | None:
        names = [s.name for s in sites or ()]
        if len(set(names)) != len(names):
            raise ValueError("data center names must be unique")
        return sites


class HealthReport(HealthReportBody, ClusterMessage):
    """`HealthReportBody` as sent: with the envelope every cluster message carries."""


class SizingAdvice(Reply):
    min_nodes: int
    min_cpu_cores: int
    min_memory_bytes: int


class HealthReply(DedupedReply):
    status: HealthStatus
    reasons: list[str] = Field(default_factory=list)
    advice: SizingAdvice


# --- license ----------------------------------------------------------------------------------


class LicenseCheckBody(Request):
    host_units_in_use: StrictFloat = Field(ge=0, le=1e9)


class LicenseCheck(LicenseCheckBody, ClusterMessage):
    """`LicenseCheckBody` as sent: with the envelope every cluster message carries."""


class Quotas(Reply):
    host_units: float


class LicenseReply(DedupedReply):
    state: LicenseState
    expires: date | None = Field(description="Last valid day (UTC); null when no license is set.")
    days_left: int | None
    quotas: Quotas


# --- consumption ------------------------------------------------------------------------------


class ConsumptionReportBody(Request):
    environment: Name
    period_start: Time = Field(description="Start of the hour reported; on the hour.")
    host_units: StrictFloat = Field(ge=0, le=1e9)
    host_unit_hours: StrictFloat = Field(ge=0, le=1e12)

    @field_validator("period_start")
    @classmethod
    def _on_the_hour(cls, value: datetime) -> datetime:
        utc = value.astimezone(UTC)  # 05:00+05:30 is 23:30 UTC: not on the hour
        if (utc.minute, utc.second, utc.microsecond) != (0, 0, 0):
            raise ValueError("period_start must be on the hour (in UTC)")
        return value


class ConsumptionReport(ConsumptionReportBody, ClusterMessage):
    """`ConsumptionReportBody` as sent: with the envelope every cluster message carries."""


class ConsumptionReply(DedupedReply):
    recorded: bool = Field(description="False when this period was already reported.")


# --- heartbeat --------------------------------------------------------------------------------


class Heartbeat(ClusterMessage):
    pass


class PendingSupportRequest(Reply):
    """A request the cluster must decide on (`pending`), or a state Mission Control changed
    (`revoked`/`ended` by the engineer) that the cluster applies; see support-protocol.

    Values a newer server may extend (`engineer_role`, `role`, `state`) are plain strings here:
    the cluster refuses or ignores one it does not know, item by item, and still reads the rest
    of the reply (a tolerant reader)."""

    id: str
    cluster: str
    engineer: str = Field(min_length=1)
    engineer_role: str | None = Field(default=None, description="A staff role.")
    reason: str
    role: str = Field(description="An access role: viewer, user or admin.")
    duration_seconds: int = Field(gt=0)
    requested_at: WireTime
    pending_until: WireTime | None = Field(
        default=None,
        description="Mission Control's deadline for a decision; the cluster honours the "
        "earlier of this and its own.",
    )
    state: str = Field(default="pending", description="pending, revoked or ended.")
    state_changed_by: str | None = None
    state_reason: str | None = None


class PendingCommand(Reply):
    """A command the cluster has not answered yet; it answers each id exactly once, and
    refuses (answers, audited) a command or arguments it does not know."""

    id: str
    request_id: str
    engineer: str = Field(min_length=1)
    command: str = Field(
        description="diagnostics, config get, config set, logs tail, data sessions, data actions "
        "or data logs."
    )
    arguments: dict[str, Any] = Field(default_factory=dict)
    issued_at: WireTime | None = None


class HeartbeatReply(DedupedReply):
    support_requests: list[PendingSupportRequest] = Field(default_factory=list)
    commands: list[PendingCommand] = Field(default_factory=list)


class ReleaseOffer(Reply):
    """The release Mission Control offers this cluster (None: none is offered;
    `GET .../releases/offer`, `contract.releases`). The offer is only a name: the cluster
    fetches and verifies the release itself before anything."""

    version: str | None = None
    offered_at: WireTime | None = None


# --- remote support: cluster -> Mission Control ---------------------------------------------


class ApprovalActor(Request):
    name: Text = Field(min_length=1, max_length=256)
    kind: Text = Field(min_length=1, max_length=64)
    via: Text | None = Field(default=None, max_length=256)


class ApprovalIdentity(Request):
    """The approver's OpenID Connect ID token and where it was issued (signed with the rest)."""

    issuer: Text = Field(min_length=1, max_length=512)
    client_id: Text = Field(min_length=1, max_length=256)
    id_token: Text = Field(min_length=1, max_length=16384)


class SupportApproval(Request):
    """A `contract.support.approval.SignedApproval` as JSON; times as the cluster wrote them."""

    approval_id: Text = Field(min_length=1, max_length=64)
    request_id: Text = Field(min_length=1, max_length=64)
    cluster_id: Text = Field(min_length=1, max_length=64)
    engineer: Text = Field(min_length=1, max_length=128)
    role: AccessRoleName
    starts_at: Text = Field(max_length=64)
    ends_at: Text = Field(max_length=64)
    approver: ApprovalActor
    signature: Text = Field(max_length=256, description="Ed25519 signature, base64.")
    sensitive_data: StrictBool | None = Field(
        default=None,
        description="true when the approval lets the engineer see sensitive monitoring data "
        "(then signed too); absent otherwise.",
    )
    approver_identity: ApprovalIdentity | None = Field(
        default=None,
        description="The approver's ID token, when the cluster requires verified approvers "
        "(then signed too); absent otherwise.",
    )


class GrantTerms(Request):
    role: AccessRoleName
    starts_at: WireTime
    ends_at: WireTime


class SupportDecisionBody(Request):
    request_id: Text = Field(min_length=1, max_length=64)
    state: Literal["approved", "denied", "expired", "revoked", "ended"]
    by: Text = Field(min_length=1, max_length=256, description="The person who decided.")
    reason: Text | None = Field(default=None, max_length=4000)
    at: WireTime | None = Field(default=None, description="When; Mission Control's time if null.")
    approval: SupportApproval | None = None
    grant: GrantTerms | None = None
    approver_identity: ApprovalIdentity | None = Field(
        default=None,
        description="On a denial or revocation by an operator of a cluster that requires "
        "verified approvers: the ID token of the person named in `by` (an approval carries its "
        "own inside `approval`); absent otherwise.",
    )


class SupportDecision(SupportDecisionBody, ClusterMessage):
    """`SupportDecisionBody` as sent: with the envelope every cluster message carries."""


class SupportCommandResultBody(Request):
    command_id: Text = Field(min_length=1, max_length=64)
    request_id: Text = Field(min_length=1, max_length=64)
    status: Literal["ok", "refused", "error"]
    summary: Text = Field(max_length=MAX_SUMMARY_CHARS)
    output: Output = Field(default="", description="Already redacted by the cluster; <= 64 KiB.")
    at: WireTime

    @field_validator("output")
    @classmethod
    def _bounded(cls, value: str) -> str:
        if len(value.encode("utf-8", "surrogatepass")) > MAX_OUTPUT_BYTES:
            raise ValueError(f"output is larger than {MAX_OUTPUT_BYTES} bytes")
        return value


class SupportCommandResult(SupportCommandResultBody, ClusterMessage):
    """`SupportCommandResultBody` as sent: with the envelope every cluster message carries."""


class SupportPublicKeyBody(Request):
    public_key_pem: Text = Field(min_length=1, max_length=4096)


class SupportPublicKey(SupportPublicKeyBody, ClusterMessage):
    """`SupportPublicKeyBody` as sent: with the envelope every cluster message carries."""


class SupportPolicyReportBody(Request):
    mode: Literal["off", "approval", "allowed"]
    max_grant_seconds: StrictInt = Field(ge=1, le=2**31)
    allowed_roles: list[AccessRoleName] = Field(max_length=3)
    preapproved: list[Annotated[Text, Field(min_length=1, max_length=128)]] = Field(max_length=1000)


class SupportPolicyReport(SupportPolicyReportBody, ClusterMessage):
    """`SupportPolicyReportBody` as sent: with the envelope every cluster message carries."""


class SupportAck(DedupedReply):
    recorded: bool = Field(description="False when this changed nothing (already known).")


# --- events -----------------------------------------------------------------------------------


#: Cluster settings whose change is audited on the cluster and alerted at Mission Control: a
#: holder of the cluster's credential (a compromised node) could otherwise redirect backups,
#: the credential or support access without anyone noticing.
GuardedSetting = Literal[
    "backup.public_key",
    "backup.target",
    "backup.mirrors",
    "mission_control.url",
    "mission_control.ca",
    "support.mode",
]
#: What a change of each guarded setting is called, in the cluster's audit log and in Mission
#: Control's alert (the event's `detail` says from what to what).
GUARDED_SETTING_TITLES: Mapping[GuardedSetting, str] = {
    "backup.public_key": "backup key changed",
    "backup.target": "backup target changed",
    "backup.mirrors": "backup mirrors changed",
    "mission_control.url": "Mission Control URL changed",
    "mission_control.ca": "Mission Control CA changed",
    "support.mode": "support mode changed",
}


class DrillReport(Request):
    """A restore drill's outcome: the backup it restored, how long that took (RTO) and how old
    the restored data was (RPO), both measured on the cluster."""

    drill_id: Text = Field(max_length=64)
    backup_id: Text | None = Field(default=None, max_length=64)
    ok: StrictBool
    rto_seconds: StrictFloat | None = Field(default=None, ge=0)
    rpo_seconds: StrictFloat | None = Field(default=None, ge=0)
    bytes: StrictInt = Field(default=0, ge=0)
    files: StrictInt = Field(default=0, ge=0)
    decrypted: StrictBool = Field(
        default=False, description="Frames decrypted (a drill key on the cluster) or digests only."
    )


class ClusterEventBody(Request):
    kind: Literal[
        "backup_failed",
        "backup_succeeded",
        "setting_changed",
        "drill_failed",
        "drill_succeeded",
        "release_refused",
    ] = Field(
        description="backup_failed raises the backup_failed alert; backup_succeeded clears it; "
        "setting_changed raises a setting_changed alert naming `setting`; drill_failed raises "
        "the drill_failed alert and drill_succeeded clears it, both carrying `drill`; "
        "release_refused raises a release_refused alert (why, in `detail`)."
    )
    detail: Text = Field(default="", max_length=4000)
    setting: GuardedSetting | None = Field(
        default=None, description="With setting_changed: which setting changed."
    )
    drill: DrillReport | None = Field(
        default=None, description="With drill_failed and drill_succeeded: the drill's outcome."
    )


class ClusterEvent(ClusterEventBody, ClusterMessage):
    """`ClusterEventBody` as sent: with the envelope every cluster message carries."""


class EventReply(DedupedReply):
    recorded: bool


# --- staff reads ------------------------------------------------------------------------------


class LicenseSummary(Reply):
    host_units: float
    expires: date


class ClusterSummary(Reply):
    id: str
    name: str
    geography: Geography
    created_at: datetime
    enrolled_at: datetime | None
    last_epoch: int
    last_health_at: datetime | None
    health_status: HealthStatus | None
    license: LicenseSummary | None


class ClusterList(Reply):
    clusters: list[ClusterSummary]


class Alert(Reply):
    id: int
    cluster_id: str
    cluster_name: str
    kind: AlertKind
    severity: Literal["warning", "critical"]
    detail: str
    raised_at: datetime
    cleared_at: datetime | None


class AlertList(Reply):
    alerts: list[Alert]


class AlertQuery(Request):
    state: Literal["active", "all"] = "active"
    cluster: str | None = Field(default=None, max_length=128, description="Cluster id or name.")


# --- errors -----------------------------------------------------------------------------------


class ErrorBody(Reply):
    code: str
    message: str
    newest_epoch: int | None = Field(
        default=None,
        description="With `stale_epoch` (409): the newest epoch Mission Control has accepted "
        "from this cluster, so a cluster restored from an older backup can move past it.",
    )


class ErrorReply(Reply):
    error: ErrorBody


# --- audit checkpoints: the cluster's copies at Mission Control -------------------------------


class AuditCheckpointCopyBody(Request):
    """One signed checkpoint of the cluster's audit log (`contract.audit.chain.Checkpoint`), as
    the cluster wrote it; Mission Control keeps it so the cluster cannot take it back."""

    seq: StrictInt = Field(ge=1, le=2**62)
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    at: str = Field(min_length=1, max_length=64, description="As signed (UTC, `Z`).")
    signature: str = Field(min_length=1, max_length=128, description="Ed25519, base64.")


class AuditCheckpointCopy(AuditCheckpointCopyBody, ClusterMessage):
    """`AuditCheckpointCopyBody` as sent: with the envelope every cluster message carries."""


class CheckpointView(Reply):
    seq: int
    hash: str
    at: str
    signature: str


class ClusterCheckpoints(Reply):
    public_key_pem: str | None = Field(
        description="The Ed25519 key Mission Control pinned for this cluster (null: none yet)."
    )
    checkpoints: list[CheckpointView] = Field(description="Oldest first.")
