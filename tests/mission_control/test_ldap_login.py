"""Staff sign-in through a real OpenLDAP directory (Debian's slapd, started by the test with its
own configuration directory, ports and certificate), on SQLite and PostgreSQL: a login over
StartTLS and over LDAPS whose token the API takes, a wrong password, a person in no mapped
group, a support role's second factor, a directory whose certificate is not trusted, and
settings that would send the password in clear."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from mc_api import Api, serving_api
from mc_kit import FakeClock
from mcs_staff import ADMIN, totp_code
from pydantic import ValidationError
from slapd_kit import DIRECTORY, GROUPS, PEOPLE, Directory, slapd
from sqlalchemy import select

from contract.certs import write_dev_ca
from contract.messages import StaffRole
from mission_control.db.schema import audit_log
from mission_control.service.accounts import users
from mission_control.service.accounts.ldap_login import ask_directory
from mission_control.staff.directory import LdapDirectory, role_for

ROLES = {"mc-admins": "admin", "mc-operators": "operator", "mc-support": "support-l2"}


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Directory]:
    with slapd(tmp_path_factory.mktemp("slapd")) as running_directory:
        yield running_directory


def settings_for(directory: Directory, **changes: Any) -> LdapDirectory:
    values: dict[str, Any] = {
        "url": directory.ldap_url,
        "start_tls": True,
        "ca_file": directory.tls.ca_cert,
        "user_dn": f"uid={{username}},{PEOPLE}",
        "group_base": GROUPS,
        "roles": ROLES,
        **changes,
    }
    return LdapDirectory.model_validate(values)


@pytest.fixture
async def api(migrated_url: str, clock: FakeClock, directory: Directory) -> AsyncIterator[Api]:
    async with serving_api(migrated_url, clock, ldap=settings_for(directory)) as served:
        yield served


async def login(api: Api, name: str, password: str | None = None, totp: str = "") -> Any:
    body = {"username": name, "password": password or DIRECTORY[name][0], "totp": totp}
    return await api.call("POST", "/api/v1/login/ldap", body)


async def test_a_directory_login_gives_a_token_the_api_takes(api: Api) -> None:
    status, reply = await login(api, "ada")
    assert status == 200, reply
    assert reply["user"] == "ada" and reply["role"] == "admin"
    status, clusters = await api.call("GET", "/api/v1/clusters", token=reply["token"])
    assert status == 200 and clusters == {"clusters": []}
    # Operators get the most powerful of their groups' roles, without a second factor.
    status, reply = await login(api, "olga")
    assert (status, reply.get("role")) == (200, "operator"), reply
    # The local account made for a directory person cannot log in locally.
    body = {"username": "ada", "password": DIRECTORY["ada"][0], "totp": "123456"}
    assert (await api.call("POST", "/api/v1/login", body))[0] == 401


async def test_refusals_are_one_line_and_audited(api: Api) -> None:
    for name, password in (("ada", "wrong"), ("nobody", None), ("ghost", "whatever")):
        status, reply = await login(api, name, password)
        assert (status, reply["error"]["code"]) == (401, "login_refused"), (name, reply)
        assert reply["error"]["message"] == "invalid username, password or code"
    async with api.admin.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(audit_log.c.subject, audit_log.c.detail).where(
                    audit_log.c.action == "staff.login.failed"
                )
            )
        ).all()
    reasons = {row.subject: row.detail for row in rows}
    assert "wrong password" in reasons["ada"] and "no group mapped" in reasons["nobody"]
    # A name with LDAP syntax in it is escaped, not interpreted.
    status, _ = await login(api, "ada,ou=people", DIRECTORY["ada"][0])
    assert status == 401


async def test_a_directory_person_never_enters_the_local_break_glass_admin(api: Api) -> None:
    # A local admin named like a directory person: the directory cannot sign in as it, nor
    # change its role (a directory name is not proof of owning the local account).
    await users.add_user(api.admin, "olga", StaffRole.ADMIN, "a long local password 2", by=ADMIN)
    status, reply = await login(api, "olga")
    assert (status, reply["error"]["code"]) == (401, "login_refused"), reply
    roles = {u.name: u.role for u in await users.list_users(api.admin)}
    assert roles["olga"] == StaffRole.ADMIN


async def test_support_roles_need_their_second_factor(api: Api, clock: FakeClock) -> None:
    # No TOTP enrolled yet: refused, even with the right directory password.
    assert (await login(api, "sam", totp="123456"))[0] == 401
    created = await users.add_user(
        api.admin, "sam", StaffRole.SUPPORT_L2, "a long local password 1", by=ADMIN
    )
    secret = created.totp_uri.split("secret=")[1].split("&")[0]
    assert (await login(api, "sam", totp="000000"))[0] == 401
    status, reply = await login(api, "sam", totp=totp_code(secret, clock.now))
    assert (status, reply.get("role")) == (200, "support-l2"), reply
    # The same code twice: refused.
    assert (await login(api, "sam", totp=totp_code(secret, clock.now)))[0] == 401


def test_ldaps_and_an_untrusted_certificate(directory: Directory, tmp_path: Path) -> None:
    over_ldaps = settings_for(directory, url=directory.ldaps_url, start_tls=False)
    answer = ask_directory(over_ldaps, "olga", DIRECTORY["olga"][0])
    assert set(answer.groups or ()) == {"mc-operators", "mc-support"}
    other_ca = write_dev_ca(tmp_path / "other", ["127.0.0.1"]).ca_cert
    for untrusted in (
        settings_for(directory, ca_file=other_ca),
        settings_for(directory, url=directory.ldaps_url, start_tls=False, ca_file=other_ca),
    ):
        answer = ask_directory(untrusted, "olga", DIRECTORY["olga"][0])
        assert answer.groups is None and "unavailable" in answer.reason, answer
    assert ask_directory(settings_for(directory), "olga", "").groups is None


def test_settings_never_send_a_password_in_clear(directory: Directory) -> None:
    with pytest.raises(ValidationError, match="in clear"):
        settings_for(directory, start_tls=False)
    with pytest.raises(ValidationError):
        settings_for(directory, user_dn="uid=fixed,ou=people")
    assert role_for(["mc-support", "mc-operators"], settings_for(directory).roles) == "operator"
    assert role_for(["coffee-club"], settings_for(directory).roles) is None


async def console_sign_in(api: Api, http: aiohttp.ClientSession, name: str) -> None:
    """Sign `name` in to the console through the directory, as the login page's form does."""
    async with http.get(api.url + "/console/login") as page:
        html = await page.text()
    assert 'value="ldap"' in html
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert token is not None
    form = {
        "csrf_token": token.group(1),
        "method": "ldap",
        "username": name,
        "password": DIRECTORY[name][0],
        "totp": "",
    }
    async with http.post(api.url + "/console/login", data=form, allow_redirects=False) as r:
        assert r.status == 303, await r.text()


