"""Staff login through the customer's OpenID Connect provider: the authorization code flow
with PKCE, done by `authlib`'s client, and the ID token checked by `contract.identity`.

`start` asks the provider's discovery document where to send the browser and returns the
`Flow` (state, nonce, PKCE verifier) the browser must bring back; `finish` checks the callback
against it (authlib checks `state`), redeems the code with the verifier, fetches the provider's
keys and verifies the ID token (signature, issuer, audience, expiry, nonce). Both are blocking
(requests): run them in a thread. `login_oidc` then admits the person exactly as an LDAP login
(`directory_admission`): groups to role, the second factor for support roles (the provider's
`amr` when the settings trust it, otherwise the built-in TOTP), audit and throttle.

Guarantees: every refusal (the provider said no, a state that does not match, a code the
provider will not redeem, a token that does not verify) is `OidcRefused` with one line; the
ID token is never trusted before `contract.identity.verify_id_token` accepted it; the
provider's certificate is verified (its `ca_file` or the system's store).
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session

from contract.identity import IdentityRefused, VerifiedPerson, verify_id_token
from mission_control.service.accounts.directory_admission import admit
from mission_control.service.accounts.oidc_documents import OidcRefused, get_json
from mission_control.service.accounts.staff import LoginResult, begin_attempt, throttled_login
from mission_control.service.context import ServiceContext
from mission_control.staff.oidc import OidcProvider, provider_second_factor

_PLAIN_NAME = re.compile(r"[A-Za-z0-9._@-]{1,128}")
#: How long a browser may take at the provider between `start` and `finish`.
FLOW_TTL_S = 600


@dataclass(frozen=True)
class Flow:
    """What the browser carries (sealed) from `start` to the callback."""

    state: str
    nonce: str
    verifier: str
    redirect_uri: str
    next: str
    started: int

    def dump(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def load(cls, text: str) -> Flow:
        try:
            return cls(**json.loads(text))
        except (ValueError, TypeError) as e:
            raise OidcRefused(f"the sign-in state is unreadable: {type(e).__name__}") from None


def _session(provider: OidcProvider, redirect_uri: str) -> OAuth2Session:
    session = OAuth2Session(
        provider.client_id,
        provider.client_secret or None,
        scope=" ".join(provider.scopes),
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic" if provider.client_secret else "none",
        default_timeout=provider.timeout_s,
    )
    # Per request, not `session.verify`: requests lets REQUESTS_CA_BUNDLE override a session's.
    session.verify = _verify(provider)
    return session


def _verify(provider: OidcProvider) -> str | bool:
    return str(provider.ca_file) if provider.ca_file else True


def _metadata(provider: OidcProvider, session: OAuth2Session) -> dict[str, Any]:
    url = provider.issuer.rstrip("/") + "/.well-known/openid-configuration"
    meta = get_json(session, url, "discovery document", provider.timeout_s)
    if meta.get("issuer") != provider.issuer:
        raise OidcRefused("the provider's discovery document names another issuer")
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(meta.get(name), str) or not meta[name].startswith("https://"):
            raise OidcRefused(f"the provider's discovery document has no https {name}")
    return meta


def start(provider: OidcProvider, redirect_uri: str, next_path: str, now: int) -> tuple[str, Flow]:
    """Where to send the browser, and the flow it must bring back."""
    with _session(provider, redirect_uri) as session:
        meta = _metadata(provider, session)
        verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(24)
        url, state = session.create_authorization_url(
            meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
        )
    return url, Flow(state, nonce, verifier, redirect_uri, next_path, now)


def finish(provider: OidcProvider, flow: Flow, callback_url: str, now: int) -> VerifiedPerson:
    """The person the provider vouches for on this callback, or `OidcRefused`."""
    if not 0 <= now - flow.started <= FLOW_TTL_S:
        raise OidcRefused("the sign-in took too long: start again")
    query = parse_qs(urlsplit(callback_url).query)
    if "error" in query:
        raise OidcRefused(f"the provider refused: {query['error'][0][:80]}")
    if not query.get("code"):
        raise OidcRefused("the provider sent no authorization code")
    with _session(provider, flow.redirect_uri) as session:
        meta = _metadata(provider, session)
        try:
            token = session.fetch_token(
                meta["token_endpoint"],
                authorization_response=callback_url,
                state=flow.state,
                code_verifier=flow.verifier,
                verify=_verify(provider),
            )
        except (AuthlibBaseError, requests.RequestException, ValueError) as e:
            raise OidcRefused(f"the code was not redeemed: {type(e).__name__}: {e}"[:200]) from None
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise OidcRefused("the provider returned no ID token")
        jwks = get_json(session, meta["jwks_uri"], "key set", provider.timeout_s)
    try:
        return verify_id_token(
            id_token,
            jwks,
            issuer=provider.issuer,
            client_id=provider.client_id,
            now=now,
            nonce=flow.nonce,
            groups_claim=provider.groups_claim,
        )
    except IdentityRefused as e:
        raise OidcRefused(f"the ID token was refused: {e}") from None


def username_of(provider: OidcProvider, person: VerifiedPerson) -> str:
    """The Mission Control account name: the person's plain name when configured and
    present, else the provider's subject."""
    plain = _PLAIN_NAME.fullmatch(person.name) is not None
    return person.name if provider.username_claim != "sub" and plain else person.subject


async def login_oidc(
    ctx: ServiceContext,
    provider: OidcProvider,
    person: VerifiedPerson,
    code: str,
    *,
    source: str | None,
) -> LoginResult:
    """Admit a verified person: role from their groups, second factor for support roles."""
    username = username_of(provider, person)
    attempt = await begin_attempt(ctx, username, source)
    if attempt.waits_until is not None:
        return await throttled_login(
            ctx, username, attempt.source, attempt.now, attempt.waits_until
        )
    return await admit(
        ctx,
        attempt,
        username,
        person.groups,
        "",
        provider.roles,
        code,
        method="oidc",
        provider_factor=provider_second_factor(person.amr, provider.trusted_amr),
        accepted="provider's ID token verified",
        extra={"issuer": person.issuer, "subject": person.subject, "amr": list(person.amr)},
    )
