"""`managed backup keygen|rotate-key`: the customer's key pair and its installation.

The private key is written only to the operator's machine (mode 0600) with its public half and
the signers file (the fingerprint `restore` trusts); only the public key reaches the cluster.
Replacing an installed key asks first (or needs `--yes`); `rotate-key` moves existing backups to
a new key pair by re-wrapping their data keys (`cluster.backups.rekey`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from cluster.backups.errors import BackupConfigError
from cluster.backups.text import signer_line
from cluster.cli.common import KEY_FILE, Globals, pass_globals

ALGORITHM = click.option(
    "--algorithm", type=click.Choice(["x25519", "rsa"]), default="x25519", show_default=True
)


def _confirm_replace(g: Globals, installed: str) -> None:
    """Replacing the installed public key needs a yes: backups made with it keep needing it."""
    question = (
        f"cluster {g.cluster} already has backup key {installed[:16]}; backups made with it "
        "will still need its private key. Replace it"
    )
    if sys.stdin.isatty():
        click.confirm(question, abort=True)
        return
    raise BackupConfigError(
        f"cluster {g.cluster} already has backup key {installed[:16]}: pass --yes to replace it "
        "(keep its private key for the backups made with it), or use `managed backup rotate-key`"
    )


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@ALGORITHM
@click.option("--passphrase", is_flag=True, help="Protect the private key (scrypt); asks for it.")
@click.option("--yes", is_flag=True, help="Replace an installed public key without asking.")
@pass_globals
def keygen(g: Globals, file: Path, algorithm: str, passphrase: bool, yes: bool) -> None:
    """Make a key pair: private key to FILE (0600), public key into the cluster config."""
    from backup.keys import KeyAlgorithm, public_key_pem, read_public_key
    from backup.manifest import signer_id
    from cluster.backups import config_store, keyfiles
    from cluster.backups.config_store import Change
    from cluster.backups.settings import BackupSettings
    from cluster.backups.signing import ensure_signing_key
    from cluster.cli.deciders import guarded_changer

    kind: KeyAlgorithm = "x25519" if algorithm == "x25519" else "rsa-oaep-sha256"
    with g.session() as client:
        keyfiles.check_free(file)  # before anything changes in the cluster
        guarded_changer(client, g, "managed backup keygen", "backup")
        installed = BackupSettings.from_config(config_store.read_config(client, g.paths)[0])
        if installed.key_id and not yes:
            _confirm_replace(g, installed.key_id)
        signer = signer_id(ensure_signing_key(client, g.paths, g.zk_auth))
        kid, pub = keyfiles.generate(file, kind, passphrase, signer)
        pem = public_key_pem(read_public_key(pub)).decode()

        def install(_config: dict[str, Any], current: Any) -> Change:
            return Change(current.model_copy(update={"public_key": pem, "key_id": kid}), None)

        config_store.update_signed(client, g.paths, g.zk_auth, install)
    click.echo(
        f"private key written to {file} (mode 0600: keep it off the cluster), public key to "
        f"{pub}, trusted signer to {keyfiles.signers_path(file)}; key {kid[:16]} installed in "
        f"cluster {g.cluster}"
    )
    click.echo(signer_line(signer))


@click.command("rotate-key")
@click.option("--old-key", required=True, type=KEY_FILE, help="The installed key's private key.")
@click.option("--new-public-key", type=KEY_FILE, help="An existing public key (PEM) to move to.")
@click.option("--new-key", type=click.Path(dir_okay=False, path_type=Path), help="Make it here.")
@ALGORITHM
@click.option("--passphrase", is_flag=True, help="Protect the new private key (scrypt).")
@pass_globals
def rotate_key(
    g: Globals,
    old_key: Path,
    new_public_key: Path | None,
    new_key: Path | None,
    algorithm: str,
    passphrase: bool,
) -> None:
    """Move every backup to a new key pair: re-wrap data keys only, install the new public key."""
    from backup.keys import KeyAlgorithm, read_public_key
    from cluster.backups import config_store, keyfiles
    from cluster.backups.rekey import check_ready, rotate_cluster_key
    from cluster.backups.settings import BackupSettings
    from cluster.cli.deciders import guarded_changer

    if (new_public_key is None) == (new_key is None):
        raise click.UsageError("give one of --new-public-key FILE or --new-key FILE")
    old = keyfiles.load_private(old_key)
    with g.session() as client:
        guarded_changer(client, g, "managed backup rotate-key", "backup")
        if new_key is not None:
            keyfiles.check_free(new_key)
            check_ready(client, g.paths, old, None)  # before the new files are written
            kind: KeyAlgorithm = "x25519" if algorithm == "x25519" else "rsa-oaep-sha256"
            settings = BackupSettings.from_config(config_store.read_config(client, g.paths)[0])
            signer = config_store.signer_of(settings)
            new_public_key = keyfiles.generate(new_key, kind, passphrase, signer)[1]
            click.echo(
                f"new private key written to {new_key} (mode 0600), public key to {new_public_key}"
            )
        assert new_public_key is not None
        report = rotate_cluster_key(
            client, g.paths, g.zk_auth, old, read_public_key(new_public_key)
        )
    notes = [f"{len(report.already_current)} already on it"]
    if report.other_key:
        notes.append(f"{len(report.other_key)} on another key left alone")
    if report.unreadable:
        notes.append(f"{len(report.unreadable)} unreadable manifest(s) skipped")
    click.echo(
        f"key {report.new_key_id[:16]} installed in cluster {g.cluster}; re-wrapped "
        f"{len(report.rotated)} backup(s), {', '.join(notes)}"
    )
