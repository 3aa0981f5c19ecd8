"""Tamper-evident audit log: hash-chained entries with Ed25519-signed checkpoints.

Pure logic only (no storage): `chain` builds and verifies entries, `canonical` defines the exact
bytes that are hashed and signed, `events` the actors and events, `copies` compares checkpoints
with another party's copies. Storage adapters (ZooKeeper in `cluster.audit`, a table in Mission
Control) persist `AuditEntry` and `Checkpoint` records and call `verify_chain`.
"""
