"""Staff sign-in through the customer's LDAP directory: its settings and the group-to-role rule.

The directory says who a person is (a bind with their own DN and password) and which groups
they are in; `roles` in the settings maps group names to Mission Control roles. Pure: the
LDAP conversation itself is `mission_control.service.accounts.ldap_login`.

Guarantees: the password never crosses the network in clear: an ``ldap://`` URL needs
`start_tls` (refused otherwise), ``ldaps://`` is TLS from the first byte; the server's
certificate is verified against `ca_file` (or the system's store). A person in several mapped
groups gets the most powerful of their roles; a person in none gets no role (refused).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contract.messages import StaffRole

#: Most powerful first: the role a person in several mapped groups gets.
_PRECEDENCE = (StaffRole.ADMIN, StaffRole.OPERATOR, StaffRole.SUPPORT_L3, StaffRole.SUPPORT_L2)


class LdapDirectory(BaseModel):
    """`MISSION_CONTROL_LDAP` (JSON): where the directory is and how to read it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(pattern=r"^ldaps?://[^/\s]+/?$", description="ldaps://HOST:PORT or ldap://")
    start_tls: bool = Field(default=False, description="Upgrade ldap:// with StartTLS.")
    ca_file: Path | None = Field(default=None, description="CA of the directory's certificate.")
    user_dn: str = Field(
        pattern=r"\{username\}", description='e.g. "uid={username},ou=people,dc=example,dc=org"'
    )
    group_base: str = Field(min_length=1, description="Where groups are searched.")
    group_filter: str = Field(
        default="(member={dn})", pattern=r"\{dn\}", description="{dn}: the person's DN."
    )
    group_name_attribute: str = "cn"
    roles: dict[str, StaffRole] = Field(min_length=1, description="group name -> role")
    timeout_s: float = Field(default=5, gt=0, le=60)

    @model_validator(mode="after")
    def _never_in_clear(self) -> LdapDirectory:
        if self.url.startswith("ldap://") and not self.start_tls:
            raise ValueError("ldap:// sends passwords in clear: set start_tls or use ldaps://")
        if self.url.startswith("ldaps://") and self.start_tls:
            raise ValueError("ldaps:// is TLS already: start_tls applies to ldap:// only")
        return self


def role_for(groups: Iterable[str], roles: Mapping[str, StaffRole]) -> StaffRole | None:
    """The most powerful role any of `groups` maps to; None when none is mapped."""
    mapped = {roles[g] for g in groups if g in roles}
    return next((role for role in _PRECEDENCE if role in mapped), None)
