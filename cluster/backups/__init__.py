"""Backup orchestration: settings in the cluster config, runs in ZooKeeper, the leader's
schedule and run driver, each node's part writer, and restore into an empty cluster.

The encryption, storage and retention mechanics live in the `backup` package (its public API is
`backup.engine`); this package decides when and where they run and records what happened.
"""
