"""Staff sign-in through a real SAML 2.0 identity provider (pysaml2's `Server`, in its own
process over TLS, signing with a key the test made), driven by a real HTTP client following
the redirect to the provider and posting its form back, as a browser does, and once in real
Chromium across two sites (the provider's POST back is cross-site, as in production): a signed
assertion lands the person in the console with their group's role; an unsigned one, an altered
one and a person in no mapped group are refused with one line and no session; a support role
types the built-in TOTP unless the settings trust the assertion's AuthnContextClassRef."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from mcs_staff import ADMIN, totp_code
from playwright.async_api import async_playwright
from pydantic import ValidationError
from saml_kit import MFA, PASSWORD, IdentityProvider, saml_idp
from sso_site import Site, audit_of, serving_site

from contract.messages import StaffRole
from mission_control.service.accounts import users
from mission_control.staff.saml import SamlProvider

ROLES = {"mc-admins": "admin", "mc-support": "support-l2"}
ENTITY_ID = "https://mission-control.test/saml"


def person(uid: str, groups: list[str], context: str = PASSWORD) -> dict[str, Any]:
    return {"attributes": {"uid": [uid], "groups": groups}, "authn_context": context}


PEOPLE = {
    "ada": person("ada", ["mc-admins", "coffee-club"]),
    "nobody": person("nobody", ["coffee-club"]),
    "sam": person("sam", ["mc-support"], MFA),
    "sue": person("sue", ["mc-support"]),
}


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdentityProvider]:
    with saml_idp(tmp_path_factory.mktemp("saml"), PEOPLE) as running_idp:
        yield running_idp


@pytest.fixture
async def site(
    sqlite_url: str, idp: IdentityProvider, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Site]:
    changes = getattr(request, "param", {})
    saml = SamlProvider.model_validate(
        {"idp_metadata_file": idp.metadata, "entity_id": ENTITY_ID, "roles": ROLES, **changes}
    )
    async with serving_site(sqlite_url, tmp_path / "mc-tls", saml=saml) as served:
        yield served


@dataclass(frozen=True)
class Answer:
    status: int
    page: str
    set_cookies: str


def hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found is not None, page
    return html.unescape(found.group(1))


class Browser:
    """What a browser does between Mission Control and the provider, over real HTTP."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def provider_answer(
        self, user: str, sign: str = "1", sha1: bool = False
    ) -> tuple[str, dict[str, str]]:
        """Start at the console's SAML link; the provider's form to post to the console."""
        no_verify = {"ssl": False}  # the test's own client; pysaml2 checks the assertion
        url = self.site.url + "/console/login/saml?next=/console/alerts"
        async with self.http.get(url, allow_redirects=False, **no_verify) as r:
            assert r.status == 303, await r.text()
            sso = r.headers["Location"]
        assert "SAMLRequest=" in sso
        async with self.http.get(sso, **no_verify) as r:
            assert r.status == 200, await r.text()
            login = await r.text()
        form = {"SAMLRequest": hidden(login, "SAMLRequest"), "user": user}
        form |= {"sign": sign, "sha1": "1" if sha1 else "0"}
        async with self.http.post(sso.split("?")[0] + "/login", data=form, **no_verify) as r:
            assert r.status == 200, await r.text()
            posting = await r.text()
        action = re.search(r'action="([^"]+)"', posting)
        assert action is not None, posting
        fields = {"SAMLResponse": hidden(posting, "SAMLResponse")}
        return html.unescape(action.group(1)), fields

    async def post(self, url: str, fields: dict[str, str]) -> Answer:
        async with self.http.post(url, data=fields, ssl=False, allow_redirects=False) as r:
            return Answer(r.status, await r.text(), " ".join(r.headers.getall("Set-Cookie", [])))

    async def sign_in(self, user: str, sign: str = "1", sha1: bool = False) -> Answer:
        action, fields = await self.provider_answer(user, sign, sha1)
        return await self.post(action, fields)

    async def console(self) -> tuple[int, str]:
        url = self.site.url + "/console/"
        async with self.http.get(url, ssl=False, allow_redirects=False) as r:
            return r.status, await r.text()

    async def close(self) -> None:
        await self.http.close()


@pytest.fixture
async def browser(site: Site) -> AsyncIterator[Browser]:
    b = Browser(site)
    try:
        yield b
    finally:
        await b.close()


def assert_refused(answer: Answer, why: str) -> None:
    assert answer.status == 401, answer.page
    alerts = re.findall(r'role="alert">([^<]*)<', answer.page)
    assert len(alerts) == 1 and why in alerts[0], alerts
    assert "mc_session=" not in answer.set_cookies.replace("mc_session=;", ""), answer.set_cookies


async def test_a_signed_assertion_lands_the_person_in_the_console(
    site: Site, browser: Browser
) -> None:
    async with browser.http.get(site.url + "/console/login", ssl=False) as r:
        assert "Sign in with Company single sign-on (SAML)" in await r.text()
    action, fields = await browser.provider_answer("ada")
    answer = await browser.post(action, fields)
    assert answer.status == 200 and "Signed in" in answer.page, answer.page
    assert 'url=/console/alerts"' in answer.page  # where the person was going
    status, page = await browser.console()
    assert status == 200
    assert re.search(r'class="user">\s*ada', page) and re.search(r'class="role">\s*admin', page)
    # The same response again (a replay) finds no sign-in under way: refused.
    assert_refused(await browser.post(action, fields), "no sign-in is under way")
    (entry,) = [e.detail for e in await audit_of(site, "ada") if e.action == "staff.login"]
    assert entry["method"] == "saml" and entry["role"] == "admin"
    assert entry["issuer"].endswith("/metadata") and entry["name_id"] == "ada"


