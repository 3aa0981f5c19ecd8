"""Mission Control settings: defaults < environment (MISSION_CONTROL_*) < command-line flags.

Guarantees: a `Settings` object is validated as a whole (TLS cert and key come together,
thresholds are fractions, intervals are positive), so the server never starts half-configured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mission_control.service.rules.policy import AlertPolicy, SizingPolicy
from mission_control.service.support.approvers import OperatorProvider, check_distinct
from mission_control.staff.directory import LdapDirectory
from mission_control.staff.oidc import OidcProvider
from mission_control.staff.saml import SamlProvider

DEFAULT_DB_URL = "sqlite:///mission-control.db"
DEFAULT_CIPHERS = ":".join(
    [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ]
)


class Settings(BaseSettings):
    """Everything `mission-control serve` needs; see docs/mission-control-api.md."""

    model_config = SettingsConfigDict(
        env_prefix="MISSION_CONTROL_", frozen=True, extra="forbid", allow_inf_nan=False
    )

    db_url: str = DEFAULT_DB_URL
    host: str = "127.0.0.1"
    port: int = Field(default=8443, ge=0, le=65535)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_min_version: Literal["1.2", "1.3"] = "1.2"
    tls_ciphers: str = DEFAULT_CIPHERS
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=1024**3)
    migrate_on_start: bool = True
    access_log: bool = False
    db_pool_size: int = Field(default=10, ge=1, le=100)
    workers: int = Field(default=1, ge=1, le=64)

    # Durations are bounded: a timedelta holds at most 999,999,999 days.
    health_interval_s: float = Field(default=120, gt=0, le=7 * 86400)
    sweep_interval_s: float = Field(default=30, gt=0, le=86400)
    dedupe_retention_days: int = Field(default=30, ge=1, le=3650)
    credential_cache_s: float = Field(default=30, ge=0, le=3600)
    # GitHub's secret scanning keys document (or another reporter's, same format): whose signed
    # leak reports `POST /api/v1/leaks` accepts. None: staff tokens only.
    leak_reporter_keys_file: Path | None = None
    # Staff sign-in through the customer's LDAP directory (docs/security.md#directory-sign-in).
    ldap: LdapDirectory | None = None
    # Staff sign-in through the customer's OpenID Connect provider (docs/security.md#oidc).
    oidc: OidcProvider | None = None
    # Staff sign-in through the customer's SAML 2.0 identity provider (docs/security.md#saml).
    saml: SamlProvider | None = None
    # The customer's providers that prove which operator approved a support grant, per cluster
    # (docs/security.md#verified-approvers). Empty: the cluster's signature alone decides.
    operator_providers: tuple[OperatorProvider, ...] = ()
    enrollment_token_ttl_days: int = Field(default=7, ge=1, le=365)
    support_pending_ttl_s: float = Field(default=4 * 86400, gt=0, le=365 * 86400)
    staff_session_s: float = Field(default=12 * 3600, gt=0, le=30 * 86400)
    # argon2id cost of staff passwords (argon2-cffi defaults); hashes made with lower values are
    # upgraded at the next successful login.
    password_time_cost: int = Field(default=3, ge=1, le=100)
    password_memory_kib: int = Field(default=65536, ge=8, le=4 * 1024 * 1024)
    password_parallelism: int = Field(default=4, ge=1, le=64)

    # The secrets key sealing TOTP secrets (see mission_control/secrets_key.py): a file, else
    # MISSION_CONTROL_SECRETS_KEY, else (SQLite only) a key file beside the database.
    secrets_key_file: Path | None = None
    # Addresses of the proxies whose X-Forwarded-For names the client (the login throttle).
    trusted_proxies: tuple[str, ...] = ()

    # The vendor's release repository (`mission-control releases init`) served to clusters
    # under /api/v1/clusters/{id}/releases/ (docs/releases.md). None: no release is served.
    releases_repo: Path | None = None

    alerts: AlertPolicy = AlertPolicy()
    sizing: SizingPolicy = SizingPolicy()

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("--tls-cert and --tls-key must be given together")
        return self

    @model_validator(mode="after")
    def _one_provider_per_cluster(self) -> Settings:
        check_distinct(self.operator_providers)
        return self

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None
