"""Remote support's shared rules: customer-approved, time-boxed, audited access.

Pure domain logic, no I/O, applied identically by the cluster and Mission Control: `policy` (the
cluster's support setting), `requests` (the request and grant state machine), `approval`
(Ed25519-signed approvals and their replay guard), `commands` (what a grant allows), `settable`
(the keys `config set` may change), `redaction` (what never leaves a cluster), `errors`.
"""
