"""`managed backup rotate-key`: move a cluster's backups to a new customer key pair.

Guarantees:
- Refused (nothing changed) unless the old private key given is the cluster's installed key
  (or the new one is already installed: an interrupted rotation is simply run again), no run is
  in progress, and the configured targets open (residency checks included).
- The new public key is installed first, so every run started afterwards is already wrapped for
  it; then every committed backup on the configured primary is re-wrapped (data keys only: no
  data object is read or rewritten, `backup.rotation`), its manifest signed again by the cluster
  and replaced on the primary and on each mirror that holds it.
Does not guarantee: that a run started just before the new key was installed and committed
after the listing is re-wrapped; running the rotation again picks it up (backups already on the
new key are skipped). Backups on targets no longer configured are not touched.
"""

from __future__ import annotations

from typing import Any

from backup.engine import RotationReport, rotate_key
from backup.keys import RecipientPrivateKey, RecipientPublicKey, key_id, public_key_pem
from cluster.backups import config_store, store
from cluster.backups.config_store import Change
from cluster.backups.errors import BackupConfigError, BackupRunError
from cluster.backups.settings import BackupSettings, plan_run
from cluster.backups.signing import load_signing_key
from cluster.backups.work import open_plan
from cluster.paths import ClusterPaths
from cluster.zk import ZooKeeper


def check_ready(
    client: ZooKeeper,
    paths: ClusterPaths,
    old_private: RecipientPrivateKey,
    new_id: str | None,
) -> dict[str, Any]:
    """The cluster config, if a rotation from `old_private` (to key `new_id`) may start."""
    config, _ = config_store.read_config(client, paths)
    installed = BackupSettings.from_config(config).key_id
    old_id = key_id(old_private.public_key())
    if old_id == new_id:
        raise BackupConfigError("the new public key is the old key's: nothing to rotate")
    if installed not in (old_id, new_id):
        raise BackupConfigError(
            f"the cluster's backup key is {str(installed)[:16]}, not the old key {old_id[:16]}: "
            "give the installed key's private key with --old-key"
        )
    if store.current_run_id(client, paths) is not None:
        raise BackupRunError("a backup is running: rotate the key once it has ended")
    return config


def rotate_cluster_key(
    client: ZooKeeper,
    paths: ClusterPaths,
    auth: str | None,
    old_private: RecipientPrivateKey,
    new_public: RecipientPublicKey,
) -> RotationReport:
    """Install `new_public` and re-wrap every backup on the configured targets for it."""
    new_id = key_id(new_public)
    config = check_ready(client, paths, old_private, new_id)
    targets = open_plan(plan_run(config))
    signing_key = load_signing_key(client, paths, auth)
    pem = public_key_pem(new_public).decode()

    def install(_config: dict[str, Any], current: BackupSettings) -> Change:
        return Change(current.model_copy(update={"public_key": pem, "key_id": new_id}), None)

    config_store.update(client, paths, install)
    return rotate_key(
        targets,
        old_private=old_private,
        new_public=new_public,
        signing_key=signing_key,
        trusted=signing_key.public_key(),
    )
