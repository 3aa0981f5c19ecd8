"""Cluster nodes: membership, quorum and fenced leadership on ZooKeeper, and the `managed` CLI."""
