"""`managed login`: the cluster operator proves who they are with the customer's OpenID Connect
provider (the device authorization grant, RFC 8628, by `authlib`'s client), and the ID token
is kept for the commands that need a verified person.

Why the device flow: the operator runs `managed` on a server with no browser; they open the
provider's page on any device, type the code, sign in there (with whatever second factor the
provider requires), and the command receives an ID token.

Guarantees:
- The issuer is ``https://`` and its certificate is verified (`ca_file` or the system's store,
  per request: an environment CA bundle does not replace it); the discovery document must name
  the same issuer.
- The ID token is verified (`contract.identity.verify_id_token`: the provider's published keys,
  issuer, audience, expiry) before it is stored; a token that does not verify is never written.
- Stored in the operator's config directory (``$XDG_CONFIG_HOME/managed/identity.json``, else
  ``~/.config/managed/identity.json``), 0600 in a 0700 directory, written to a temporary file
  and renamed: complete or absent. It is short-lived: the provider's expiry is kept, and
  `load_identity` refuses an expired one (log in again).
- Waiting is bounded by the provider's `expires_in` for the device code, polling at its
  `interval` (slower on `slow_down`); a denial or expiry at the provider is one clear error.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from contract.identity import IdentityRefused, VerifiedPerson, verify_approver, verify_id_token

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
FILE_NAME = "identity.json"


class LoginFailed(Exception):
    """The operator is not logged in; the message says why, in one line."""


@dataclass(frozen=True)
class ProviderSettings:
    issuer: str
    client_id: str
    ca_file: Path | None = None
    scopes: tuple[str, ...] = ("openid", "profile", "groups")
    groups_claim: str = "groups"
    timeout_s: float = 10


@dataclass(frozen=True)
class StoredIdentity:
    """What `managed login` keeps: the ID token and what the provider verifiably said."""

    issuer: str
    client_id: str
    id_token: str
    subject: str
    name: str
    groups: tuple[str, ...]
    expires_at: int


def identity_path(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "managed" / FILE_NAME


def _verify(settings: ProviderSettings) -> str | bool:
    return str(settings.ca_file) if settings.ca_file else True


def _json(
    session: OAuth2Session, method: str, url: str, settings: ProviderSettings, **kwargs: Any
) -> dict[str, Any]:
    try:
        reply = session.request(
            method,
            url,
            withhold_token=True,
            verify=_verify(settings),
            timeout=settings.timeout_s,
            **kwargs,
        )
        document = reply.json()
    except (requests.RequestException, ValueError) as e:
        raise LoginFailed(f"the provider at {url} did not answer: {type(e).__name__}") from None
    if not isinstance(document, dict):
        raise LoginFailed(f"the provider at {url} did not answer with a JSON object")
    if reply.status_code >= 400:
        raise LoginFailed(f"the provider refused: {document.get('error', reply.status_code)}")
    return document


def device_login(
    settings: ProviderSettings,
    show: Callable[[str, str], None],
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[StoredIdentity, VerifiedPerson]:
    """Run the device flow: `show(verification_uri, user_code)` tells the operator where to go;
    returns the verified identity once they approved at the provider."""
    if not settings.issuer.startswith("https://"):
        raise LoginFailed("the provider's issuer must be an https:// URL")
    with OAuth2Session(
        settings.client_id, scope=" ".join(settings.scopes), token_endpoint_auth_method="none"
    ) as session:
        discovery = settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
        meta = _json(session, "GET", discovery, settings)
        if meta.get("issuer") != settings.issuer:
            raise LoginFailed("the provider's discovery document names another issuer")
        device_endpoint = meta.get("device_authorization_endpoint")
        if not isinstance(device_endpoint, str):
            raise LoginFailed("the provider offers no device authorization (RFC 8628)")
        grant = _json(
            session,
            "POST",
            device_endpoint,
            settings,
            data={"client_id": settings.client_id, "scope": " ".join(settings.scopes)},
        )
        show(
            str(grant.get("verification_uri_complete") or grant.get("verification_uri")),
            str(grant.get("user_code")),
        )
        interval = float(grant.get("interval", 5))
        deadline = clock() + float(grant.get("expires_in", 600))
        token: dict[str, Any] | None = None
        while token is None:
            if clock() >= deadline:
                raise LoginFailed("the code expired before it was approved: log in again")
            sleep(interval)
            try:
                token = session.fetch_token(
                    meta["token_endpoint"],
                    grant_type=DEVICE_GRANT,
                    device_code=grant.get("device_code"),
                    verify=_verify(settings),
                    timeout=settings.timeout_s,
                )
            except OAuthError as e:
                if e.error == "authorization_pending":
                    continue
                if e.error == "slow_down":
                    interval += 5
                    continue
                raise LoginFailed(f"the provider refused: {e.error}") from None
            except requests.RequestException as e:
                raise LoginFailed(f"the provider did not answer: {type(e).__name__}") from None
        jwks = _json(session, "GET", meta["jwks_uri"], settings)
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise LoginFailed("the provider returned no ID token")
    try:
        person = verify_id_token(
            id_token,
            jwks,
            issuer=settings.issuer,
            client_id=settings.client_id,
            now=int(clock()),
            groups_claim=settings.groups_claim,
        )
    except IdentityRefused as e:
        raise LoginFailed(f"the provider's ID token was refused: {e}") from None
    stored = StoredIdentity(
        settings.issuer,
        settings.client_id,
        id_token,
        person.subject,
        person.name,
        person.groups,
        person.expires_at,
    )
    return stored, person


def save_identity(path: Path, identity: StoredIdentity) -> None:
    """Write `identity` to `path`: 0600 in a 0700 directory, complete or not at all."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=".identity-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            os.fchmod(handle.fileno(), 0o600)
            json.dump(asdict(identity), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def load_identity(path: Path, now: float) -> StoredIdentity:
    """The stored identity, or `LoginFailed` when there is none, it is unreadable or expired."""
    try:
        if path.stat().st_mode & 0o077:
            raise LoginFailed(f"{path} is readable by others: chmod 600 it or log in again")
        raw = json.loads(path.read_text())
        identity = StoredIdentity(**{**raw, "groups": tuple(raw["groups"])})
    except FileNotFoundError:
        raise LoginFailed("not logged in: run `managed login`") from None
    except (ValueError, TypeError, KeyError) as e:
        raise LoginFailed(f"{path} is unreadable ({type(e).__name__}): log in again") from None
    if identity.expires_at <= now:
        raise LoginFailed("the login has expired: run `managed login` again")
    return identity


def fetch_keys(issuer: str, ca_file: Path | None, timeout_s: float = 10) -> dict[str, Any]:
    """The provider's published keys (its discovery document's `jwks_uri`)."""
    settings = ProviderSettings(issuer, "", ca_file, timeout_s=timeout_s)
    with OAuth2Session() as session:
        discovery = issuer.rstrip("/") + "/.well-known/openid-configuration"
        meta = _json(session, "GET", discovery, settings)
        if meta.get("issuer") != issuer or not isinstance(meta.get("jwks_uri"), str):
            raise LoginFailed("the provider's discovery document names another issuer")
        return _json(session, "GET", meta["jwks_uri"], settings)


def verified_approver(
    path: Path,
    *,
    issuer: str,
    client_id: str,
    approver_groups: frozenset[str],
    ca_file: Path | None,
    now: float,
) -> tuple[VerifiedPerson, str]:
    """The operator's stored login, verified again against the provider's keys now, when they
    are in one of `approver_groups`, with the ID token that proves it (an approval embeds it);
    `LoginFailed` (one line) otherwise."""
    stored = load_identity(path, now)
    if stored.issuer != issuer or stored.client_id != client_id:
        raise LoginFailed(f"this cluster's approvers log in at {issuer}: run `managed login`")
    jwks = fetch_keys(issuer, ca_file)
    try:
        person = verify_approver(
            stored.id_token,
            jwks,
            issuer=issuer,
            client_id=client_id,
            approver_groups=approver_groups,
            now=int(now),
        )
    except IdentityRefused as e:
        raise LoginFailed(f"not allowed to decide: {e}") from None
    return person, stored.id_token
