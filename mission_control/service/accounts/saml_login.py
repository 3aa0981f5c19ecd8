"""Staff login through the customer's SAML 2.0 identity provider: SP-initiated Web Browser SSO,
done by `pysaml2`'s client; no XML or signature is read here by hand.

`start` makes the AuthnRequest and the provider URL that carries it (HTTP-Redirect binding)
and returns the `SamlFlow` the browser must bring back; `finish` gives the provider's response
(HTTP-POST binding) to pysaml2, which checks it (`xmlsec1`): the assertion signed by the
certificate in the provider's metadata, issued by that provider, in response to this flow's
request (``InResponseTo``), for this server (audience, recipient and destination), and within
its validity (``NotBefore``/``NotOnOrAfter``, `SamlProvider.clock_skew_s` allowed). Both are
blocking (xmlsec1 is a subprocess): run them in a thread. `login_saml` then admits the person
exactly as an LDAP or OpenID Connect login (`directory_admission`): groups to role, the second
factor for support roles (the assertion's ``AuthnContextClassRef`` when the settings trust it,
otherwise the built-in TOTP), audit and throttle.

Guarantees: every refusal is `SamlRefused` with one line; nothing from a response is used
before pysaml2 accepted it; only the certificate of the provider's metadata verifies (never
one the response carries); an unsolicited response (no request of this flow) is refused; an
assertion signed or digested with SHA-1 is refused (read from pysaml2's parsed, verified
signature: xmlsec1 itself still accepts SHA-1).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import create_metadata_string
from saml2.xmldsig import DIGEST_SHA1, MAC_SHA1, SIG_DSA_SHA1, SIG_ECDSA_SHA1, SIG_RSA_SHA1

from mission_control.service.accounts.directory_admission import admit
from mission_control.service.accounts.staff import LoginResult, begin_attempt, throttled_login
from mission_control.service.context import ServiceContext
from mission_control.staff.oidc import provider_second_factor
from mission_control.staff.saml import SamlProvider

_PLAIN_NAME = re.compile(r"[A-Za-z0-9._@-]{1,128}")
#: How long a browser may take at the provider between `start` and `finish`.
FLOW_TTL_S = 600
#: The largest response accepted (base64), before anything parses it.
MAX_RESPONSE = 256 * 1024
#: Algorithms xmlsec1 still verifies but nobody should sign with any more (SHA-1).
WEAK_ALGORITHMS = frozenset({DIGEST_SHA1, MAC_SHA1, SIG_DSA_SHA1, SIG_ECDSA_SHA1, SIG_RSA_SHA1})


class SamlRefused(Exception):
    """The provider's answer is not accepted; the message is one line for the person."""


