"""Staff sign-in through a real OpenID Connect provider (`oidc-provider-mock`, authlib's server
side, in its own process over TLS): the authorization code flow with PKCE in real Chromium, a
person in no mapped group refused, the second factor of support roles (the built-in TOTP, or
the provider's `amr` when trusted), and ID tokens signed by another key, expired or meant for
another client refused at the callback and audited."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import aiohttp
import pytest
from mcs_staff import ADMIN, totp_code
from oidc_kit import Provider, oidc_provider
from playwright.async_api import async_playwright
from pydantic import ValidationError
from sso_site import Site, audit_of, serving_site

from contract.messages import StaffRole
from mission_control.service.accounts import users
from mission_control.staff.oidc import OidcProvider

ROLES = {"mc-admins": "admin", "mc-support": "support-l2"}
CLIENT = "mission-control"


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    with oidc_provider(tmp_path_factory.mktemp("oidc")) as running_provider:
        yield running_provider


def settings_for(provider: Provider, **changes: Any) -> OidcProvider:
    values: dict[str, Any] = {
        "issuer": provider.issuer,
        "client_id": CLIENT,
        "client_secret": "the client's secret at the provider",
        "ca_file": provider.tls.ca_cert,
        "roles": ROLES,
        **changes,
    }
    return OidcProvider.model_validate(values)


@pytest.fixture
async def site(
    sqlite_url: str, provider: Provider, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Site]:
    changes = getattr(request, "param", {})
    oidc = settings_for(provider, **changes)
    async with serving_site(sqlite_url, tmp_path / "mc-tls", oidc=oidc) as served:
        yield served


async def sign_in_over_http(site: Site, sub: str) -> tuple[int, str, aiohttp.ClientSession]:
    """The whole code flow without a browser: MC -> provider's form -> callback."""
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    no_verify = {"ssl": False}  # the test's own client; Mission Control verifies the provider
    async with http.get(site.url + "/console/login/oidc", allow_redirects=False, **no_verify) as r:
        assert r.status == 303, await r.text()
        authorize = r.headers["Location"]
    assert "code_challenge_method=S256" in authorize and "nonce=" in authorize
    async with http.post(authorize, data={"sub": sub}, allow_redirects=False, **no_verify) as r:
        assert r.status in (302, 303), await r.text()
        callback = urljoin(authorize, r.headers["Location"])
    async with http.get(callback, allow_redirects=False, **no_verify) as r:
        return r.status, await r.text(), http


async def test_a_staff_member_signs_in_through_the_provider_in_chromium(
    site: Site, provider: Provider
) -> None:
    provider.set_person("ada", preferred_username="ada", groups=["mc-admins", "coffee-club"])
    provider.set_person("nobody", preferred_username="nobody", groups=["coffee-club"])
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        try:
            for sub, welcome in (("ada", True), ("nobody", False)):
                # The browser is the test's user: it is told to accept the throwaway CAs.
                context = await browser.new_context(ignore_https_errors=True)
                context.set_default_timeout(20_000)
                page = await context.new_page()
                await page.goto(site.url + "/console/login")
                await page.get_by_role("link", name="Sign in with Company single sign-on").click()
                await page.locator("input[name=sub]").fill(sub)
                await page.get_by_role("button", name="Authorize").click()
                if welcome:
                    await page.wait_for_url(re.compile(r"/console/$"))
                    assert "ada" in await page.locator(".who .user").inner_text()
                    assert "admin" in await page.locator(".who .role").inner_text()
                else:
                    await page.wait_for_url(re.compile(r"/login/oidc/callback"))
                    alert = await page.get_by_role("alert").inner_text()
                    assert "Sign-in refused" in alert, alert
                    await page.goto(site.url + "/console/")
                    assert "/console/login" in page.url
                await context.close()
        finally:
            await browser.close()
    (entry,) = [row for row in await audit_of(site, "ada") if row.action == "staff.login"]
    assert entry.detail["method"] == "oidc" and entry.detail["subject"] == "ada"
    (refusal,) = await audit_of(site, "nobody")
    assert refusal.action == "staff.login.failed"
    assert refusal.detail["reason"] == "in no group mapped to a role"


async def test_support_roles_type_the_built_in_code(site: Site, provider: Provider) -> None:
    provider.set_person("sam", preferred_username="sam", groups=["mc-support"], amr=["mfa"])
    status, page, http = await sign_in_over_http(site, "sam")
    async with http:
        # amr "mfa" is not trusted by these settings: the built-in TOTP is asked for.
        assert status == 200 and 'name="totp"' in page, page
        created = await users.add_user(
            site.ctx, "sam", StaffRole.SUPPORT_L2, "a long local password 1", by=ADMIN
        )
        secret = created.totp_uri.split("secret=")[1].split("&")[0]
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token is not None
        form = {"csrf_token": token.group(1), "totp": totp_code(secret, site.clock.now)}
        target = site.url + "/console/login/oidc/totp"
        async with http.post(target, data=form, ssl=False) as reply:
            assert reply.status == 200 and "Signed in" in await reply.text()
        # The pending sign-in is spent: the same form again is refused.
        async with http.post(target, data=form, ssl=False) as reply:
            assert reply.status == 401


@pytest.mark.parametrize("site", [{"trusted_amr": ["mfa"]}], indirect=True)
async def test_a_trusted_provider_factor_replaces_the_code(site: Site, provider: Provider) -> None:
    provider.set_person("sue", preferred_username="sue", groups=["mc-support"], amr=["pwd"])
    status, page, http = await sign_in_over_http(site, "sue")
    await http.close()
    assert status == 200 and 'name="totp"' in page  # "pwd" alone is no second factor
    provider.set_person("sue", preferred_username="sue", groups=["mc-support"], amr=["mfa"])
    status, page, http = await sign_in_over_http(site, "sue")
    await http.close()
    assert status == 200 and "Signed in" in page, page
    accepted = [row for row in await audit_of(site, "sue") if row.action == "staff.login"]
    assert accepted[-1].detail["second_factor"] == "provider"


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        ({"aud": "another-client"}, "not meant for this client"),
        ({"exp": 1_000_000_000}, "expired"),
    ],
)
async def test_a_token_for_another_client_or_expired_is_refused(
    site: Site, provider: Provider, claims: dict[str, Any], why: str
) -> None:
    sub = f"eve-{why.split()[0]}"
    provider.set_person(sub, preferred_username=sub, groups=["mc-admins"], **claims)
    status, page, http = await sign_in_over_http(site, sub)
    await http.close()
    assert status == 401 and why in page, page
    assert "mc_session" not in page


async def test_a_token_signed_by_another_key_is_refused(tmp_path: Path, sqlite_url: str) -> None:
    with oidc_provider(tmp_path / "rogue") as rogue:
        rogue.set_person("mallory", preferred_username="mallory", groups=["mc-admins"])
        rogue.publish_other_key()
        oidc = settings_for(rogue)
        async with serving_site(sqlite_url, tmp_path / "mc-tls", oidc=oidc) as site:
            status, page, http = await sign_in_over_http(site, "mallory")
            await http.close()
            assert status == 401 and "signature does not verify" in page, page
            assert await audit_of(site, "mallory") == []


def test_settings_refuse_a_provider_without_tls() -> None:
    with pytest.raises(ValidationError, match="issuer"):
        OidcProvider.model_validate(
            {"issuer": "http://idp.example", "client_id": CLIENT, "roles": ROLES}
        )
