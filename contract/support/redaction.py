"""Redaction of secrets from anything a support engineer can read (logs, config, replies).

Guarantees, for the patterns below: the secret value is replaced by `[REDACTED]` (or a labelled
marker) and the surrounding text is kept so the output stays useful; `redact` is idempotent.

Covered: PEM blocks (also a block cut off by the end of the text), `Authorization:` headers,
`Bearer`/`Basic` credentials, URL user-info passwords, JWTs, AWS access key ids, well-known token
formats (GitHub, Slack, our own ``mcc_``/``mct_``/``mce_``/``mcr_`` credentials and their
older dotted forms), and `key=value` / `key: value` / `"key": "value"` pairs whose key names a
secret (`is_secret_key`: password, pass, pwd, passphrase, secret, token, credential(s), auth,
authorization, cookie, signature, and phrases such as api key, access key, private key, session
id, client secret, encryption key). An unquoted
`key: value` hides the rest of the line (`passphrase: two words here`); command-line flags hide
their argument (`--zk-auth admin:s3cret`, `--password hunter2`); a bare `password hunter2` hides
the next word unless it is an ordinary word (`wrong password for alice` is kept).

Not covered: secrets with no recognisable shape or key (a bare random string in free text). This
is a second line of defence; commands must not read secrets in the first place.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MARK = "[REDACTED]"

# A key names a secret when one of its word parts (split on punctuation and camelCase) is a
# secret word, two consecutive parts form a secret phrase, or a glued part ends in a strong word.
_SECRET_PARTS = frozenset(
    {
        "password", "passwd", "passphrase", "pass", "pwd", "secret", "secrets", "token",
        "credential", "credentials", "auth", "authorization", "cookie", "signature",
        "apikey", "privatekey", "accesskey", "secretkey", "sessionid",
    }
)  # fmt: skip
_SECRET_PHRASES = frozenset(
    {
        ("api", "key"), ("private", "key"), ("access", "key"), ("secret", "key"),
        ("session", "id"), ("encryption", "key"), ("signing", "key"), ("ssh", "key"),
        ("master", "key"), ("data", "key"), ("client", "secret"),
    }
)  # fmt: skip
_STRONG_SUFFIXES = ("password", "passwd", "passphrase", "secret", "token", "apikey", "credentials")
_WORD_PARTS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
# Words that follow "password" in prose rather than being one (`password reset for bob`).
_PROSE = frozenset(
    {
        "a", "accepted", "an", "and", "as", "at", "by", "change", "changed", "check", "checks",
        "expired", "field", "for", "from", "hash", "in", "invalid", "is", "missing", "must", "not",
        "of", "ok", "on", "or", "policy", "prompt", "refused", "rejected", "required", "reset",
        "rule", "set", "should", "the", "to", "too", "updated", "was", "were", "will", "with",
        "wrong",
    }
)  # fmt: skip

_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----.*?(?:-----END \1-----|\Z)", re.S),
        "[REDACTED PEM BLOCK]",
    ),
    (
        # `key: value words` (YAML, log lines): the rest of the line, up to a quote.
        re.compile(
            r"(?m)(?P<key>[A-Za-z0-9_.-]+)(?P<sep>[ \t]*:[ \t]+)"
            r"(?P<value>(?![\"'\[])[^\r\n'\"]*[^\s'\"])"
        ),
        "",
    ),
    (
        # `--flag value` on a command line (`--zk-auth admin:s3cret`).
        re.compile(
            r"(?P<key>(?<![\w-])--[A-Za-z][A-Za-z0-9-]*)(?P<sep>[ \t]+)"
            r"(?P<value>(?!\[REDACTED\])(?![-=:])[^\s'\"]+)"
        ),
        "",
    ),
    (
        # `password hunter2`: a bare secret word and the word after it; not a word that is
        # itself a value (`password=Password next`: only the value is secret).
        re.compile(
            r"(?i)(?<![=:'\"])(?<![=:] )"
            r"(?P<key>\b(?:password|passwd|passphrase|pwd))(?P<sep>[ \t]+)"
            r"(?P<value>(?!\[REDACTED\])(?![=:])[^\s,;'\"]+)"
        ),
        "",
    ),
    (
        re.compile(
            r"(?i)\b((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)"
            r"(?:(?:bearer|basic|digest|negotiate|token)\s+)?(?!\[REDACTED\])[^\s\"',;]+"
        ),
        rf"\1{MARK}",
    ),
    (
        re.compile(r"(?i)\b(bearer|basic)(\s+)(?!\[REDACTED\])[A-Za-z0-9._~+/=-]{8,}"),
        rf"\1\2{MARK}",
    ),
    (
        re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s/:@]+:)(?!\[REDACTED\]@)[^\s/@]+@"),
        rf"\1{MARK}@",
    ),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), MARK),
    (re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b"), MARK),
    (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|xox[abprs]-[A-Za-z0-9-]{10,})"), MARK),
    # Ours: `contract.credentials` (mcc_, mct_, mce_, mcr_) and the older dotted forms.
    (re.compile(r"\bmc[tcer]_[A-Za-z0-9_-]{16,}|\bmc[ces]\.[A-Za-z0-9_.-]{16,}"), MARK),
    (
        re.compile(
            r"""(?x)
            (?P<key>[A-Za-z0-9_.-]+)                    # a key; `is_secret_key` decides
            (?P<sep>["']?\s*[:=]\s*)                    # = or : (JSON quotes allowed)
            (?P<value>\[REDACTED\]|"(?:[^"\\]|\\.)*"|'[^']*'|["']?[^\s,;&"'<>()\[\]{}]+)
            """
        ),
        "",
    ),
)


def _pair(match: re.Match[str]) -> str:
    value = match.group("value")
    if value in (MARK, f'"{MARK}"', f"'{MARK}'") or not is_secret_key(match.group("key")):
        return match.group(0)
    bare = not match.group("sep").strip() and not match.group("key").startswith("-")
    if bare and value.lower() in _PROSE:
        return match.group(0)
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{match.group('key')}{match.group('sep')}{quote}{MARK}{quote}"


def redact(text: str) -> str:
    """Return `text` with every covered secret replaced (see the module docstring)."""
    for pattern, replacement in _RULES:
        text = pattern.sub(_pair if replacement == "" else replacement, text)
    return text


def is_secret_key(key: str) -> bool:
    """True when a config key (dotted path or single name) names a secret."""
    parts = [part.lower() for part in _WORD_PARTS.findall(key)]
    if any(part in _SECRET_PARTS or part.endswith(_STRONG_SUFFIXES) for part in parts):
        return True
    return any(pair in _SECRET_PHRASES for pair in zip(parts, parts[1:], strict=False))


def redact_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of `config` with secret keys' values replaced and secrets in strings redacted."""
    return {key: _redact_value(key, value) for key, value in config.items()}


def _redact_value(key: str, value: Any) -> Any:
    if is_secret_key(key) and value not in (None, ""):
        return MARK
    if isinstance(value, Mapping):
        return redact_config(value)
    if isinstance(value, list | tuple):
        return [_redact_value("", item) for item in value]
    if isinstance(value, str):
        return redact(value)
    return value