@dataclass(frozen=True)
class SamlFlow:
    """What the browser carries (sealed) from `start` to the assertion consumer service."""

    request_id: str
    acs_url: str
    next: str
    started: int

    def dump(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def load(cls, text: str) -> SamlFlow:
        try:
            return cls(**json.loads(text))
        except (ValueError, TypeError) as e:
            raise SamlRefused(f"the sign-in state is unreadable: {type(e).__name__}") from None


@dataclass(frozen=True)
class SamlPerson:
    """What a verified assertion says of the person."""

    issuer: str
    name_id: str
    username: str
    groups: tuple[str, ...]
    authn_contexts: tuple[str, ...]


def _config(provider: SamlProvider, acs_url: str) -> SPConfig:
    config = SPConfig()
    try:
        config.load(
            {
                "entityid": provider.entity_id,
                "xmlsec_binary": str(provider.xmlsec_binary),
                "metadata": {"local": [str(provider.idp_metadata_file)]},
                "accepted_time_diff": provider.clock_skew_s,
                "allow_unknown_attributes": True,
                # Only the metadata's certificate verifies: never one the response carries.
                "only_use_keys_in_metadata": True,
                "service": {
                    "sp": {
                        "endpoints": {"assertion_consumer_service": [(acs_url, BINDING_HTTP_POST)]},
                        "want_assertions_signed": True,
                        "want_response_signed": False,
                        "allow_unsolicited": False,
                        "authn_requests_signed": False,
                    }
                },
            }
        )
    except Exception as e:  # pysaml2 raises many kinds on a bad metadata file or binary
        raise SamlRefused(
            f"the SAML settings are unusable: {type(e).__name__}: {e}"[:200]
        ) from None
    return config


def _client(provider: SamlProvider, acs_url: str) -> Saml2Client:
    return Saml2Client(config=_config(provider, acs_url))


def sp_metadata(provider: SamlProvider, acs_url: str) -> str:
    """This server's SP metadata (entity ID, assertion consumer service), for the provider."""
    return str(create_metadata_string(None, _config(provider, acs_url)).decode())


def start(provider: SamlProvider, acs_url: str, next_path: str, now: int) -> tuple[str, SamlFlow]:
    """The provider URL carrying a fresh AuthnRequest, and the flow the browser brings back."""
    client = _client(provider, acs_url)
    try:
        request_id, info = client.prepare_for_authenticate(binding=BINDING_HTTP_REDIRECT)
    except Exception as e:  # e.g. the metadata names no (or several) identity providers
        raise SamlRefused(f"no request to the provider: {type(e).__name__}: {e}"[:200]) from None
    location = dict(info["headers"])["Location"]
    return str(location), SamlFlow(str(request_id), acs_url, next_path, now)


def _first(values: Any) -> str:
    return str(values[0]) if isinstance(values, list) and values else ""


def finish(provider: SamlProvider, flow: SamlFlow, response: str, now: int) -> SamlPerson:
    """The person the provider vouches for in `response` (base64, HTTP-POST), or `SamlRefused`."""
    if not 0 <= now - flow.started <= FLOW_TTL_S:
        raise SamlRefused("the sign-in took too long: start again")
    if not response or len(response) > MAX_RESPONSE:
        raise SamlRefused("the provider sent no usable response")
    client = _client(provider, flow.acs_url)
    try:
        answer = client.parse_authn_request_response(
            response, BINDING_HTTP_POST, outstanding={flow.request_id: flow.next}
        )
    except Exception as e:  # pysaml2 refuses with many exception kinds, all meaning "no"
        raise SamlRefused(f"the assertion was refused: {_why(e)}") from None
    if answer is None or answer.assertion is None or answer.assertion.signature is None:
        raise SamlRefused("the assertion was refused: no signed assertion in the response")
    if _weakly_signed(answer.assertion.signature):
        raise SamlRefused("the assertion was refused: signed with SHA-1 (use SHA-256)")
    attributes = answer.get_identity()
    name_id = str(answer.name_id.text) if answer.name_id is not None else ""
    name = (
        _first(attributes.get(provider.username_attribute)) if provider.username_attribute else ""
    )
    username = name if _PLAIN_NAME.fullmatch(name) else name_id
    if not username:
        raise SamlRefused("the assertion names nobody")
    groups = attributes.get(provider.groups_attribute) or []
    contexts = tuple(str(ref) for ref, *_rest in answer.authn_info() if ref)
    return SamlPerson(answer.issuer(), name_id, username, tuple(str(g) for g in groups), contexts)


def _weakly_signed(signature: Any) -> bool:
    """Whether the (verified) assertion signature, as pysaml2 parsed it, used SHA-1."""
    info = signature.signed_info
    used = {info.signature_method.algorithm} | {
        ref.digest_method.algorithm for ref in info.reference
    }
    return bool(used & WEAK_ALGORITHMS)


def _why(error: Exception) -> str:
    """One line for a pysaml2 refusal (its messages can carry whole XML documents)."""
    kind = type(error).__name__
    text = str(error).splitlines()[0][:120] if str(error) else ""
    if "Signature" in kind or "signed" in text.lower() or "signature" in text.lower():
        return f"its signature is missing or does not verify ({kind})"
    return f"{kind}: {text}" if text else kind


async def login_saml(
    ctx: ServiceContext,
    provider: SamlProvider,
    person: SamlPerson,
    code: str,
    *,
    source: str | None,
) -> LoginResult:
    """Admit a verified person: role from their groups, second factor for support roles."""
    attempt = await begin_attempt(ctx, person.username, source)
    if attempt.waits_until is not None:
        return await throttled_login(
            ctx, person.username, attempt.source, attempt.now, attempt.waits_until
        )
    return await admit(
        ctx,
        attempt,
        person.username,
        person.groups,
        "",
        provider.roles,
        code,
        method="saml",
        provider_factor=provider_second_factor(
            person.authn_contexts, provider.trusted_authn_contexts
        ),
        accepted="provider's signed assertion verified",
        extra={
            "issuer": person.issuer,
            "name_id": person.name_id,
            "authn_context": list(person.authn_contexts),
        },
    )
