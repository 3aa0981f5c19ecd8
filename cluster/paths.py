"""Where a cluster lives in ZooKeeper: one subtree per cluster, laid out as DESIGN.md describes.

Every module that touches ZooKeeper builds its paths here, so the layout is written down once.
"""

from __future__ import annotations

from dataclasses import dataclass

ROOT = "/managed/clusters"
#: The znodes every cluster on an ensemble shares: each may create its own subtree below them,
#: and nobody may read, list, change or delete them (`cluster.zk.acl.cluster_acl`).
SHARED_PARENTS = ("/managed", ROOT)


@dataclass(frozen=True)
class ClusterPaths:
    """The znode paths of one cluster's subtree."""

    cluster: str

    @property
    def base(self) -> str:
        return f"{ROOT}/{self.cluster}"

    @property
    def roster(self) -> str:
        return f"{self.base}/roster"

    @property
    def live(self) -> str:
        return f"{self.base}/live"

    @property
    def epoch(self) -> str:
        return f"{self.base}/epoch"

    @property
    def leader(self) -> str:
        return f"{self.base}/leader"

    @property
    def support(self) -> str:
        return f"{self.base}/support"

    @property
    def support_policy(self) -> str:
        return f"{self.support}/policy"

    @property
    def support_public_key(self) -> str:
        return f"{self.support}/public-key"

    @property
    def support_key_lock(self) -> str:
        return f"{self.support}/key-lock"

    @property
    def support_requests(self) -> str:
        return f"{self.support}/requests"

    @property
    def support_open(self) -> str:
        """One empty znode per request that is pending or approved: what the sweep reads."""
        return f"{self.support}/open"

    @property
    def support_commands(self) -> str:
        """One znode per answered command id: a command runs at most once."""
        return f"{self.support}/commands"

    @property
    def audit(self) -> str:
        return f"{self.base}/audit"

    @property
    def audit_head(self) -> str:
        return f"{self.audit}/head"

    @property
    def audit_entries(self) -> str:
        return f"{self.audit}/entries"

    @property
    def audit_checkpoints(self) -> str:
        return f"{self.audit}/checkpoints"

    def support_request(self, request_id: str) -> str:
        return f"{self.support_requests}/{request_id}"

    def support_open_request(self, request_id: str) -> str:
        return f"{self.support_open}/{request_id}"

    def support_command(self, command_id: str) -> str:
        return f"{self.support_commands}/{command_id}"

    def audit_entry(self, seq: int) -> str:
        return f"{self.audit_entries}/{seq:010d}"

    def audit_checkpoint(self, seq: int) -> str:
        return f"{self.audit_checkpoints}/{seq:010d}"

    @property
    def config(self) -> str:
        return f"{self.base}/config"

    @property
    def health(self) -> str:
        return f"{self.base}/health"

    @property
    def outbox(self) -> str:
        return f"{self.base}/outbox"

    @property
    def outbox_dead(self) -> str:
        return f"{self.base}/outbox-dead"

    @property
    def mission_control(self) -> str:
        """The leader's record of its exchange: last contact, license, sizing advice."""
        return f"{self.base}/mission-control"

    @property
    def backups(self) -> str:
        """Backup run state (runs, requests, the in-progress guard, the schedule's mark)."""
        return f"{self.base}/backups"

    @property
    def backup_runs(self) -> str:
        return f"{self.backups}/runs"

    @property
    def backup_requests(self) -> str:
        return f"{self.backups}/requests"

    @property
    def backup_current(self) -> str:
        """Exists while a run is in progress (the no-overlap guard); holds the run id."""
        return f"{self.backups}/current"

    @property
    def backup_schedule(self) -> str:
        return f"{self.backups}/schedule"

    def backup_run(self, backup_id: str) -> str:
        return f"{self.backup_runs}/{backup_id}"

    def backup_parts(self, backup_id: str) -> str:
        """The outcome of each part of a run, one child per part."""
        return f"{self.backup_run(backup_id)}/parts"

    @property
    def backup_drills(self) -> str:
        """Restore drills: one record per drill, its outcome as a child."""
        return f"{self.backups}/drills"

    @property
    def backup_drill_requests(self) -> str:
        return f"{self.backups}/drill-requests"

    def backup_drill(self, drill_id: str) -> str:
        return f"{self.backup_drills}/{drill_id}"

    @property
    def switchover(self) -> str:
        """An operator's switchover request and its outcome (`managed switchover`)."""
        return f"{self.base}/switchover"

    @property
    def history(self) -> str:
        """One znode per leadership, named by the epoch it started with (`cluster history`)."""
        return f"{self.base}/history"

    def history_entry(self, epoch: int) -> str:
        return f"{self.history}/{epoch:010d}"

    @property
    def upgrade(self) -> str:
        """Release verification state (`cluster.upgrade`)."""
        return f"{self.base}/upgrade"

    @property
    def upgrade_trust(self) -> str:
        """The trusted TUF metadata: pinned-root, root, timestamp, snapshot, targets."""
        return f"{self.upgrade}/trust"

    def upgrade_trusted(self, role: str) -> str:
        return f"{self.upgrade_trust}/{role}"

    @property
    def upgrade_verified(self) -> str:
        """The last release verified: {version, files, at}."""
        return f"{self.upgrade}/verified"

    @property
    def upgrade_plan(self) -> str:
        """The rolling upgrade plan (`cluster.upgrade.plan`): created by the operator, moved
        by the leader in fenced writes."""
        return f"{self.upgrade}/plan"

    @property
    def upgrade_window(self) -> str:
        """The maintenance window in which the leader installs offered releases."""
        return f"{self.upgrade}/window"

    @property
    def upgrade_given_up(self) -> str:
        """The offered releases the leader refused (kept across leader changes)."""
        return f"{self.upgrade}/given-up"

    @property
    def upgrade_reports(self) -> str:
        """One znode per node: what it did for the plan (installed, rolled back...)."""
        return f"{self.upgrade}/reports"

    def upgrade_report(self, node: str) -> str:
        return f"{self.upgrade_reports}/{node}"

    def roster_member(self, node: str) -> str:
        return f"{self.roster}/{node}"

    def live_member(self, node: str) -> str:
        return f"{self.live}/{node}"

    def persistent_nodes(self) -> tuple[str, ...]:
        """Containers created once per cluster (idempotently) before anything else runs."""
        return (self.base, self.roster, self.live, self.outbox, self.outbox_dead, self.history)
