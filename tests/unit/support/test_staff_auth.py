"""Staff authentication: roles, password rule and hashing, TOTP replay, throttle, tokens, login."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from pydantic import ValidationError

from contract.credentials import CredentialKind, kind_of
from mission_control.staff.auth import REFUSED, LoginOutcome, StaffAccount, login
from mission_control.staff.passwords import (
    WeakPassword,
    check_password_strength,
    hash_password,
    needs_rehash,
    password_problems,
    verify_password,
)
from mission_control.staff.roles import (
    StaffRole,
    UnknownRole,
    can_manage_staff,
    can_request_access,
    parse_role,
)
from mission_control.staff.throttle import (
    AttemptRecord,
    Backoff,
    ThrottlePolicy,
    client_address,
    record_failure,
    source_key,
)
from mission_control.staff.tokens import (
    PREFIX,
    issue_token,
    looks_like_token,
    token_digest,
    token_matches,
)
from mission_control.staff.totp import (
    code_at_step,
    new_totp_secret,
    provisioning_uri,
    time_step,
    verify_totp,
)
from mission_control.staff_protocol import DirectoryLoginRequest, LoginRequest

T0 = datetime(2025, 3, 1, 12, 0, 10, tzinfo=UTC)
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
GOOD_PASSWORD = "correct horse battery 9"

# --- roles -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "may_request"),
    [
        ("support-l2", True),
        ("support-l3", True),
        ("operator", False),
        ("admin", False),
        ("x", False),
    ],
)
def test_only_support_engineers_request_access(role: str, may_request: bool) -> None:
    assert can_request_access(role) is may_request


def test_role_parsing_and_admin_rights() -> None:
    assert parse_role(" Support-L3 ") is StaffRole.SUPPORT_L3
    with pytest.raises(UnknownRole, match="use one of support-l2, support-l3, operator, admin"):
        parse_role("root")
    assert can_manage_staff("admin") and not can_manage_staff("operator")
    assert not can_manage_staff("nope")


# --- passwords -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("Short1!", "at least 12 characters"),
        ("alllowercaseletters", "mix at least two"),
        ("aaaaaaaaaaa1", "at least 6 different characters"),
        ("Password2024!", "common word"),
        ("Qwerty123456", "common word"),
        ("my-name-is-erik-42", "username"),
        ("x" * 1025 + "Y1", "at most 1024"),
    ],
)
def test_weak_passwords_are_refused(password: str, problem: str) -> None:
    with pytest.raises(WeakPassword) as err:
        check_password_strength(password, username="erik")
    assert problem in str(err.value) and "\n" not in str(err.value)


def test_all_problems_are_listed_at_once() -> None:
    assert len(password_problems("aaaa")) == 3


@pytest.mark.parametrize("password", [GOOD_PASSWORD, "Tr0ub4dor&3xyz", "ünïcödé-pässwörd-7"])
def test_strong_passwords_pass(password: str) -> None:
    check_password_strength(password, username="erik")


def test_hash_and_verify(cheap_hasher: PasswordHasher) -> None:
    stored = hash_password(GOOD_PASSWORD, "erik", hasher=cheap_hasher)
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, GOOD_PASSWORD, hasher=cheap_hasher)
    assert not verify_password(stored, GOOD_PASSWORD + "x", hasher=cheap_hasher)
    assert not verify_password("not a hash", GOOD_PASSWORD, hasher=cheap_hasher)
    assert not needs_rehash(stored, hasher=cheap_hasher)
    assert needs_rehash(stored, hasher=PasswordHasher(time_cost=2, memory_cost=64, parallelism=1))
    with pytest.raises(WeakPassword):
        hash_password("weak", hasher=cheap_hasher)


# --- TOTP ------------------------------------------------------------------------------------


def test_current_code_is_accepted_once() -> None:
    step = time_step(T0)
    code = code_at_step(SECRET, step)
    first = verify_totp(SECRET, code, None, T0)
    assert first.accepted and first.step == step
    again = verify_totp(SECRET, code, first.step, T0 + timedelta(seconds=5))
    assert not again.accepted and again.reason == "code already used"


def test_older_step_than_last_accepted_is_refused() -> None:
    step = time_step(T0)
    previous = code_at_step(SECRET, step - 1)
    # The next window's code was used already: an older, still-in-drift code must not work.
    result = verify_totp(SECRET, previous, step + 1, T0)
    assert not result.accepted and result.reason == "code already used"


def test_one_step_of_drift_is_tolerated() -> None:
    step = time_step(T0)
    assert verify_totp(SECRET, code_at_step(SECRET, step - 1), None, T0).step == step - 1
    assert verify_totp(SECRET, code_at_step(SECRET, step + 1), None, T0).step == step + 1
    too_old = verify_totp(SECRET, code_at_step(SECRET, step - 3), None, T0)
    assert not too_old.accepted and too_old.reason == "wrong or expired code"


def test_matches_rfc6238_reference_vector() -> None:
    # RFC 6238 appendix B, SHA-1, T=59s: 94287082 (8 digits); the 6-digit form is its tail.
    rfc_secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # base32 of "12345678901234567890"
    assert code_at_step(rfc_secret, 59 // 30) == "287082"


@pytest.mark.parametrize("code", ["", "12345", "1234567", "12a456"])
def test_malformed_codes(code: str) -> None:
    assert verify_totp(SECRET, code, None, T0).reason == "a code has 6 digits"


def test_spaces_in_code_are_ignored_and_bad_secret_is_reported() -> None:
    code = code_at_step(SECRET, time_step(T0))
    assert verify_totp(SECRET, f"{code[:3]} {code[3:]}", None, T0).accepted
    assert (
        verify_totp("not base32!", "123456", None, T0).reason
        == "the stored TOTP secret is unreadable"
    )


def test_enrolment_helpers() -> None:
    secret = new_totp_secret()
    assert len(secret) == 32 and secret != new_totp_secret()
    uri = provisioning_uri(secret, "erik")
    assert uri.startswith("otpauth://totp/") and "secret=" + secret in uri


# --- throttle --------------------------------------------------------------------------------

BACKOFF = Backoff(3, timedelta(seconds=1), timedelta(seconds=10), timedelta(hours=1))


def fail(record: AttemptRecord, now: datetime, times: int = 1) -> AttemptRecord:
    for _ in range(times):
        record = record_failure(record, BACKOFF, now)
    return record


def test_free_failures_then_waits_that_double_up_to_the_cap() -> None:
    record = fail(AttemptRecord(), T0, 3)
    assert not record.blocked(T0) and record.failures == 3
    now, waits = T0, []
    for _ in range(6):
        record = fail(record, now)
        assert record.blocked_until is not None and record.blocked(now)
        waits.append(record.blocked_until - now)
        now = record.blocked_until
    assert waits == [timedelta(seconds=s) for s in (1, 2, 4, 8, 10, 10)]


def test_attempts_while_waiting_are_not_counted() -> None:
    record = fail(AttemptRecord(), T0, 4)
    assert fail(record, T0 + timedelta(milliseconds=500), 10) == record


def test_quiet_time_forgives() -> None:
    record = fail(AttemptRecord(), T0, 5)
    later = T0 + timedelta(hours=2)
    assert record.current(BACKOFF, later) == AttemptRecord()
    assert fail(record, later).failures == 1


def test_backoff_validation() -> None:
    with pytest.raises(ValueError):
        Backoff(-1, timedelta(seconds=1), timedelta(seconds=2))
    with pytest.raises(ValueError):
        Backoff(3, timedelta(seconds=2), timedelta(seconds=1))
    assert BACKOFF.delay_after(100) == BACKOFF.max_delay
    policy = ThrottlePolicy()
    assert policy.per_source.free_failures > policy.per_name.free_failures  # looser


@pytest.mark.parametrize(
    ("remote", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("fe80::1%eth0", "fe80::/64"),
        (None, "unknown"),
        ("not an address", "not an address"),
    ],
)
def test_sources_are_addresses_or_ipv6_prefixes(remote: str | None, key: str) -> None:
    assert source_key(remote) == key


def test_forwarded_for_is_believed_only_from_a_trusted_proxy() -> None:
    proxies = ("10.0.0.2",)
    assert client_address("10.0.0.2", "198.51.100.1, 203.0.113.5", proxies) == "203.0.113.5"
    assert client_address("10.0.0.2", "198.51.100.1, 10.0.0.2", proxies) == "198.51.100.1"
    assert client_address("10.0.0.2", None, proxies) == "10.0.0.2"
    assert client_address("203.0.113.9", "198.51.100.1", proxies) == "203.0.113.9"


# --- tokens ----------------------------------------------------------------------------------


def test_tokens_are_prefixed_random_and_stored_hashed() -> None:
    issued = issue_token("erik", T0, label="nightly report")
    assert issued.plaintext.startswith(PREFIX) and looks_like_token(issued.plaintext)
    assert issued.record.digest == token_digest(issued.plaintext)
    assert issued.plaintext not in repr(issued.record)
    assert token_matches(issued.plaintext, issued.record)
    assert not token_matches(issued.plaintext + "x", issued.record)
    assert issue_token("erik", T0).plaintext != issued.plaintext
    fixed = issue_token("erik", T0, random="A" * 30)
    assert fixed.plaintext.startswith(PREFIX + "A" * 30) and fixed.record.hint == "mct_AAAA…"
    assert kind_of(fixed.plaintext) is CredentialKind.STAFF_TOKEN
    with pytest.raises(ValueError):
        issue_token(" ", T0)


# --- login -----------------------------------------------------------------------------------


@pytest.fixture
def account(cheap_hasher: PasswordHasher) -> StaffAccount:
    return StaffAccount(
        username="erik",
        role=StaffRole.SUPPORT_L2,
        password_hash=cheap_hasher.hash(GOOD_PASSWORD),
        totp_secret=SECRET,
    )


def attempt(
    account: StaffAccount | None,
    hasher: PasswordHasher,
    *,
    password: str = GOOD_PASSWORD,
    code: str | None = None,
    now: datetime = T0,
) -> LoginOutcome:
    code = code if code is not None else code_at_step(SECRET, time_step(now))
    return login(account, "erik", password, code, now, hasher=hasher)


def test_successful_login_records_step_and_audit(
    account: StaffAccount, cheap_hasher: PasswordHasher
) -> None:
    outcome = attempt(account, cheap_hasher)
    assert outcome.accepted and outcome.message == "welcome"
    assert outcome.account is not None and outcome.account.last_totp_step == time_step(T0)
    assert outcome.event.action == "staff.login" and outcome.event.actor.name == "erik"
    # The same code cannot be used for a second login.
    replay = attempt(outcome.account, cheap_hasher, now=T0 + timedelta(seconds=3))
    assert not replay.accepted and replay.reason == "TOTP refused: code already used"


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"password": "wrong password 123"}, "wrong password"),
        ({"code": "000000"}, "TOTP refused: wrong or expired code"),
    ],
)
def test_failures_are_generic_to_the_user_and_exact_in_the_log(
    account: StaffAccount, cheap_hasher: PasswordHasher, kwargs: dict[str, str], reason: str
) -> None:
    outcome = attempt(account, cheap_hasher, **kwargs)  # type: ignore[arg-type]
    assert not outcome.accepted and outcome.message == REFUSED
    assert outcome.reason == reason
    assert outcome.event.action == "staff.login.failed" and outcome.event.detail["reason"] == reason


def test_unknown_and_disabled_users(account: StaffAccount, cheap_hasher: PasswordHasher) -> None:
    unknown = attempt(None, cheap_hasher)
    assert not unknown.accepted and unknown.message == REFUSED and unknown.account is None
    assert unknown.event.detail["known_user"] is False
    disabled = attempt(replace(account, disabled=True), cheap_hasher)
    assert not disabled.accepted and disabled.reason == "account disabled"


def test_unusable_hashes_and_disabled_accounts_are_refused_like_unknown_names(
    account: StaffAccount, cheap_hasher: PasswordHasher
) -> None:
    legacy = attempt(replace(account, password_hash="!"), cheap_hasher, password="!")
    assert not legacy.accepted and legacy.message == REFUSED and legacy.reason == "wrong password"
    dummy = "not-a-real-account-password"  # the dummy hash's own password opens nothing
    assert not attempt(None, cheap_hasher, password=dummy).accepted
    disabled = attempt(replace(account, disabled=True), cheap_hasher)
    assert disabled.message == REFUSED


def test_weak_stored_hash_is_upgraded_on_login(
    account: StaffAccount, cheap_hasher: PasswordHasher
) -> None:
    stronger = PasswordHasher(time_cost=2, memory_cost=64, parallelism=1)
    outcome = login(
        account, "erik", GOOD_PASSWORD, code_at_step(SECRET, time_step(T0)), T0, hasher=stronger
    )
    assert outcome.accepted and outcome.account is not None
    assert outcome.account.password_hash != account.password_hash
    assert not needs_rehash(outcome.account.password_hash, hasher=stronger)


@pytest.mark.parametrize("username", [" ", "\t", "\x1c", "\u3000"])
def test_a_blank_username_is_refused_as_invalid(username: str) -> None:
    """The audit log names who tried to log in: a username of white space only is refused by
    validation (422), not passed on to fail when the attempt is audited (it was a 500)."""
    for model in (LoginRequest, DirectoryLoginRequest):
        with pytest.raises(ValidationError):
            model(username=username, password="pw", totp="123456")
    assert LoginRequest(username=" ops ", password="pw", totp="1").username == " ops "
