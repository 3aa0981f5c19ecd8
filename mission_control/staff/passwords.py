"""Staff passwords: a strength rule and argon2id hashing (argon2-cffi's `PasswordHasher`).

Strength rule (all must hold; every failure is listed in one line):
- 12 to 1024 characters;
- at least two character classes among lower case, upper case, digits, others (space, symbols);
- at least 6 different characters;
- does not contain the username (when it has 3 or more characters);
- its letters are not just a common word (`password`, `qwerty`, `welcome`, `support`...), so
  `Password2024!` is refused.

Hashes are PHC strings (`$argon2id$v=19$...`); parameters travel with the hash, so raising them
later only needs `needs_rehash` at the next successful login.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 12
MAX_LENGTH = 1024
MIN_DISTINCT = 6
_COMMON_WORDS = frozenset(
    {
        "password", "passw", "passwd", "qwerty", "qwertyuiop", "azerty", "letmein", "welcome",
        "admin", "administrator", "changeme", "iloveyou", "monkey", "dragon", "secret",
        "support", "football", "baseball", "trustno", "abc", "abcdef", "test", "login",
    }
)  # fmt: skip
DEFAULT_HASHER = PasswordHasher()


class WeakPassword(ValueError):
    """The password fails the strength rule; the message lists every reason."""


def _classes(password: str) -> int:
    found = set()
    for char in password:
        if char.isdigit():
            found.add("digit")
        elif char.isalpha() and char.isupper():
            found.add("upper")
        elif char.isalpha():
            found.add("lower")
        else:
            found.add("other")
    return len(found)


def password_problems(password: str, username: str | None = None) -> list[str]:
    """Every way `password` fails the strength rule (empty list: it is acceptable)."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"use at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        problems.append(f"use at most {MAX_LENGTH} characters")
    if _classes(password) < 2:
        problems.append("mix at least two of: lower case, upper case, digits, symbols")
    if len(set(password)) < MIN_DISTINCT:
        problems.append(f"use at least {MIN_DISTINCT} different characters")
    if username and len(username) >= 3 and username.lower() in password.lower():
        problems.append("do not include the username")
    letters = "".join(c for c in password.lower() if c.isalpha())
    if letters in _COMMON_WORDS:
        problems.append("do not build it on a common word")
    return problems


def check_password_strength(password: str, username: str | None = None) -> None:
    """Raise `WeakPassword` (one line naming every problem) unless the rule holds."""
    problems = password_problems(password, username)
    if problems:
        raise WeakPassword("password too weak: " + "; ".join(problems))


def hash_password(
    password: str, username: str | None = None, *, hasher: PasswordHasher = DEFAULT_HASHER
) -> str:
    """Check strength, then return the argon2id hash to store."""
    check_password_strength(password, username)
    return hasher.hash(password)


def verify_password(
    stored_hash: str, password: str, *, hasher: PasswordHasher = DEFAULT_HASHER
) -> bool:
    """True when `password` matches; False for a mismatch or an unreadable hash (never raises)."""
    try:
        return hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str, *, hasher: PasswordHasher = DEFAULT_HASHER) -> bool:
    """True when the hash was made with weaker parameters than `hasher` uses now."""
    try:
        return hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True
