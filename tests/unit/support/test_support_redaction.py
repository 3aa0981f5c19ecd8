"""Redaction of secrets in logs, config and command results."""

from __future__ import annotations

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from contract.support.redaction import MARK, is_secret_key, redact, redact_config

CASES = [
    ("password=hunter2 user=bob", "password=[REDACTED] user=bob"),
    ('{"password": "s3cr3t!", "host": "db"}', '{"password": "[REDACTED]", "host": "db"}'),
    ("Authorization: Bearer abcdefghijklmnop", "Authorization: [REDACTED]"),
    ("curl -H 'Authorization: Basic dXNlcjpwYXNz' x", "curl -H 'Authorization: [REDACTED]' x"),
    ("proxy-authorization: Negotiate YIIabc", "proxy-authorization: [REDACTED]"),
    ("sent bearer eyJhbGciOi.eyJzdWIi.sig header", "sent bearer [REDACTED] header"),
    ("GET /api?token=abc123&x=1", "GET /api?token=[REDACTED]&x=1"),
    ("postgres://admin:pa55word@db:5432/x", "postgres://admin:[REDACTED]@db:5432/x"),
    ("key AKIAIOSFODNN7EXAMPLE used", "key [REDACTED] used"),
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPx", "aws_secret_access_key = [REDACTED]"),
    (
        "Credential=AKIAIOSFODNN7EXAMPLE/20250301/eu-west-1/s3/aws4_request, Signature=0abc",
        "Credential=[REDACTED]/20250301/eu-west-1/s3/aws4_request, Signature=[REDACTED]",
    ),
    ("credential=abc;next", "credential=[REDACTED];next"),
    (
        "a\n-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAA\n-----END RSA PRIVATE KEY-----\nb",
        "a\n[REDACTED PEM BLOCK]\nb",
    ),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn cut off", "[REDACTED PEM BLOCK]"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2ln", "jwt [REDACTED]"),
    (
        "api_key: 'xyz' secretKey:xyz2 X-Api-Key: zz",
        "api_key: '[REDACTED]' secretKey:[REDACTED] X-Api-Key: [REDACTED]",
    ),
    ("gh token ghp_abcdefghijklmnopqrstuvwxyz0123456789", "gh token [REDACTED]"),
    ("staff mct_Zm9vYmFyYmF6cXV4cXV1eDEyMzQ1Ng", "staff [REDACTED]"),
    (
        "DB_PASSWORD=x1 session_id=77 cookie: a=b",
        "DB_PASSWORD=[REDACTED] session_id=[REDACTED] cookie: [REDACTED]",
    ),
]

CASES += [
    ("passphrase: two words here", "passphrase: [REDACTED]"),
    ("passphrase: two words\nnext: line", "passphrase: [REDACTED]\nnext: line"),
    ("managed --zk-auth admin:s3cret support mode", "managed --zk-auth [REDACTED] support mode"),
    ("run --password hunter2 --verbose", "run --password [REDACTED] --verbose"),
    ("password hunter2", "password [REDACTED]"),
    ("login with Passwd  hunter2, then", "login with Passwd  [REDACTED], then"),
]

HARMLESS = [
    "wrong password for alice",
    "invalid username, password or code",
    "password changed by olga",
    "at 12:30: node n1 joined",
    "author=alice passage=3 tokens_used=5 session_timeout=30s",
    "GET https://example.com:8443/path?page=2 200 12ms",
    "node n1 joined; quorum 2/3; leader n2 epoch=7",
    "",
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_secrets_are_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("text", HARMLESS)
def test_ordinary_text_is_kept(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize("text", [c[0] for c in CASES] + HARMLESS)
def test_redaction_is_idempotent(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


SECRET = st.text(
    alphabet="abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789", min_size=8, max_size=40
)


@given(
    secret=SECRET,
    key=st.sampled_from(["password", "db.password", "API_KEY", "clientSecret", "token", "passwd"]),
    sep=st.sampled_from(["=", ": ", " = ", '": "', "='"]),
    before=st.sampled_from(["", "level=info ", '{"', "x "]),
)
@example(secret="PassWoRD", key="password", sep="=", before="")  # a value that is a secret word
@example(secret="pwd", key="token", sep=" = ", before="")
def test_secret_values_never_survive(secret: str, key: str, sep: str, before: str) -> None:
    assume(secret not in f"{before}{key}{sep}{MARK}")
    close = sep[-1] if sep[-1] in "\"'" else ""
    out = redact(f"{before}{key}{sep}{secret}{close} trailing")
    assert secret not in out
    if sep != ": ":  # an unquoted `key: value` hides the rest of the line on purpose
        assert out.endswith(" trailing")
    unterminated = redact(f"{before}{key}{sep}{secret}")
    assert secret not in unterminated


@given(
    secret=SECRET.filter(lambda s: any(c.isdigit() for c in s)),  # not an ordinary word
    form=st.sampled_from(
        [
            "passphrase: {s} more words",
            "--zk-auth {s}",
            "--zk-auth=admin:{s}",
            "--password {s} --next",
            "password {s}",
            "PWD {s}",
        ]
    ),
    before=st.sampled_from(["", "cmd ", "level=info "]),
)
def test_spaced_and_flag_secrets_never_survive(secret: str, form: str, before: str) -> None:
    assume(secret.lower() not in {"password", "passphrase", "next", "more", "words"})
    text = before + form.format(s=secret)
    out = redact(text)
    assert secret not in out
    assert redact(out) == out


@given(st.text(max_size=200))
def test_redact_never_fails_and_is_idempotent(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


def test_redact_config_masks_secret_keys_at_any_depth() -> None:
    config = {
        "mission_control": {"url": "https://mc.example", "credential": "c-123"},
        "backup": {
            "targets": [
                {
                    "url": "s3://bucket",
                    "secret_access_key": "abc",
                    "access_key_id": "AKIAIOSFODNN7EXAMPLE",
                },
                {"url": "file:///mnt/nfs"},
            ],
            "encryption": {"public_key": "age1xyz", "private_key": None},
        },
        "support": {"mode": "approval"},
        "smtp": {"url": "smtp://mailer:hunter2@mail:25"},
        "password": "",
    }
    assert redact_config(config) == {
        "mission_control": {"url": "https://mc.example", "credential": MARK},
        "backup": {
            "targets": [
                {"url": "s3://bucket", "secret_access_key": MARK, "access_key_id": MARK},
                {"url": "file:///mnt/nfs"},
            ],
            "encryption": {"public_key": "age1xyz", "private_key": None},
        },
        "support": {"mode": "approval"},
        "smtp": {"url": f"smtp://mailer:{MARK}@mail:25"},
        "password": "",
    }
    assert config["mission_control"]["credential"] == "c-123"  # type: ignore[index]


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("password", True),
        ("smtp.password", True),
        ("dbPassword", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("x-api-key", True),
        ("privateKey", True),
        ("auth", True),
        ("author", False),
        ("passage", False),
        ("tokens_used", False),
        ("session_timeout", False),
        ("public_key", False),
        ("mission_control.url", False),
    ],
)
def test_is_secret_key(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret
