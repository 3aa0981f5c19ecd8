"""The domain layer, called by the API and the console; it calls the database layer.

One subpackage per feature: `exchange` (cluster messages in), `fleet` (cluster records and what
the console shows of them), `support` (remote support), `accounts` (staff, tokens, audit log),
and `rules` (pure rules, no I/O). Every function takes a `context.ServiceContext`; refusals a
caller can cause are `refusals` errors. Nothing here imports the API or the console.
"""
