"""Staff sign-in through the customer's OpenID Connect provider: its settings and the rule
that decides whether the provider's own second factor is enough.

The provider says who a person is (an ID token, verified by `contract.identity`) and which
groups they are in (the `groups_claim`); `roles` maps group names to Mission Control roles
exactly as for LDAP (`mission_control.staff.directory.role_for`). Pure: the OAuth 2.0
conversation itself is `mission_control.service.accounts.oidc_login` (authlib's client).

Guarantees: the issuer is an ``https://`` URL and its certificate is verified (against
`ca_file` or the system's store); the code flow always uses PKCE (S256), a fresh `state` and
a fresh `nonce`. A support role's second factor is the built-in TOTP unless `trusted_amr`
names a method the provider asserted in the token's `amr` (e.g. ``["mfa", "otp"]``); empty
(the default) trusts none.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from contract.messages import StaffRole


class OidcProvider(BaseModel):
    """`MISSION_CONTROL_OIDC` (JSON): which provider, which client, how to read its groups."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    issuer: str = Field(pattern=r"^https://[^\s/]+(/\S*)?$", description="https://... only")
    client_id: str = Field(min_length=1)
    client_secret: str = Field(default="", description="Empty: a public client (PKCE only).")
    scopes: tuple[str, ...] = ("openid", "profile", "email", "groups")
    groups_claim: str = "groups"
    #: What names the Mission Control account: the token's `preferred_username` (the subject
    #: when absent or not a plain name: letters, digits, ``._@-``), or always the subject.
    username_claim: Literal["preferred_username", "sub"] = "preferred_username"
    roles: dict[str, StaffRole] = Field(min_length=1, description="group name -> role")
    trusted_amr: tuple[str, ...] = Field(
        default=(), description='amr values accepted as the second factor, e.g. ["mfa"]'
    )
    ca_file: Path | None = Field(default=None, description="CA of the provider's certificate.")
    #: Where the provider sends the browser back; empty: this server's own callback URL.
    redirect_uri: str = Field(default="", pattern=r"^(https?://\S+)?$")
    label: str = Field(default="Company single sign-on", max_length=80)
    timeout_s: float = Field(default=10, gt=0, le=60)


def provider_second_factor(amr: Iterable[str], trusted: Iterable[str]) -> bool:
    """Whether the provider asserted a second factor this server's settings accept."""
    return bool(set(amr) & set(trusted))
