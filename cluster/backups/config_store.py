"""Reading and changing the backup settings in the cluster config (operator writes).

Guarantees: a change is validated in full (`BackupSettings.checked`) before it is written, and
written with the config znode's version (compare-and-set, retried on a concurrent change), so
bad input changes nothing and a concurrent `mc enroll` or `support mode` is never lost.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cluster.backups import queued
from cluster.backups.errors import BackupConfigError
from cluster.backups.settings import SECTION, BackupSettings
from cluster.paths import ClusterPaths
from cluster.zk import ZooKeeper
from cluster.zk.errors import BadVersionError


@dataclass(frozen=True)
class Change:
    """What `configure` was asked: new settings, and maybe a new geography."""

    settings: BackupSettings
    geography: str | None


read_config = queued.read_config


def geography_after(config: dict[str, Any], requested: str | None) -> str | None:
    """The geography a change leaves; refuses to move an enrolled cluster to another one."""
    current = config.get("geography")
    if requested is None or requested == current:
        return current if isinstance(current, str) else None
    if current and config.get("mission_control"):
        raise BackupConfigError(
            f"the cluster is enrolled with geography {current}; it cannot become {requested}"
        )
    return requested


def update(
    client: ZooKeeper,
    paths: ClusterPaths,
    change: Callable[[dict[str, Any], BackupSettings], Change],
    attempts: int = 10,
) -> BackupSettings:
    """Apply `change` to the current settings, validate, and write (compare-and-set)."""
    for _ in range(attempts):
        config, version = read_config(client, paths)
        proposed = change(config, BackupSettings.from_config(config))
        geography = geography_after(config, proposed.geography)
        settings = proposed.settings.checked(geography)
        updated = {**config, SECTION: settings.to_config()}
        if geography is not None:
            updated["geography"] = geography
        try:
            client.set(paths.config, json.dumps(updated, sort_keys=True).encode(), version=version)
        except BadVersionError:
            continue
        return settings
    raise BackupConfigError("the cluster config kept changing; try again")


def update_signed(
    client: ZooKeeper,
    paths: ClusterPaths,
    auth: str | None,
    change: Callable[[dict[str, Any], BackupSettings], Change],
) -> tuple[BackupSettings, str]:
    """`update`, after making sure the cluster has its manifest-signing key (created on first
    use, which needs `auth`), whose public half goes into the settings. Bad input is refused
    before the key is created. Returns the settings and the signer's fingerprint."""
    from backup.manifest import signer_id
    from cluster.backups.signing import encode_public, ensure_signing_key

    config, _ = read_config(client, paths)
    proposed = change(config, BackupSettings.from_config(config))
    proposed.settings.checked(geography_after(config, proposed.geography))
    key = ensure_signing_key(client, paths, auth)
    public = encode_public(key)

    def with_key(cfg: dict[str, Any], current: BackupSettings) -> Change:
        result = change(cfg, current)
        settings = result.settings.model_copy(update={"signing_public_key": public})
        return Change(settings, result.geography)

    return update(client, paths, with_key), signer_id(key)


def signer_of(settings: BackupSettings) -> str | None:
    """The fingerprint of the cluster's manifest-signing key, if it has one."""
    from backup.manifest import signer_id
    from cluster.backups.signing import decode_public

    key = decode_public(settings.signing_public_key)
    return None if key is None else signer_id(key)
