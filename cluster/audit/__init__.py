"""Tamper-evident audit log: hash-chained entries with Ed25519-signed checkpoints.

Pure logic only (no storage): `chain` builds and verifies entries, `canonical` defines the exact
bytes that are hashed and signed. Storage adapters (ZooKeeper on the cluster, a table on Mission
Control) persist `AuditEntry` and `Checkpoint` records and call `verify_chain`.
"""
