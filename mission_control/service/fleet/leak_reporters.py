"""Who may report leaked credentials without a staff token: secret scanners that sign reports.

GitHub's secret scanning partner program (and any scanner that copies it) signs the raw body of
each report with ECDSA P-256 / SHA-256 and names its key in two headers:
``Github-Public-Key-Identifier`` and ``Github-Public-Key-Signature`` (base64 of the DER
signature). Its public keys are published at https://api.github.com/meta/public_keys/secret_scanning
as ``{"public_keys": [{"key_identifier": ..., "key": "-----BEGIN PUBLIC KEY-----...", ...}]}``;
Mission Control reads a copy of that document from the file `leak_reporter_keys_file` names, so
it never fetches keys at request time and an operator decides whom to trust.

Guarantees: a report is accepted only when its key identifier names a configured key and the
signature over the exact body verifies with it; otherwise `LeakReportRefused` (one line).
Why not trust anyone who holds the token: a forged report could then revoke any credential its
sender merely guessed the format of, and the revocation is not free for the cluster.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from mission_control.errors import InvalidCredential

KEY_ID_HEADER = "Github-Public-Key-Identifier"
SIGNATURE_HEADER = "Github-Public-Key-Signature"


class LeakReportRefused(InvalidCredential):
    """A report whose signature is missing, from an unknown key, or does not verify (401)."""

    code = "report_refused"
    http_status = 401


class ReporterKeysError(ValueError):
    """The keys file cannot be used; the message is one line."""


@dataclass(frozen=True)
class ReporterKeys:
    """The public keys of trusted reporters, by key identifier."""

    keys: Mapping[str, ec.EllipticCurvePublicKey] = field(default_factory=dict)

    def verify(self, body: bytes, key_id: str | None, signature: str | None) -> str:
        """The identifier of the key that signed `body`; `LeakReportRefused` otherwise."""
        if not key_id or not signature:
            raise LeakReportRefused(
                f"a leak report needs {KEY_ID_HEADER} and {SIGNATURE_HEADER}, or a staff token"
            )
        key = self.keys.get(key_id)
        if key is None:
            raise LeakReportRefused("the report is signed with a key this server does not trust")
        try:
            key.verify(base64.b64decode(signature, validate=True), body, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, binascii.Error, ValueError):
            raise LeakReportRefused("the report's signature does not verify") from None
        return key_id


def parse_reporter_keys(document: bytes) -> ReporterKeys:
    """Keys from a document in the format of GitHub's secret scanning keys endpoint."""
    try:
        entries = json.loads(document)["public_keys"]
        keys = {}
        for entry in entries:
            key = load_pem_public_key(str(entry["key"]).encode())
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise ReporterKeysError(f"key {entry['key_identifier']} is not an ECDSA key")
            keys[str(entry["key_identifier"])] = key
    except ReporterKeysError:
        raise
    except (ValueError, KeyError, TypeError, UnsupportedAlgorithm) as e:
        raise ReporterKeysError(f"not a public_keys document ({type(e).__name__}: {e})") from None
    return ReporterKeys(keys)


def load_reporter_keys(path: Path | None) -> ReporterKeys:
    """The keys in `path` (none configured: no reporter is trusted, staff tokens still are)."""
    if path is None:
        return ReporterKeys()
    try:
        document = path.read_bytes()
    except OSError as e:
        raise ReporterKeysError(f"{path}: {e.strerror}") from None
    try:
        return parse_reporter_keys(document)
    except ReporterKeysError as e:
        raise ReporterKeysError(f"{path}: {e}") from None