async def test_the_console_login_page_offers_the_directory(api: Api) -> None:
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=api.url)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        await console_sign_in(api, http, "olga")
        async with http.get(api.url + "/console/") as home:
            assert home.status == 200 and "olga" in await home.text()


async def test_a_directory_person_makes_an_api_token_in_the_console(
    api: Api, clock: FakeClock
) -> None:
    """Signed in through the directory (no password Mission Control could take at the API's
    login), a person makes a personal `mct_` token with an expiry; the API takes it, as them,
    until it expires."""
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=api.url)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        await console_sign_in(api, http, "olga")
        async with http.get(api.url + "/console/tokens") as page:
            html = await page.text()
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', html)
        assert page.status == 200 and csrf is not None
        made = {"csrf_token": csrf.group(1), "days": "7"}
        async with http.post(api.url + "/console/tokens", data=made) as r:
            assert r.status == 200, await r.text()
            shown = re.search(r'id="new-token">(mct_[A-Za-z0-9]+)<', await r.text())
        assert shown is not None
        too_long = {"csrf_token": csrf.group(1), "days": "400"}
        async with http.post(api.url + "/console/tokens", data=too_long) as r:
            assert r.status == 400 and "days" in await r.text()
        async with http.post(api.url + "/console/tokens", data={"days": "7"}) as r:
            assert r.status == 403  # no CSRF token: nothing made
    token = shown.group(1)
    status, clusters = await api.call("GET", "/api/v1/clusters", token=token)
    assert status == 200 and clusters == {"clusters": []}
    forged = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    assert (await api.call("GET", "/api/v1/clusters", token=forged))[0] == 401
    async with api.admin.engine.connect() as conn:
        issued = (
            await conn.execute(
                select(audit_log.c.actor_name, audit_log.c.actor_via, audit_log.c.subject).where(
                    audit_log.c.action == "staff.token.issued"
                )
            )
        ).all()
    assert [tuple(row) for row in issued] == [("olga", "console", "olga")]
    clock.advance(days=7, seconds=1)
    assert (await api.call("GET", "/api/v1/clusters", token=token))[0] == 401
