"""Remote support on the cluster: requests and grants in ZooKeeper, approvals, commands run.

The state machine, policy, approvals and redaction rules are `contract.support`'s; this package
stores requests and grants (`store`, `records`, `items`), keeps the cluster's Ed25519 approval key
(`keys`, `protection`), runs allowed commands (`runner`) and syncs with Mission Control through
the leader's heartbeat (`service`).
"""
