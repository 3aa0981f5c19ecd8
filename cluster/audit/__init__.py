"""The cluster's audit log in ZooKeeper: appends inside fenced transactions, signed checkpoints.

The chain's rules (canonical form, events, hashing, verification) are `contract.audit`'s; this
package stores entries under the cluster's `audit/` znodes and copies checkpoints to Mission
Control through the outbox.
"""
