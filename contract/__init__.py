"""What a cluster and Mission Control share: the contract between the two deployables.

- `messages`: the pydantic model of every message between a cluster and Mission Control; the
  leader builds them, the client sends them, Mission Control parses the same classes.
- `routes`: each message's kind, path and reply, for the client and the server alike.
- `resources`: a node's resource figures, the one shape from the probe to the database.
- `limits`: the bounds both sides apply to what crosses the wire.
- `audit`: the audit chain's canonical form, events, hash chain and signed checkpoints.
- `support`: the remote-support request state machine, policy, signed approvals, commands and
  redaction rules.
- `certs`: the certificate profile (a CA and server certificates) of dev stacks and tests.
- `identity`: an OpenID Connect ID token verified against the provider's keys.
- `credentials`: the format of every secret the product issues (prefix, base62, checksum).
- `secret_scan`, `secret_scan_command`: finding those credentials in files and git history,
  and the `secrets scan` command both CLIs mount.

Pure logic and models only, except the scanner, which reads the files and repositories its
caller names; nothing here imports `cluster` or `mission_control`.
"""
