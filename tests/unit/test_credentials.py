"""The credential format (prefix, base62, CRC32 checksum) and the scanner over files and git
history (a real git repository made by the test)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from cluster.cli import main as managed
from contract.credentials import (
    BASE62,
    CredentialKind,
    base62,
    find,
    issue,
    kind_for_leak_type,
    kind_of,
    parse,
)
from contract.messages import cluster_id_of
from contract.secret_scan import FOUND_EXIT, ScanError, scan, scan_git_history
from contract.support.redaction import redact
from mission_control.cli import main as mission_control

CLUSTER = "0b7c5a9e-3f52-4d1c-9a57-2a1f0e6c4b11"


def test_every_kind_has_a_fixed_length_and_a_valid_checksum() -> None:
    for kind in CredentialKind:
        assert kind.value.startswith("mc") and len(kind.value) == 3  # `find` relies on it
        credential = issue(
            kind,
            cluster_id=CLUSTER if kind is CredentialKind.CLUSTER else None,
            record_id="0123456789ab" if kind.id_length == 12 else None,
        )
        assert len(credential) == kind.length and credential.startswith(kind.value + "_")
        assert kind_of(credential) is kind and kind_for_leak_type(kind.leak_type) is kind
        head = credential[:-6]
        assert credential[-6:] == base62(zlib.crc32(head.encode()), 6)
    assert kind_for_leak_type("github_personal_access_token") is None


def test_a_cluster_credential_names_its_cluster_and_the_old_form_still_does() -> None:
    credential = issue(CredentialKind.CLUSTER, cluster_id=CLUSTER)
    parsed = parse(credential)
    assert parsed is not None and parsed.cluster_id == CLUSTER
    assert cluster_id_of(credential) == CLUSTER
    assert cluster_id_of(f"mcc.{CLUSTER}.oldsecret") == CLUSTER
    with pytest.raises(ValueError):
        issue(CredentialKind.CLUSTER)
    with pytest.raises(ValueError):
        issue(CredentialKind.STAFF_TOKEN, cluster_id=CLUSTER)
    with pytest.raises(ValueError):
        issue(CredentialKind.STAFF_TOKEN, random="short")


def test_a_data_token_names_its_record_and_nothing_else() -> None:
    token = issue(CredentialKind.DATA_INGEST, record_id="0123456789ab", random="R" * 30)
    parsed = parse(token)
    assert parsed is not None and parsed.record_id == "0123456789ab" and parsed.random == "R" * 30
    assert parsed.cluster_id is None
    assert [f.kind for f in find(f"INGEST_TOKEN={token}".encode())] == [CredentialKind.DATA_INGEST]
    for bad in (
        {},  # no record
        {"record_id": "0123456789AB"},  # upper case: not what a node issues
        {"record_id": "0123"},
        {"record_id": "0123456789ab", "cluster_id": CLUSTER},
    ):
        with pytest.raises(ValueError):
            issue(CredentialKind.DATA_READ, **bad)
    with pytest.raises(ValueError):
        issue(CredentialKind.STAFF_TOKEN, record_id="0123456789ab")


def test_one_changed_character_breaks_the_checksum() -> None:
    token = issue(CredentialKind.STAFF_TOKEN, random="Q" * 30)
    for at in range(4, len(token)):
        other = next(c for c in BASE62 if c != token[at])
        assert parse(token[:at] + other + token[at + 1 :]) is None
    assert parse(token + "0") is None and parse(token[:-1]) is None
    assert parse("mct_" + "x" * 36) is None and parse("") is None and parse("mcq_x") is None


def test_find_takes_only_whole_words_with_valid_checksums() -> None:
    good = issue(CredentialKind.ENROLLMENT)
    text = (
        f"token={good}\n"
        f"x{good}\n"  # glued to a word: not a credential
        f"{good}0\n"  # longer run: not a credential
        f"mce_{'A' * 36}\n"  # right shape, wrong checksum
        f'"{good}",\n'
    ).encode()
    found = find(text)
    assert [f.credential for f in found] == [good, good]
    assert found[0].offset == len("token=")


def test_redaction_hides_new_and_old_credentials() -> None:
    for secret in (
        issue(CredentialKind.RENEWAL),
        issue(CredentialKind.CLUSTER, cluster_id=CLUSTER),
        f"mcc.{CLUSTER}.abcdefghijklmnop",
    ):
        assert secret not in redact(f"we saw {secret} in the log")


def _git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }
    done = subprocess.run(
        ["git", "-C", str(repo), *args], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "README").write_text("nothing to see\nmcc_notachecksum mct_short\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "first")
    return repo


def test_a_clean_repository_gives_no_finding(repo: Path) -> None:
    assert scan([repo], git=True) == []
    result = CliRunner().invoke(managed, ["secrets", "scan", "--git", str(repo)])
    assert result.exit_code == 0 and result.stdout == ""
    assert "no credentials found" in result.stderr


def test_credentials_removed_from_the_tree_are_found_in_history(repo: Path) -> None:
    leaked = issue(CredentialKind.CLUSTER, cluster_id=CLUSTER)
    token = issue(CredentialKind.STAFF_TOKEN)
    (repo / "deploy.env").write_text(f"# config\nMC_CREDENTIAL={leaked}\n")
    (repo / "notes.md").write_text(f"a\nb\nstaff token {token}\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "oops")
    planted = _git(repo, "rev-parse", "HEAD")
    (repo / "deploy.env").unlink()
    (repo / "notes.md").write_text("cleaned\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "remove the secrets")

    assert scan([repo]) == []  # the work tree is clean now
    history = scan_git_history(repo)
    assert {(leak.kind, leak.line, leak.commit) for leak in history} == {
        (CredentialKind.CLUSTER, 2, planted),
        (CredentialKind.STAFF_TOKEN, 3, planted),
    }
    assert any(leak.location.endswith(":deploy.env") for leak in history)

    for cli in (managed, mission_control):
        result = CliRunner().invoke(cli, ["secrets", "scan", "--git", "--json", str(repo)])
        assert result.exit_code == FOUND_EXIT, result.output
        assert leaked not in result.stdout and token not in result.stdout
        shown = json.loads(result.stdout)
        assert {f["type"] for f in shown} == {"managed_cluster_credential", "managed_staff_token"}
        assert {f["commit"] for f in shown} == {planted}


def test_files_are_scanned_without_following_links(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(issue(CredentialKind.ENROLLMENT))
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "link").symlink_to(outside, target_is_directory=True)
    (tree / "binary.bin").write_bytes(b"\x00\xff" + issue(CredentialKind.RENEWAL).encode() + b"\0")
    found = scan([tree])
    assert [leak.kind for leak in found] == [CredentialKind.RENEWAL]
    with pytest.raises(ScanError, match="no such file"):
        scan([tmp_path / "missing"])
    result = CliRunner().invoke(managed, ["secrets", "scan", str(tmp_path / "missing")])
    assert result.exit_code == 1 and "no such file" in result.output


def test_a_uuid_is_any_uuid() -> None:
    other = str(uuid.uuid4())
    assert cluster_id_of(issue(CredentialKind.CLUSTER, cluster_id=other)) == other