@pytest.mark.parametrize("signed", ["0", "response"], ids=["nothing", "response-only"])
async def test_an_unsigned_assertion_is_refused(site: Site, browser: Browser, signed: str) -> None:
    assert_refused(await browser.sign_in("ada", sign=signed), "signature is missing")
    assert (await browser.console())[0] == 303
    assert await audit_of(site, "ada") == []


async def test_a_staff_member_signs_in_in_chromium(site: Site) -> None:
    # The console at localhost, the provider at 127.0.0.1: two sites, so the provider's POST
    # back is cross-site as in production, and the flow cookie must still come back with it.
    login = site.url.replace("127.0.0.1", "localhost") + "/console/login"
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        try:
            # The browser is the test's user: it is told to accept the throwaway CAs.
            context = await chromium.new_context(ignore_https_errors=True)
            context.set_default_timeout(10_000)
            page = await context.new_page()
            await page.goto(login)
            await page.get_by_role("link", name="Sign in with Company single sign-on").click()
            await page.locator("input[name=user]").fill("ada")
            await page.get_by_role("button", name="Sign in").click()
            await page.wait_for_url(re.compile(r"//localhost:\d+/console/$"))
            assert "ada" in await page.locator(".who .user").inner_text()
            assert "admin" in await page.locator(".who .role").inner_text()
        finally:
            await chromium.close()


async def test_an_assertion_signed_with_sha1_is_refused(site: Site, browser: Browser) -> None:
    assert_refused(await browser.sign_in("ada", sha1=True), "signed with SHA-1")
    assert (await browser.console())[0] == 303


async def test_an_altered_assertion_is_refused(site: Site, browser: Browser) -> None:
    action, fields = await browser.provider_answer("nobody")
    document = base64.b64decode(fields["SAMLResponse"]).decode()
    assert document.count(">coffee-club<") == 1
    forged = document.replace(">coffee-club<", ">mc-admins<")
    fields["SAMLResponse"] = base64.b64encode(forged.encode()).decode()
    assert_refused(await browser.post(action, fields), "does not verify")
    assert (await browser.console())[0] == 303
    assert await audit_of(site, "nobody") == []


async def test_a_person_in_no_mapped_group_is_refused(site: Site, browser: Browser) -> None:
    assert_refused(await browser.sign_in("nobody"), "Sign-in refused")
    assert (await browser.console())[0] == 303
    ((action, detail),) = [(e.action, e.detail) for e in await audit_of(site, "nobody")]
    assert action == "staff.login.failed" and detail["reason"] == "in no group mapped to a role"
    assert detail["groups"] == ["coffee-club"]


async def test_a_support_role_types_the_built_in_code(site: Site, browser: Browser) -> None:
    answer = await browser.sign_in("sam")  # MFA asserted, but these settings trust none
    assert answer.status == 200 and 'name="totp"' in answer.page, answer.page
    assert "mc_session=" not in answer.set_cookies
    created = await users.add_user(
        site.ctx, "sam", StaffRole.SUPPORT_L2, "a long local password 1", by=ADMIN
    )
    secret = created.totp_uri.split("secret=")[1].split("&")[0]
    form = {"csrf_token": hidden(answer.page, "csrf_token")}
    form["totp"] = totp_code(secret, site.clock.now)
    done = await browser.post(site.url + "/console/login/saml/totp", form)
    assert done.status == 200 and "Signed in" in done.page, done.page
    assert (await browser.console())[0] == 200


@pytest.mark.parametrize("site", [{"trusted_authn_contexts": [MFA]}], indirect=True)
async def test_a_trusted_authn_context_replaces_the_code(site: Site, browser: Browser) -> None:
    answer = await browser.sign_in("sue")  # a password alone is no second factor
    assert answer.status == 200 and 'name="totp"' in answer.page, answer.page
    answer = await browser.sign_in("sam")
    assert answer.status == 200 and "Signed in" in answer.page, answer.page
    accepted = [e.detail for e in await audit_of(site, "sam") if e.action == "staff.login"]
    assert accepted[-1]["second_factor"] == "provider"
    assert accepted[-1]["authn_context"] == [MFA]


async def test_the_service_provider_metadata_names_the_consumer(site: Site) -> None:
    async with aiohttp.ClientSession() as http:
        url = site.url + "/console/login/saml/metadata"
        async with http.get(url, ssl=False) as r:
            text = await r.text()
    assert r.status == 200 and ENTITY_ID in text
    assert site.url + "/console/login/saml/acs" in text


def test_settings_refuse_a_missing_metadata_file(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="idp_metadata_file"):
        SamlProvider.model_validate(
            {"idp_metadata_file": tmp_path / "absent.xml", "entity_id": ENTITY_ID, "roles": ROLES}
        )
