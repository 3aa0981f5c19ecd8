"""Customer key pairs and data-key wrapping.

Guarantees:
- A key pair is X25519 or RSA-3072; only the public half is ever given to the cluster. Each
  backup part's random 256-bit data key is wrapped with the public key, so a node can write a
  part but cannot unwrap the key afterwards.
- X25519 wrapping is ECIES-style: a fresh ephemeral X25519 key, HKDF-SHA256 over the shared
  secret, AES-256-GCM over the data key. RSA wrapping is RSA-OAEP with SHA-256 (MGF1-SHA256).
- A key id is the SHA-256 of the public key's DER SubjectPublicKeyInfo, in hex.
- A private key file is PKCS#8 PEM, or, with a passphrase, this project's scrypt + AES-256-GCM
  envelope (cryptography's PKCS#8 encryption offers PBKDF2 only). Files are written 0600 and
  never overwrite an existing file.
- Rotation (`rewrap_data_key`) changes only the wrapping; the data key and ciphertext stay.
The byte-level formats are in docs/backup-format.md.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidKey, InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from pydantic import BaseModel, ConfigDict

from backup.atomic import write_atomically
from backup.errors import KeyFileError

KeyAlgorithm = Literal["x25519", "rsa-oaep-sha256"]
RecipientPublicKey = X25519PublicKey | rsa.RSAPublicKey
RecipientPrivateKey = X25519PrivateKey | rsa.RSAPrivateKey
RandomBytes = Callable[[int], bytes]

DATA_KEY_BYTES = 32
RSA_BITS = 3072
ENVELOPE_PEM_LABEL = "MANAGED BACKUP ENCRYPTED PRIVATE KEY"
ENVELOPE_MAGIC = b"MBKEY1\x00\x00"
ENVELOPE_HEADER = struct.Struct(">8sBBB16s12s")  # magic, log2(n), r, p, salt, nonce
DEFAULT_SCRYPT_LOG2_N = 15
SCRYPT_R = 8
SCRYPT_P = 1
# What a reader accepts from a key file (a crafted file must not exhaust memory or CPU):
# scrypt needs 128 * r * N bytes and about N * r * p block operations; the writer's defaults
# use 32 MiB and 2^18. The bounds allow 8x the memory and 16x the work of the defaults.
SCRYPT_LOG2_N_RANGE = (10, 22)
SCRYPT_R_MAX = 32
SCRYPT_P_MAX = 16
SCRYPT_MAX_MEMORY = 256 * 1024 * 1024
SCRYPT_MAX_WORK = 2**22
X25519_WRAP_INFO = b"managed-backup/v1 x25519 data-key wrap"
WRAP_AAD_PREFIX = b"managed-backup/v1 data-key:"


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise KeyFileError(f"{what} is not valid base64") from exc


class WrappedKey(BaseModel):
    """A data key encrypted to one recipient public key (see docs/backup-format.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    algorithm: KeyAlgorithm
    key_id: str
    ephemeral_public: str | None = None  # X25519 only: raw 32-byte ephemeral public key, base64
    nonce: str | None = None  # X25519 only: 12-byte AES-GCM nonce, base64
    ciphertext: str  # base64


def generate_private_key(algorithm: KeyAlgorithm) -> RecipientPrivateKey:
    """A new customer key pair of the given algorithm."""
    if algorithm == "x25519":
        return X25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)


def algorithm_of(key: RecipientPublicKey) -> KeyAlgorithm:
    return "x25519" if isinstance(key, X25519PublicKey) else "rsa-oaep-sha256"


def key_id(public: RecipientPublicKey) -> str:
    """SHA-256 fingerprint (hex) of the public key's DER SubjectPublicKeyInfo."""
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def public_key_pem(public: RecipientPublicKey) -> bytes:
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key(pem: bytes) -> RecipientPublicKey:
    """Parse a PEM public key; only X25519 and RSA (>= 3072 bits) keys are accepted."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFileError("not a PEM public key") from exc
    if isinstance(key, X25519PublicKey):
        return key
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < RSA_BITS:
            raise KeyFileError(f"RSA public key has {key.key_size} bits; at least {RSA_BITS}")
        return key
    raise KeyFileError("public key must be X25519 or RSA")


def private_key_pem(
    private: RecipientPrivateKey,
    passphrase: bytes | None = None,
    *,
    scrypt_log2_n: int = DEFAULT_SCRYPT_LOG2_N,
    rng: RandomBytes = os.urandom,
) -> bytes:
    """PEM for `private`: plain PKCS#8, or the scrypt envelope when a passphrase is given."""
    der = private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    if passphrase is None:
        return private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    if not passphrase:
        raise KeyFileError("the passphrase must not be empty")
    check_scrypt_cost(scrypt_log2_n, SCRYPT_R, SCRYPT_P)  # never write what we would refuse
    salt, nonce = rng(16), rng(12)
    header = ENVELOPE_HEADER.pack(ENVELOPE_MAGIC, scrypt_log2_n, SCRYPT_R, SCRYPT_P, salt, nonce)
    kek = _scrypt(passphrase, salt, scrypt_log2_n, SCRYPT_R, SCRYPT_P)
    body = header + AESGCM(kek).encrypt(nonce, der, header)
    return _pem_armor(ENVELOPE_PEM_LABEL, body)


