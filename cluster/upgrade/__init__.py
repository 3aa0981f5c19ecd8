"""Upgrades: verifying the vendor's signed releases (TUF) before anything is installed, with
the trusted metadata kept in ZooKeeper so that its anti-rollback state outlives any node."""
