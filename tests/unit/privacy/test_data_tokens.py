"""Data tokens: stored tokens (shape, checksum, digest) and the leader's internal read tokens
(signed with a key derived from the cluster credential, expiring, never stored)."""

from __future__ import annotations

import binascii
import hashlib

from cluster.data.tokens import (
    INTERNAL_TTL,
    ParsedToken,
    TokenRecord,
    internal_key,
    mint_internal,
    new_token,
    parse_token,
    verify,
    verify_internal,
)
from contract.credentials import CredentialKind, issue, kind_of


def test_a_token_is_checked_by_shape_checksum_scope_and_digest() -> None:
    text, record = new_token("ingest", "prod", None, 1.0)
    parsed = parse_token(text)
    assert parsed is not None and verify(parsed, record)
    assert text.startswith("mci_") and record.digest not in text
    assert kind_of(text) is CredentialKind.DATA_INGEST  # the secret scanner finds it
    assert parse_token(text[:-1] + ("0" if text[-1] != "0" else "1")) is None  # checksum
    other, other_record = new_token("read", None, "alice", 1.0)
    other_parsed = parse_token(other)
    assert other_parsed is not None
    assert not verify(other_parsed, record) and not verify(parsed, other_record)
    assert parse_token("mgdi_not-a-token") is None
    assert other.startswith("mcd_") and kind_of(other) is CredentialKind.DATA_READ
    # A credential of another kind is no data token, however valid.
    assert parse_token(issue(CredentialKind.STAFF_TOKEN)) is None


def test_tokens_of_the_earlier_form_keep_working_until_revoked() -> None:
    secret = "A" * 43
    body = f"mgdr_0123456789ab_{secret}"
    old = f"{body}_{binascii.crc32(body.encode()):08x}"
    parsed = parse_token(old)
    assert parsed == ParsedToken("read", "0123456789ab", secret)
    record = TokenRecord(
        "0123456789ab", "read", None, "alice", hashlib.sha256(secret.encode()).hexdigest(), 1.0
    )
    assert verify(parsed, record)
    assert parse_token(old[:-1] + ("0" if old[-1] != "0" else "1")) is None


def test_internal_tokens_need_the_clusters_credential_and_expire() -> None:
    key = internal_key("operators:secret")
    token = mint_internal(key, "support:erik", False, 100.0)
    record = verify_internal(token, key, 101.0)
    assert record is not None and record.operator == "support:erik" and not record.sensitive
    assert verify_internal(token, key, 100.0 + INTERNAL_TTL) is None  # expired
    assert verify_internal(token, internal_key("operators:other"), 101.0) is None
    assert verify_internal(token, None, 101.0) is None  # a node without the credential
    sensitive = mint_internal(key, "support:erik", True, 100.0)
    body, mac = sensitive[len("mgds_") :].split(".")
    plain_body = token[len("mgds_") :].split(".")[0]
    assert verify_internal(f"mgds_{plain_body}.{mac}", key, 101.0) is None  # spliced
    granted = verify_internal(sensitive, key, 101.0)
    assert granted is not None and granted.sensitive
    del body
