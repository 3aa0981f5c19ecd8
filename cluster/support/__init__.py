"""Remote support: customer-approved, time-boxed, audited access for vendor engineers.

Pure domain logic, no I/O: `policy` (the cluster's support setting), `requests` (the request and
grant state machine), `approval` (Ed25519-signed approvals and their replay guard), `commands`
(what a grant allows, and redaction of replies). Storage and transport build on these.
"""
