"""Staff sign-in through the customer's SAML 2.0 identity provider: its settings.

The provider says who a person is (a signed assertion, checked by pysaml2) and which groups
they are in (the `groups_attribute`); `roles` maps group names to Mission Control roles exactly
as for LDAP and OpenID Connect (`mission_control.staff.directory.role_for`). A support role's
second factor is the built-in TOTP unless the assertion's ``AuthnContextClassRef`` is one of
`trusted_authn_contexts` (`mission_control.staff.oidc.provider_second_factor`, the rule of the
OIDC ``amr``); empty (the default) trusts none. Pure: the SAML conversation itself is
`mission_control.service.accounts.saml_login` (pysaml2's client).

Guarantees: the server does not start without the metadata file and `xmlsec1` (one line);
the provider is known only from its metadata file (entity ID, signing
certificate, single sign-on endpoint), never from what a response says of itself; assertions
must be signed by that certificate; the audience must be `entity_id`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, FilePath

from contract.messages import StaffRole


class SamlProvider(BaseModel):
    """`MISSION_CONTROL_SAML` (JSON): which provider, who this server is to it, how to read
    the person's name and groups from the assertion."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: The provider's metadata (its administrator exports it): whose signatures count.
    idp_metadata_file: FilePath
    #: This server's entity ID at the provider (the assertion's audience).
    entity_id: str = Field(min_length=1, max_length=1024)
    #: Where the provider posts its response; empty: this server's own
    #: ``https://HOST/console/login/saml/acs`` as the browser reached it.
    acs_url: str = Field(default="", pattern=r"^(https?://\S+)?$")
    groups_attribute: str = Field(default="groups", min_length=1)
    #: The attribute naming the Mission Control account; "" : the assertion's NameID.
    username_attribute: str = "uid"
    roles: dict[str, StaffRole] = Field(min_length=1, description="group name -> role")
    trusted_authn_contexts: tuple[str, ...] = Field(
        default=(),
        description="AuthnContextClassRef values accepted as the second factor, e.g. "
        '["https://refeds.org/profile/mfa"]',
    )
    #: How far the provider's clock may be from this server's (NotBefore/NotOnOrAfter).
    clock_skew_s: int = Field(default=60, ge=0, le=600)
    #: Debian's `xmlsec1` (pysaml2 verifies signatures with it): a missing one stops the start.
    xmlsec_binary: FilePath = Field(default_factory=lambda: Path("/usr/bin/xmlsec1"))
    label: str = Field(default="Company single sign-on (SAML)", max_length=80)