def load_private_key(pem: bytes, passphrase: bytes | None = None) -> RecipientPrivateKey:
    """Parse a private key file written by `private_key_pem`.

    Raises KeyFileError on a malformed file, a missing passphrase or a wrong one.
    """
    if f"-----BEGIN {ENVELOPE_PEM_LABEL}-----".encode() in pem:
        if passphrase is None:
            raise KeyFileError("the private key is passphrase-protected; give its passphrase")
        der = _open_envelope(_pem_dearmor(ENVELOPE_PEM_LABEL, pem), passphrase)
        try:
            key = serialization.load_der_private_key(der, password=None)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise KeyFileError("the protected private key is malformed") from exc
    else:
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except TypeError as exc:
            raise KeyFileError("PEM-encrypted private keys are not supported here") from exc
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise KeyFileError("not a PEM private key") from exc
    if isinstance(key, X25519PrivateKey | rsa.RSAPrivateKey):
        return key
    raise KeyFileError("private key must be X25519 or RSA")


def write_key_pair(
    private: RecipientPrivateKey,
    private_path: Path,
    public_path: Path,
    passphrase: bytes | None = None,
) -> str:
    """Write the private key (mode 0600) and public key files; return the key id.

    Refuses (KeyFileError) if either file already exists, and then writes neither.
    """
    for path in (private_path, public_path):
        if path.exists():
            raise KeyFileError(f"{path} already exists; not overwriting a key file")
    try:
        write_atomically(
            private_path, private_key_pem(private, passphrase), mode=0o600, overwrite=False
        )
        write_atomically(
            public_path, public_key_pem(private.public_key()), mode=0o644, overwrite=False
        )
    except FileExistsError as exc:
        raise KeyFileError(f"{exc.filename} already exists; not overwriting a key file") from exc
    except OSError as exc:
        raise KeyFileError(f"cannot write key file: {exc.strerror}: {exc.filename}") from exc
    return key_id(private.public_key())


def read_private_key(path: Path, passphrase: bytes | None = None) -> RecipientPrivateKey:
    return load_private_key(_read(path), passphrase)


def read_public_key(path: Path) -> RecipientPublicKey:
    return load_public_key(_read(path))


def wrap_data_key(
    data_key: bytes, public: RecipientPublicKey, rng: RandomBytes = os.urandom
) -> WrappedKey:
    """Encrypt `data_key` so that only the holder of the matching private key can read it."""
    kid = key_id(public)
    if isinstance(public, X25519PublicKey):
        ephemeral = X25519PrivateKey.from_private_bytes(rng(32))
        ephemeral_raw = ephemeral.public_key().public_bytes_raw()
        kek = _x25519_kek(ephemeral.exchange(public), ephemeral_raw, public.public_bytes_raw())
        nonce = rng(12)
        sealed = AESGCM(kek).encrypt(nonce, data_key, WRAP_AAD_PREFIX + kid.encode())
        return WrappedKey(
            algorithm="x25519",
            key_id=kid,
            ephemeral_public=b64encode(ephemeral_raw),
            nonce=b64encode(nonce),
            ciphertext=b64encode(sealed),
        )
    sealed = public.encrypt(data_key, _oaep())
    return WrappedKey(algorithm="rsa-oaep-sha256", key_id=kid, ciphertext=b64encode(sealed))


