"""Staff accounts: `users add`, login with password and TOTP (replay, throttle, races), tokens
owned by users, logout, and the legacy-token migration; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from alembic import command
from argon2 import PasswordHasher
from click.testing import CliRunner, Result
from mc_kit import FakeClock, make_settings, running
from mcs_staff import ADMIN, FAST_HASHER_ENV, PASSWORD, add_user, fast, totp_code
from mcs_support import Support
from mcs_support import support_fixture as support_fixture  # the fixture
from sqlalchemy import Connection, insert, select

from contract.audit.canonical import format_time
from contract.messages import StaffRole
from mission_control.app import create_app
from mission_control.cli import main
from mission_control.db.engine import create_engine
from mission_control.db.migrate import alembic_config, upgrade
from mission_control.db.schema import login_throttle, staff_tokens, users
from mission_control.errors import InvalidCredential, NotFound
from mission_control.service.accounts import audit_log, staff
from mission_control.service.accounts import login_throttle as login_throttle_store
from mission_control.service.accounts import users as user_store
from mission_control.service.context import ServiceContext

HOME, AWAY = "198.51.100.7", "203.0.113.9"


def run(*args: str, stdin: str | None = None) -> Result:
    runner = CliRunner(env=FAST_HASHER_ENV)
    return runner.invoke(main, list(args), input=stdin, catch_exceptions=False)


def one_line_error(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    return line


@pytest.fixture
def db(sqlite_url: str) -> str:
    return sqlite_url


def test_users_add_reads_stdin_and_prints_the_totp_uri(db: str) -> None:
    result = run(
        "users", "add", "alice", "--role", "support-l2", "--db", db, stdin=f"{PASSWORD}\n" * 2
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\n") == 1
    assert result.stdout.startswith("otpauth://totp/Mission%20Control:alice?secret=")
    listed = json.loads(run("users", "list", "--json", "--db", db).stdout)
    assert [(u["name"], u["role"], u["disabled"]) for u in listed] == [
        ("alice", "support-l2", False)
    ]
    again = run("users", "add", "alice", "--role", "admin", "--db", db, stdin=f"{PASSWORD}\n" * 2)
    assert "exists already" in one_line_error(again)


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ("Password2024!\nPassword2024!\n", "password too weak"),
        ("short\nshort\n", "at least 12 characters"),
        ("xx-alice-xx-99\nxx-alice-xx-99\n", "do not include the username"),
        (f"{PASSWORD}\n{PASSWORD}x\n", "differ"),
        (f"{PASSWORD}\n", "twice"),
    ],
    ids=["common-word", "short", "username", "mismatch", "once"],
)
def test_users_add_refuses_and_stores_nothing(db: str, stdin: str, message: str) -> None:
    result = run("users", "add", "alice", "--role", "support-l2", "--db", db, stdin=stdin)
    assert message in one_line_error(result)
    assert json.loads(run("users", "list", "--json", "--db", db).stdout) == []
    assert run("audit", "verify", "--db", db).stdout.startswith("ok: 0 entries")


def test_tokens_need_an_existing_user_and_take_its_role(db: str) -> None:
    assert "no staff user named 'ghost'" in one_line_error(
        run("tokens", "create", "--user", "ghost", "--db", db)
    )
    run("users", "add", "alice", "--role", "support-l2", "--db", db, stdin=f"{PASSWORD}\n" * 2)
    mismatch = run("tokens", "create", "--user", "alice", "--role", "admin", "--db", db)
    assert "has role support-l2, not admin" in one_line_error(mismatch)
    result = run("tokens", "create", "--user", "alice", "--db", db)
    assert result.exit_code == 0 and result.stdout.startswith("mct_")
    assert "support-l2" in result.stderr
    assert run("users", "disable", "alice", "--db", db).exit_code == 0
    assert "disabled" in one_line_error(run("tokens", "create", "--user", "alice", "--db", db))
    verified = run("audit", "verify", "--db", db)
    assert verified.exit_code == 0 and verified.stdout.startswith("ok: 3 entries")


async def login(
    support: Support, user: str, password: str, code: str
) -> tuple[int, dict[str, object]]:
    body = {"username": user, "password": password, "totp": code}
    return await support.call("POST", "/api/v1/login", body)


async def test_login_logout_and_wrong_factors(support: Support) -> None:
    secret = await add_user(support.ctx, "alice", "support-l2")
    now = support.clock.now
    status, reply = await login(support, "alice", PASSWORD + "x", totp_code(secret, now))
    assert (status, reply["error"]) == (
        401,
        {"code": "login_refused", "message": "invalid username, password or code"},
    )  # type: ignore[index]
    status, reply = await login(support, "alice", PASSWORD, totp_code(secret, now, steps_ahead=5))
    assert status == 401
    status, reply = await login(support, "nobody", PASSWORD, "123456")
    assert status == 401

    code = totp_code(secret, now)
    status, reply = await login(support, "alice", PASSWORD, code)
    assert status == 200, reply
    assert (reply["user"], reply["role"]) == ("alice", "support-l2")
    token = str(reply["token"])
    assert token.startswith("mct_") and str(reply["expires_at"]).startswith("2030-06-02T00:00:00")
    assert (await support.call("GET", "/api/v1/clusters", token=token))[0] == 200

    status, reply = await login(support, "alice", PASSWORD, code)  # the same code again
    assert status == 401
    audit = await support.ok(
        "GET", "/api/v1/audit?cluster=mission-control&actor=alice", token=token
    )
    reasons = [
        e["detail"].get("reason") for e in audit["entries"] if e["action"].startswith("staff.login")
    ]
    # The exact reason of a failure is stored, but only admins read it back.
    assert reasons == [
        "login refused",
        "password and TOTP accepted",
        "login refused",
        "login refused",
    ]
    assert (await support.ok("POST", "/api/v1/logout", token=token))["logged_out"] is True
    assert (await support.call("GET", "/api/v1/clusters", token=token))[0] == 401
    support.clock.advance(hours=13)
    status, reply = await login(support, "alice", PASSWORD, totp_code(secret, support.clock.now))
    assert status == 200
    support.clock.advance(hours=13)  # the session token expires
    assert (await support.call("GET", "/api/v1/clusters", token=str(reply["token"])))[0] == 401


async def test_repeated_failures_are_throttled(support: Support) -> None:
    secret = await add_user(support.ctx, "alice", "support-l3")
    for _ in range(4):  # three free failures; the fourth makes this address wait 1 s
        assert (await login(support, "alice", "wrong-password-1", "000000"))[0] == 401
    status, reply = await login(support, "alice", "wrong-password-1", "000000")
    assert status == 429 and "try again after 2030-06-01T12:00:01" in str(reply["error"])
    status, _ = await login(support, "alice", PASSWORD, totp_code(secret, support.clock.now))
    assert status == 429  # refused without checking, even with the right secrets
    support.clock.advance(seconds=2)
    status, _ = await login(support, "alice", PASSWORD, totp_code(secret, support.clock.now))
    assert status == 200


async def test_unknown_and_known_names_get_the_same_answers(support: Support) -> None:
    await add_user(support.ctx, "alice", "support-l2")
    answers: dict[str, list[tuple[int, object]]] = {}
    for name in ("alice", "mallory"):
        answers[name] = []
        for _ in range(6):
            status, reply = await login(support, name, "wrong-password-1", "000000")
            error = dict(reply["error"])  # type: ignore[call-overload]
            wait_end = format_time(support.clock.now + timedelta(seconds=1))
            error["message"] = error["message"].replace(wait_end, "<now + 1 s>")
            answers[name].append((status, error))
        support.clock.advance(hours=2)  # forgiven
    assert answers["alice"] == answers["mallory"]
    assert [status for status, _ in answers["alice"]] == [401, 401, 401, 401, 429, 429]


async def test_unknown_names_cost_what_known_ones_do(ctx: ServiceContext) -> None:
    """Medians of a few attempts each, with an argon2 cost that dominates the database work:
    an unknown name, a disabled account and a wrong password take comparable time."""
    hasher = PasswordHasher(time_cost=2, memory_cost=16 * 1024, parallelism=1)
    ctx = replace(ctx, support=replace(ctx.support, hasher=hasher))
    await user_store.add_user(ctx, "alice", StaffRole.SUPPORT_L2, PASSWORD, by=ADMIN)
    await user_store.add_user(ctx, "dora", StaffRole.SUPPORT_L2, PASSWORD, by=ADMIN)
    await user_store.disable_user(ctx, "dora", by=ADMIN)
    sources = (f"192.0.2.{n}" for n in range(1, 200))

    async def median(name: str) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            await staff.login(ctx, name, "wrong-password-1", "000000", source=next(sources))
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    await median("warm-up")  # the dummy hash is made once
    known, unknown, disabled = await median("alice"), await median("mallory"), await median("dora")
    for other in (unknown, disabled):
        assert known / 3 < other < known * 3, (known, unknown, disabled)


async def test_concurrent_logins_with_one_code_one_wins(
    ctx: ServiceContext, clock: FakeClock
) -> None:
    ctx = fast(ctx)
    secret = await add_user(ctx, "alice", "support-l2")
    code = totp_code(secret, clock.now)
    logins = (staff.login(ctx, "alice", PASSWORD, code, source=HOME) for _ in range(4))
    results = await asyncio.gather(*logins)
    assert sum(r.identity is not None for r in results) == 1
    failures = await asyncio.gather(
        *(staff.login(ctx, "alice", "nope-nope-nope", "111111", source=HOME) for _ in range(5))
    )
    assert all(r.identity is None for r in failures)
    code = totp_code(secret, clock.now, steps_ahead=1)
    throttled = await staff.login(ctx, "alice", PASSWORD, code, source=HOME)
    assert throttled.throttled and throttled.identity is None


async def test_concurrent_failures_cannot_outrun_the_throttle(
    ctx: ServiceContext, clock: FakeClock
) -> None:
    """Each attempt is counted before its secrets are checked: of 20 parallel wrong attempts
    from one address only 4 are evaluated (3 free, the fourth starts the wait), the rest are
    refused unchecked (both back ends), and audited once a minute for the address."""
    ctx = fast(ctx)
    secret = await add_user(ctx, "alice", "support-l2")
    code = totp_code(secret, clock.now)
    results = await asyncio.gather(
        *(staff.login(ctx, "alice", "wrong-password-1", code, source=AWAY) for _ in range(20))
    )
    assert all(r.identity is None for r in results)
    assert sum(r.throttled for r in results) == 16
    entries = await audit_log.list_entries(ctx, action="staff.login.failed")
    reasons = [e.detail["reason"] for e in entries]
    assert reasons.count("wrong password") == 4
    assert reasons.count("throttled after repeated failures") == 1
    code = totp_code(secret, clock.now, 1)
    throttled = await staff.login(ctx, "alice", PASSWORD, code, source=AWAY)
    assert throttled.throttled  # even the right secrets wait
    clock.advance(seconds=2)
    code = totp_code(secret, clock.now)
    accepted = await staff.login(ctx, "alice", PASSWORD, code, source=AWAY)
    assert accepted.identity is not None
    async with ctx.engine.connect() as conn:
        rows = (await conn.execute(select(login_throttle.c.username))).scalars().all()
    assert rows == [""]  # the success forgot (address, alice); the address keeps its count
    clock.advance(minutes=61)  # an hour without failures: the sweep forgets the address too
    assert await login_throttle_store.prune(ctx, clock.now) == 1


async def test_failures_from_one_address_do_not_stop_the_user_elsewhere(
    ctx: ServiceContext, clock: FakeClock
) -> None:
    ctx = fast(ctx)
    secret = await add_user(ctx, "alice", "support-l2")

    async def fail() -> None:
        assert (await staff.login(ctx, "alice", "wrong-1", "000000", source=AWAY)).identity is None

    for _ in range(3):  # free
        await fail()
    waits = []
    for _ in range(5):
        await fail()  # counted: this address now waits
        probe = await staff.login(ctx, "alice", PASSWORD, "000000", source=AWAY)
        assert probe.waits_until is not None
        waits.append(probe.waits_until - clock.now)
        # Meanwhile the real user logs in from elsewhere.
        code = totp_code(secret, clock.now)
        assert (await staff.login(ctx, "alice", PASSWORD, code, source=HOME)).identity
        clock.advance(seconds=31)  # past the wait, and a new TOTP step
    assert waits == [timedelta(seconds=s) for s in (1, 2, 4, 8, 16)]  # the waits grow
    # An IPv6 client is counted by its /64: a neighbouring address waits too.
    for _ in range(4):
        await staff.login(ctx, "bob", "wrong-password-1", "000000", source="2001:db8::1")
    assert (await staff.login(ctx, "bob", "x", "0", source="2001:db8::2")).throttled
    assert not (await staff.login(ctx, "bob", "x", "0", source="2001:db8:0:1::2")).throttled


async def test_bad_tokens_and_refused_requests_are_audited(support: Support) -> None:
    token = await support.staff("olga", "operator")
    admin = await support.staff("root", "admin")
    await support.cluster("acme")
    for filler in "xyz":  # made-up tokens from one address: one audit entry a minute
        status, _ = await support.call("GET", "/api/v1/access-requests", token="mct_" + filler * 43)
        assert status == 401
    await support.ok("POST", "/api/v1/logout", token=token)
    assert (await support.call("GET", "/api/v1/access-requests", token=token))[0] == 401
    body = {"cluster": "acme", "reason": "curious", "role": "viewer", "duration": "1h"}
    assert (await support.call("POST", "/api/v1/access-requests", body, admin))[0] == 403
    audit = await support.ok("GET", "/api/v1/audit?action=staff.token.refused", token=admin)
    assert [e["actor"]["name"] for e in audit["entries"]].count("unknown") == 1
    refused = {e["actor"]["name"]: e["detail"] for e in audit["entries"]}
    assert refused["unknown"]["reason"] == "unknown token"
    assert refused["unknown"]["remote"] == "127.0.0.1"
    assert len(refused["unknown"]["token_id"]) == 12 and refused["unknown"]["hint"] is None
    assert refused["olga"]["reason"] == "revoked token" and refused["olga"]["hint"]
    assert "x" * 20 not in json.dumps(audit)  # never the token itself
    audit = await support.ok("GET", "/api/v1/audit?action=support.request.refused", token=admin)
    (entry,) = audit["entries"]
    assert (entry["actor"]["name"], entry["detail"]["requested_cluster"]) == ("root", "acme")


def test_tokens_list_and_revoke(db: str) -> None:
    run("users", "add", "alice", "--role", "support-l2", "--db", db, stdin=f"{PASSWORD}\n" * 2)
    token = run("tokens", "create", "--user", "alice", "--db", db).stdout.strip()
    listed = json.loads(run("tokens", "list", "--json", "--db", db).stdout)
    (row,) = listed
    assert (row["user"], row["kind"], row["revoked_at"]) == ("alice", "api", None)
    assert token not in json.dumps(listed) and token.startswith(row["hint"].rstrip("…"))
    text = run("tokens", "list", "--user", "alice", "--db", db).stdout
    assert text.startswith("ID") and "alice" in text
    assert run("tokens", "list", "--user", "bob", "--json", "--db", db).stdout.strip() == "[]"
    revoked = run("tokens", "revoke", str(row["id"]), "--db", db)
    assert revoked.exit_code == 0 and "revoked" in revoked.stderr
    (row,) = json.loads(run("tokens", "list", "--json", "--db", db).stdout)
    assert row["revoked_at"] is not None
    assert "no staff token 99" in one_line_error(run("tokens", "revoke", "99", "--db", db))
    assert run("tokens", "revoke", "0", "--db", db).exit_code == 2
    verified = run("audit", "verify", "--db", db)
    assert verified.exit_code == 0 and verified.stdout.startswith("ok: 3 entries")


async def test_tokens_act_with_the_owners_current_state(ctx: ServiceContext) -> None:
    await add_user(ctx, "alice", "support-l2")
    issued = await staff.create_staff_token(ctx, "alice", by=ADMIN)
    assert (await staff.authenticate_staff(ctx, issued.token)).role == "support-l2"
    await user_store.disable_user(ctx, "alice", by=ADMIN)
    with pytest.raises(InvalidCredential):
        await staff.authenticate_staff(ctx, issued.token)
    with pytest.raises(NotFound):
        await staff.create_staff_token(ctx, "ghost", by=ADMIN)
    with pytest.raises(NotFound):
        await user_store.disable_user(ctx, "ghost", by=ADMIN)


def _to_0001(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "0001")


async def test_tokens_from_before_staff_accounts_keep_working(db_url: str) -> None:
    engine = create_engine(db_url)
    ctx = ServiceContext(engine=engine, clock=FakeClock())
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_to_0001)
            await conn.execute(
                insert(staff_tokens).values(
                    token_hash=__import__("hashlib").sha256(b"mcs.legacy-secret").hexdigest(),
                    user_name="ops",
                    role="operator",
                    created_at=datetime(2030, 1, 1, tzinfo=UTC),
                )
            )
        await upgrade(engine)
        who = await staff.authenticate_staff(ctx, "mcs.legacy-secret")
        assert (who.user, who.role) == ("ops", "operator")
        async with engine.connect() as conn:
            stored = (await conn.execute(select(users.c.password_hash))).scalar_one()
        assert stored == "!"  # this account cannot log in until recreated
        assert (await staff.login(ctx, "ops", "!", "000000", source=HOME)).identity is None
    finally:
        await engine.dispose()


def test_audit_verify_finds_an_edited_row(db: str, tmp_path: Path) -> None:
    for name in ("alice", "bob", "carol"):
        run("users", "add", name, "--role", "support-l2", "--db", db, stdin=f"{PASSWORD}\n" * 2)
    ok = run("audit", "verify", "--db", db)
    assert ok.exit_code == 0 and ok.stdout.startswith(
        "ok: 3 entries; signed checkpoints cover up to entry 1"
    )
    import sqlite3

    path = db.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        conn.execute("""UPDATE audit_log SET detail = '{"role":"admin"}' WHERE seq = 2""")
    assert one_line_error(run("audit", "verify", "--db", db)) == (
        "Error: entry 2 altered: content does not match its hash"
    )
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM audit_log WHERE seq = 2")
    assert "entry 2 removed" in one_line_error(run("audit", "verify", "--db", db))


async def test_behind_a_trusted_proxy_the_forwarded_client_is_throttled(
    sqlite_url: str, clock: FakeClock
) -> None:
    """Over HTTP: a burst of failures from one client behind the proxy makes that client wait,
    while the account's owner, behind the same proxy, logs in; X-Forwarded-For from a peer
    that is not a trusted proxy is ignored (else anyone could pick the address counted)."""
    engine = create_engine(sqlite_url)
    ctx = fast(ServiceContext(engine=engine, clock=clock))
    cheap = {"password_time_cost": 1, "password_memory_kib": 1024, "password_parallelism": 1}
    try:
        secret = await add_user(ctx, "alice", "support-l2")

        async def attempt(url: str, forwarded: str, password: str, code: str) -> int:
            body = {"username": "alice", "password": password, "totp": code}
            headers = {"X-Forwarded-For": forwarded}
            async with (
                aiohttp.ClientSession() as http,
                http.post(url + "/api/v1/login", json=body, headers=headers) as reply,
            ):
                return reply.status

        proxied = make_settings(sqlite_url, trusted_proxies=("127.0.0.1",), **cheap)
        async with running(create_app(proxied, clock=clock)) as url:
            for _ in range(4):
                assert await attempt(url, f"10.9.9.9, {AWAY}", "wrong-1", "000000") == 401
            assert await attempt(url, AWAY, "wrong-1", "000000") == 429
            assert await attempt(url, HOME, PASSWORD, totp_code(secret, clock.now)) == 200
        clock.advance(hours=2)
        async with running(create_app(make_settings(sqlite_url, **cheap), clock=clock)) as url:
            for n in range(4):  # each claims another address: all count for 127.0.0.1
                assert await attempt(url, f"192.0.2.{n}", "wrong-1", "000000") == 401
            assert await attempt(url, "192.0.2.99", "wrong-1", "000000") == 429
    finally:
        await engine.dispose()
