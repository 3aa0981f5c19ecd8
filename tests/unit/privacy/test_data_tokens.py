"""Data tokens: stored tokens (shape, checksum, digest) and the leader's internal read tokens
(signed with a key derived from the cluster credential, expiring, never stored)."""

from __future__ import annotations

from cluster.data.tokens import (
    INTERNAL_TTL,
    internal_key,
    mint_internal,
    new_token,
    parse_token,
    verify,
    verify_internal,
)


def test_a_token_is_checked_by_shape_checksum_scope_and_digest() -> None:
    text, record = new_token("ingest", "prod", None, 1.0)
    parsed = parse_token(text)
    assert parsed is not None and verify(parsed, record)
    assert text.startswith("mgdi_") and record.digest not in text
    assert parse_token(text[:-1] + ("0" if text[-1] != "0" else "1")) is None  # checksum
    other, other_record = new_token("read", None, "alice", 1.0)
    other_parsed = parse_token(other)
    assert other_parsed is not None
    assert not verify(other_parsed, record) and not verify(parsed, other_record)
    assert parse_token("mgdi_not-a-token") is None


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
