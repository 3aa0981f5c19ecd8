"""What an OpenID Connect provider publishes, fetched over https: its discovery document and
its key set. Shared by staff sign-in (`oidc_login`) and the check of a cluster operator's
approval (`mission_control.service.support.approvers`); it needs no service context.

Guarantees: the provider's certificate is verified (the given CA file or the system's store,
per request: an environment CA bundle does not replace it); every failure is `OidcRefused`
with one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
from authlib.integrations.requests_client import OAuth2Session


class OidcRefused(Exception):
    """The sign-in did not prove a person; the message says which step failed."""


def get_json(session: OAuth2Session, url: str, what: str, timeout: float) -> dict[str, Any]:
    """The JSON object at `url` (`session.verify` says which CA), or `OidcRefused`."""
    try:
        reply = session.get(url, timeout=timeout, withhold_token=True, verify=session.verify)
        reply.raise_for_status()
        document = reply.json()
    except (requests.RequestException, ValueError) as e:
        raise OidcRefused(f"the provider's {what} is unavailable: {type(e).__name__}") from None
    if not isinstance(document, dict):
        raise OidcRefused(f"the provider's {what} is not a JSON object")
    return document


def provider_keys(issuer: str, ca_file: Path | None, timeout_s: float) -> dict[str, Any]:
    """The key set `issuer` publishes (its discovery document's https `jwks_uri`); blocking."""
    with OAuth2Session() as session:
        session.verify = str(ca_file) if ca_file else True
        url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        meta = get_json(session, url, "discovery document", timeout_s)
        jwks_uri = meta.get("jwks_uri")
        if meta.get("issuer") != issuer:
            raise OidcRefused("the provider's discovery document names another issuer")
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith("https://"):
            raise OidcRefused("the provider's discovery document has no https jwks_uri")
        return get_json(session, jwks_uri, "key set", timeout_s)