def unwrap_data_key(wrapped: WrappedKey, private: RecipientPrivateKey) -> bytes:
    """Recover the data key; KeyFileError if `private` is not the key it was wrapped for."""
    kid = key_id(private.public_key())
    if wrapped.key_id != kid:
        raise KeyFileError(
            f"wrong private key: data key is wrapped for key {wrapped.key_id[:16]}, "
            f"this key is {kid[:16]}"
        )
    sealed = b64decode(wrapped.ciphertext, "wrapped key")
    try:
        if isinstance(private, X25519PrivateKey):
            if wrapped.ephemeral_public is None or wrapped.nonce is None:
                raise KeyFileError("X25519-wrapped key lacks its ephemeral key or nonce")
            ephemeral_raw = b64decode(wrapped.ephemeral_public, "ephemeral key")
            ephemeral = X25519PublicKey.from_public_bytes(ephemeral_raw)
            kek = _x25519_kek(
                private.exchange(ephemeral), ephemeral_raw, private.public_key().public_bytes_raw()
            )
            nonce = b64decode(wrapped.nonce, "nonce")
            data_key = AESGCM(kek).decrypt(nonce, sealed, WRAP_AAD_PREFIX + kid.encode())
        else:
            data_key = private.decrypt(sealed, _oaep())
    except (InvalidTag, ValueError) as exc:
        raise KeyFileError("the wrapped data key does not open with this private key") from exc
    if len(data_key) != DATA_KEY_BYTES:
        raise KeyFileError("the wrapped data key has the wrong length")
    return data_key


def rewrap_data_key(
    wrapped: WrappedKey,
    old_private: RecipientPrivateKey,
    new_public: RecipientPublicKey,
    rng: RandomBytes = os.urandom,
) -> WrappedKey:
    """Key rotation: the same data key, wrapped for `new_public` instead."""
    return wrap_data_key(unwrap_data_key(wrapped, old_private), new_public, rng)


def _x25519_kek(shared: bytes, ephemeral_raw: bytes, recipient_raw: bytes) -> bytes:
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=ephemeral_raw + recipient_raw,
        info=X25519_WRAP_INFO,
    )
    return hkdf.derive(shared)


def _oaep() -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def _scrypt(passphrase: bytes, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    try:
        return Scrypt(salt=salt, length=32, n=2**log2_n, r=r, p=p).derive(passphrase)
    except (InvalidKey, ValueError, MemoryError) as exc:
        raise KeyFileError("the key file's scrypt parameters are unusable") from exc


def check_scrypt_cost(log2_n: int, r: int, p: int) -> None:
    """Refuse scrypt parameters beyond the documented bounds (KeyFileError, one line)."""
    low, high = SCRYPT_LOG2_N_RANGE
    n = 2**log2_n
    if (
        not low <= log2_n <= high
        or not 1 <= r <= SCRYPT_R_MAX
        or not 1 <= p <= SCRYPT_P_MAX
        or 128 * r * n > SCRYPT_MAX_MEMORY
        or n * r * p > SCRYPT_MAX_WORK
    ):
        raise KeyFileError(
            f"the key file asks for scrypt N=2^{log2_n}, r={r}, p={p}, beyond what this "
            "program accepts (at most 256 MiB and 2^22 work); it was not made by managed"
        )


def _open_envelope(body: bytes, passphrase: bytes) -> bytes:
    if len(body) < ENVELOPE_HEADER.size + 16:
        raise KeyFileError("the protected private key is truncated")
    header = body[: ENVELOPE_HEADER.size]
    magic, log2_n, r, p, salt, nonce = ENVELOPE_HEADER.unpack(header)
    if magic != ENVELOPE_MAGIC:
        raise KeyFileError("unknown protected private key format")
    check_scrypt_cost(log2_n, r, p)
    kek = _scrypt(passphrase, salt, log2_n, r, p)
    try:
        return AESGCM(kek).decrypt(nonce, body[ENVELOPE_HEADER.size :], header)
    except InvalidTag as exc:
        raise KeyFileError("wrong passphrase for the private key") from exc


def _pem_armor(label: str, body: bytes) -> bytes:
    text = base64.b64encode(body).decode("ascii")
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    return "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----", ""]).encode()


def _pem_dearmor(label: str, pem: bytes) -> bytes:
    begin, end = f"-----BEGIN {label}-----".encode(), f"-----END {label}-----".encode()
    start, stop = pem.find(begin), pem.find(end)
    if start < 0 or stop < start:
        raise KeyFileError("malformed PEM armour")
    body = b"".join(pem[start + len(begin) : stop].split())
    return b64decode(body.decode("ascii", "replace"), "PEM body")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from exc
