"""The cluster's monitoring data and its privacy controls.

Environments, applications' privacy settings and processing rules live in the cluster config
(`settings`, changed through `registry`, every change audited); ingest tokens are stored hashed
under `<cluster>/data/tokens` (`tokens`, `registry`). Each node stores what it receives in an
embedded SQLite store in its data directory (`store`), so backups hold real data; `ingest` turns
beacons and log records into rows, masked as the environment says; `api` serves ingest, reads
and `/rum.js` over HTTPS; `service` runs all of it on every node. The masking itself is
`contract.privacy`'s.
"""
