"""Mission Control: the vendor's central aiohttp service that every cluster reports to.

Layers: `api` (JSON API) and `console` (web pages) call `service` (the domain), which calls
`db` (tables, engine, migrations); see docs/architecture.md. `app` builds the application;
`secrets_key` finds the key that seals secrets at rest (docs/security.md).
"""
