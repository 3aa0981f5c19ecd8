"""Sessions: expiry rules (pure, on an injected clock), the store on both back ends, CSRF
tokens and the post-login redirect."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from staff_store import add_account

from mission_control.console import csrf
from mission_control.console.guard import safe_next
from mission_control.db.engine import create_engine
from mission_control.db.schema import console_sessions, users
from mission_control.service.accounts.audit_log import cli_actor
from mission_control.service.accounts.bearer import digest
from mission_control.service.accounts.console_sessions import (
    ConsoleSession,
    SessionPolicy,
    Verdict,
    close_session,
    find_session,
    needs_touch,
    open_session,
    prune_sessions,
    touch,
    verdict,
)
from mission_control.service.accounts.users import disable_user
from mission_control.service.context import ServiceContext
from mission_control.staff.identity import StaffIdentity

T0 = datetime(2030, 6, 1, 9, 0, tzinfo=UTC)
PASSWORD = "Amber-Lighthouse-31"
POLICY = SessionPolicy(
    idle_timeout=timedelta(minutes=30),
    max_age=timedelta(hours=12),
    touch_interval=timedelta(minutes=1),
)


def session(created: datetime = T0, seen: datetime = T0) -> ConsoleSession:
    return ConsoleSession("h", "ann", "operator", created, seen, "tok")


def test_a_disabled_account_ends_the_session_whatever_its_age() -> None:
    s = ConsoleSession("h", "ann", "operator", T0, T0, "tok", account_enabled=False)
    assert verdict(s, T0, POLICY) is Verdict.DISABLED


def test_idle_expiry_is_exact_at_the_boundary() -> None:
    s = session()
    assert verdict(s, T0 + timedelta(minutes=30), POLICY) is Verdict.ACTIVE
    assert verdict(s, T0 + timedelta(minutes=30, seconds=1), POLICY) is Verdict.IDLE


def test_an_active_session_still_ends_at_its_maximum_age() -> None:
    busy = session(seen=T0 + timedelta(hours=12, minutes=1))
    assert verdict(busy, T0 + timedelta(hours=12, minutes=1), POLICY) is Verdict.TOO_OLD


def test_last_seen_is_written_at_most_once_per_interval() -> None:
    s = session()
    assert not needs_touch(s, T0 + timedelta(seconds=59), POLICY)
    assert needs_touch(s, T0 + timedelta(minutes=1), POLICY)


def test_csrf_tokens_compare_and_empty_never_matches() -> None:
    token = csrf.new_token()
    assert len(token) >= 43 and token != csrf.new_token()
    assert csrf.tokens_match(token, token)
    assert not csrf.tokens_match(token, token + "x")
    assert not csrf.tokens_match("", "")
    assert not csrf.tokens_match(None, token)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/console/clusters/x?y=1", "/console/clusters/x?y=1"),
        ("https://evil.example/", "/console/"),
        ("//evil.example/console/", "/console/"),
        ("/console//evil.example", "/console/"),
        ("/console/\\evil", "/console/"),
        ("/api/v1/clusters", "/console/"),
        (None, "/console/"),
    ],
)
def test_after_login_only_console_paths(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


async def test_store_keeps_only_a_digest_and_forgets_on_logout(any_db: str) -> None:
    engine = create_engine(any_db)
    try:
        await add_account(engine, "ann", "support-l3", PASSWORD)
        cookie, opened = await open_session(engine, StaffIdentity("ann", "support-l3"), T0)
        async with engine.connect() as conn:
            stored = (await conn.execute(select(console_sessions))).one()
        assert stored.id_hash == digest(cookie) and cookie not in tuple(map(str, stored))
        found = await find_session(engine, cookie)
        assert found == opened and found.identity == StaffIdentity("ann", "support-l3")
        assert found.created_at == T0 and found.csrf_token == opened.csrf_token
        assert await find_session(engine, cookie + "x") is None
        assert await find_session(engine, "") is None
        await touch(engine, opened, T0 + timedelta(minutes=5))
        touched = await find_session(engine, cookie)
        assert touched is not None and touched.last_seen_at == T0 + timedelta(minutes=5)
        async with engine.begin() as conn:
            await close_session(conn, opened)
        assert await find_session(engine, cookie) is None
    finally:
        await engine.dispose()


async def test_a_session_follows_its_account(any_db: str) -> None:
    engine = create_engine(any_db)
    try:
        await add_account(engine, "ann", "support-l2", PASSWORD)
        cookie, _ = await open_session(engine, StaffIdentity("ann", "support-l2"), T0)
        async with engine.begin() as conn:  # promoted: the next request acts as operator
            await conn.execute(update(users).where(users.c.name == "ann").values(role="operator"))
        promoted = await find_session(engine, cookie)
        assert promoted is not None and promoted.role == "operator"
        assert verdict(promoted, T0, POLICY) is Verdict.ACTIVE
        await disable_user(ServiceContext(engine=engine), "ann", by=cli_actor("root"))
        disabled = await find_session(engine, cookie)
        assert disabled is not None and not disabled.account_enabled
        assert verdict(disabled, T0, POLICY) is Verdict.DISABLED
        # A session whose account does not exist (any more) is no better.
        ghost, _ = await open_session(engine, StaffIdentity("ghost", "admin"), T0)
        found = await find_session(engine, ghost)
        assert found is not None and verdict(found, T0, POLICY) is Verdict.DISABLED
    finally:
        await engine.dispose()


async def test_prune_removes_only_unusable_sessions(any_db: str) -> None:
    engine = create_engine(any_db)
    try:
        for name in ("a", "b"):
            await add_account(engine, name, "operator", PASSWORD)
        idle_cookie, _ = await open_session(engine, StaffIdentity("a", "operator"), T0)
        live_cookie, live = await open_session(engine, StaffIdentity("b", "operator"), T0)
        await touch(engine, live, T0 + timedelta(minutes=29))
        removed = await prune_sessions(engine, T0 + timedelta(minutes=31), POLICY)
        assert removed == 1
        assert await find_session(engine, idle_cookie) is None
        assert await find_session(engine, live_cookie) is not None
    finally:
        await engine.dispose()
