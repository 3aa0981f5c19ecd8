"""The cluster's link to Mission Control: enrollment, the outbox, the leader's exchange.

- `settings`: the `mission_control` key of the cluster config (URL, CA, outage limit).
- `enrollment`: exchange a one-time token for the cluster's credential (`managed mc enroll`).
- `client`: the async HTTPS client; every call takes and returns a `contract.messages` model.
- `messages`: the leader builds each report (health, license, consumption) from a snapshot.
- `outbox`: the ZooKeeper outbox that keeps messages across outages and leader changes.
- `exchange`: the leader's loop: enqueue, deliver in order, act on replies.
- `state`, `licensing`: what the exchange remembers (last contact, license, local enforcement).
"""
