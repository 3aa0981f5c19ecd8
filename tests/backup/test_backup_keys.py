"""Key pairs, wrapping, passphrase envelope, rotation (pure, no servers)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from backup.errors import KeyFileError
from backup.keys import (
    generate_private_key,
    key_id,
    load_private_key,
    load_public_key,
    private_key_pem,
    public_key_pem,
    read_private_key,
    read_public_key,
    rewrap_data_key,
    unwrap_data_key,
    wrap_data_key,
    write_key_pair,
)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    key = generate_private_key("rsa-oaep-sha256")
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def test_x25519_wrap_round_trip() -> None:
    private = X25519PrivateKey.generate()
    data_key = os.urandom(32)
    wrapped = wrap_data_key(data_key, private.public_key())
    assert wrapped.algorithm == "x25519"
    assert wrapped.key_id == key_id(private.public_key())
    assert unwrap_data_key(wrapped, private) == data_key
    # A fresh ephemeral key each time: wrapping twice never gives the same bytes.
    assert wrap_data_key(data_key, private.public_key()).ciphertext != wrapped.ciphertext


def test_rsa_wrap_round_trip(rsa_key: rsa.RSAPrivateKey) -> None:
    assert rsa_key.key_size == 3072
    data_key = os.urandom(32)
    wrapped = wrap_data_key(data_key, rsa_key.public_key())
    assert wrapped.algorithm == "rsa-oaep-sha256"
    assert unwrap_data_key(wrapped, rsa_key) == data_key


def test_wrong_private_key_is_refused() -> None:
    wrapped = wrap_data_key(os.urandom(32), X25519PrivateKey.generate().public_key())
    with pytest.raises(KeyFileError, match="wrong private key"):
        unwrap_data_key(wrapped, X25519PrivateKey.generate())


def test_tampered_wrapped_key_is_refused() -> None:
    private = X25519PrivateKey.generate()
    wrapped = wrap_data_key(os.urandom(32), private.public_key())
    forged = wrapped.model_copy(update={"nonce": wrapped.nonce and "A" * 16})
    with pytest.raises(KeyFileError, match="does not open"):
        unwrap_data_key(forged, private)


def test_rotation_rewraps_the_same_data_key(rsa_key: rsa.RSAPrivateKey) -> None:
    old = X25519PrivateKey.generate()
    data_key = os.urandom(32)
    wrapped = wrap_data_key(data_key, old.public_key())
    rotated = rewrap_data_key(wrapped, old, rsa_key.public_key())
    assert rotated.key_id == key_id(rsa_key.public_key())
    assert unwrap_data_key(rotated, rsa_key) == data_key
    with pytest.raises(KeyFileError):
        unwrap_data_key(rotated, old)


def test_key_files_mode_and_no_overwrite(tmp_path: Path) -> None:
    private = X25519PrivateKey.generate()
    kid = write_key_pair(private, tmp_path / "k.pem", tmp_path / "k.pub")
    assert kid == key_id(private.public_key())
    assert stat.S_IMODE((tmp_path / "k.pem").stat().st_mode) == 0o600
    assert key_id(read_public_key(tmp_path / "k.pub")) == kid
    assert key_id(read_private_key(tmp_path / "k.pem").public_key()) == kid
    before = (tmp_path / "k.pem").read_bytes()
    with pytest.raises(KeyFileError, match="already exists"):
        write_key_pair(X25519PrivateKey.generate(), tmp_path / "k.pem", tmp_path / "other.pub")
    assert (tmp_path / "k.pem").read_bytes() == before
    assert not (tmp_path / "other.pub").exists()


def test_passphrase_envelope() -> None:
    private = X25519PrivateKey.generate()
    pem = private_key_pem(private, b"correct horse", scrypt_log2_n=12)
    assert b"BEGIN MANAGED BACKUP ENCRYPTED PRIVATE KEY" in pem
    loaded = load_private_key(pem, b"correct horse")
    assert key_id(loaded.public_key()) == key_id(private.public_key())
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        load_private_key(pem, b"wrong")
    with pytest.raises(KeyFileError, match="passphrase-protected"):
        load_private_key(pem, None)
    with pytest.raises(KeyFileError, match="must not be empty"):
        private_key_pem(private, b"")


def test_passphrase_protected_rsa_key_default_cost(rsa_key: rsa.RSAPrivateKey) -> None:
    pem = private_key_pem(rsa_key, b"s3cret")
    assert isinstance(load_private_key(pem, b"s3cret"), rsa.RSAPrivateKey)


def test_malformed_key_files() -> None:
    with pytest.raises(KeyFileError, match="not a PEM public key"):
        load_public_key(b"hello")
    with pytest.raises(KeyFileError, match="not a PEM private key"):
        load_private_key(b"hello")
    small = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(KeyFileError, match="at least 3072"):
        load_public_key(public_key_pem(small.public_key()))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("log2_n", "r", "p"),
    [(30, 8, 1), (15, 255, 1), (15, 8, 255), (18, 32, 1), (9, 8, 1), (15, 0, 1)],
    ids=["huge-n", "huge-r", "huge-p", "memory", "tiny-n", "zero-r"],
)
def test_crafted_scrypt_parameters_are_refused(log2_n: int, r: int, p: int) -> None:
    from backup.keys import ENVELOPE_HEADER, ENVELOPE_MAGIC, ENVELOPE_PEM_LABEL, _pem_armor

    header = ENVELOPE_HEADER.pack(ENVELOPE_MAGIC, log2_n, r, p, bytes(16), bytes(12))
    pem = _pem_armor(ENVELOPE_PEM_LABEL, header + bytes(64))
    with pytest.raises(KeyFileError, match="scrypt") as caught:
        load_private_key(pem, b"pass")
    assert "\n" not in str(caught.value)
