"""Staff login latency per method against the local password login, in the same run (report
only).

An in-process Mission Control (SQLite, the real app and middleware, a hand-moved clock so each
login has a fresh TOTP step) and a real OpenLDAP directory (Debian's slapd, as the tests start
it, StartTLS on loopback). Each method logs in `--logins` times sequentially over HTTP after a
warm-up:
  local     POST /api/v1/login       argon2id password + TOTP (the baseline)
  ldap      POST /api/v1/login/ldap  StartTLS + bind + group search (an operator: no TOTP)
  ldap+totp POST /api/v1/login/ldap  the same for a support role, + the local TOTP
  oidc      GET /console/login/oidc -> the provider's form -> callback: discovery, PKCE,
            the code redeemed, the provider's keys fetched, the ID token verified, a console
            session (an admin: no TOTP), against `oidc-provider-mock` over TLS in its own process
  saml      GET /console/login/saml -> the provider's form -> its signed response posted to
            POST /console/login/saml/acs: the AuthnRequest made, the assertion's signature
            checked (xmlsec1), a console session (an admin: no TOTP), against a pysaml2
            identity provider over TLS in its own process (tests/mission_control/saml_kit.py)
Printed: median and p95 per method, and each median against local's.
Run: .venv/bin/python benchmarks/login_latency.py [--logins 50]
"""

from __future__ import annotations

import argparse
import asyncio
import html
import re
import ssl
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "mission_control"))

from mc_api import serving_api  # noqa: E402
from mc_kit import FakeClock  # noqa: E402
from mcs_staff import ADMIN, totp_code  # noqa: E402
from oidc_kit import Provider, oidc_provider  # noqa: E402
from saml_kit import PASSWORD, IdentityProvider, saml_idp  # noqa: E402
from slapd_kit import DIRECTORY, GROUPS, PEOPLE, slapd  # noqa: E402

from contract.messages import StaffRole  # noqa: E402
from mission_control.db.engine import create_engine  # noqa: E402
from mission_control.db.migrate import upgrade  # noqa: E402
from mission_control.service.accounts import users  # noqa: E402
from mission_control.staff.directory import LdapDirectory  # noqa: E402
from mission_control.staff.oidc import OidcProvider  # noqa: E402
from mission_control.staff.saml import SamlProvider  # noqa: E402

LOCAL_PASSWORD = "a long local password for the benchmark"


async def oidc_login(url: str, provider: Provider) -> None:
    """One whole code flow over HTTP, as a browser follows it; raises unless signed in."""
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=url)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.get(url + "/console/login/oidc", allow_redirects=False) as r:
            authorize = r.headers["Location"]
        tls = ssl.create_default_context(cafile=str(provider.tls.ca_cert))
        form = {"sub": "ada"}
        async with http.post(authorize, data=form, allow_redirects=False, ssl=tls) as r:
            callback = urljoin(authorize, r.headers["Location"])
        async with http.get(callback, allow_redirects=False) as r:
            if r.status != 200 or "Signed in" not in await r.text():
                raise RuntimeError(f"oidc login failed: {r.status}")


def form_field(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    if found is None:
        raise RuntimeError(f"no {name} in the page: {page[:200]}")
    return html.unescape(found.group(1))


async def saml_login(url: str, idp: IdentityProvider) -> None:
    """One whole SP-initiated flow over HTTP, as a browser follows it; raises unless signed
    in. The provider's TLS is its own throwaway CA: this client does not check it (pysaml2
    checks the assertion's signature, which is what the console trusts)."""
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=url)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.get(url + "/console/login/saml", allow_redirects=False) as r:
            sso = r.headers["Location"]
        async with http.get(sso, ssl=False) as r:
            login = await r.text()
        form = {"SAMLRequest": form_field(login, "SAMLRequest"), "user": "ada", "sign": "1"}
        async with http.post(sso.split("?")[0] + "/login", data=form, ssl=False) as r:
            posting = await r.text()
        action = re.search(r'action="([^"]+)"', posting)
        if action is None:
            raise RuntimeError(f"no form from the SAML provider: {posting[:200]}")
        fields = {"SAMLResponse": form_field(posting, "SAMLResponse")}
        async with http.post(html.unescape(action.group(1)), data=fields) as r:
            if r.status != 200 or "Signed in" not in await r.text():
                raise RuntimeError(f"saml login failed: {r.status}")


async def run(logins: int, base: Path) -> dict[str, list[float]]:
    # The hand-moved clock runs ahead (31 s a login): tokens that outlive the run.
    ada = {"attributes": {"uid": ["ada"], "groups": ["mc-admins"]}, "authn_context": PASSWORD}
    with (
        slapd(base / "slapd") as directory,
        oidc_provider(base / "oidc", 86400) as provider,
        saml_idp(base / "saml", {"ada": ada}) as idp,
    ):
        provider.set_person("ada", preferred_username="ada", groups=["mc-admins"])
        oidc = OidcProvider(
            issuer=provider.issuer,
            client_id="mission-control",
            client_secret="the benchmark's client secret",
            ca_file=provider.tls.ca_cert,
            roles={"mc-admins": StaffRole.ADMIN},
        )
        saml = SamlProvider.model_validate(
            {
                "idp_metadata_file": idp.metadata,
                "entity_id": "https://mission-control.test/saml",
                "roles": {"mc-admins": "admin"},
            }
        )
        ldap = LdapDirectory(
            url=directory.ldap_url,
            start_tls=True,
            ca_file=directory.tls.ca_cert,
            user_dn=f"uid={{username}},{PEOPLE}",
            group_base=GROUPS,
            roles={"mc-operators": StaffRole.OPERATOR, "mc-support": StaffRole.SUPPORT_L2},
        )
        db_url = f"sqlite:///{base / 'mc.db'}"
        engine = create_engine(db_url)
        await upgrade(engine)
        await engine.dispose()
        clock = FakeClock(datetime.now(UTC))
        async with serving_api(db_url, clock, ldap=ldap, oidc=oidc, saml=saml) as api:
            local = await users.add_user(
                api.admin, "lena", StaffRole.OPERATOR, LOCAL_PASSWORD, by=ADMIN
            )
            support = await users.add_user(
                api.admin, "sam", StaffRole.SUPPORT_L2, LOCAL_PASSWORD, by=ADMIN
            )
            secrets = {
                "lena": local.totp_uri.split("secret=")[1].split("&")[0],
                "sam": support.totp_uri.split("secret=")[1].split("&")[0],
            }
            methods: dict[str, tuple[str, str, str, bool]] = {
                "local": ("/api/v1/login", "lena", LOCAL_PASSWORD, True),
                "ldap": ("/api/v1/login/ldap", "olga", DIRECTORY["olga"][0], False),
                "ldap+totp": ("/api/v1/login/ldap", "sam", DIRECTORY["sam"][0], True),
            }
            times: dict[str, list[float]] = {name: [] for name in [*methods, "oidc", "saml"]}
            for n in range(logins + 3):  # 3 warm-up rounds
                for name, (path, user, password, totp) in methods.items():
                    clock.advance(seconds=31)  # a fresh TOTP step for every login
                    code = totp_code(secrets[user], clock.now) if totp else ""
                    body: dict[str, Any] = {"username": user, "password": password, "totp": code}
                    t0 = time.perf_counter()
                    status, reply = await api.call("POST", path, body)
                    elapsed = time.perf_counter() - t0
                    if status != 200:
                        raise RuntimeError(f"{name} login failed: {status} {reply}")
                    if n >= 3:
                        times[name].append(elapsed)
                t0 = time.perf_counter()
                await oidc_login(api.url, provider)
                if n >= 3:
                    times["oidc"].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                await saml_login(api.url, idp)
                if n >= 3:
                    times["saml"].append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--logins", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="login-bench-") as work:
        times = asyncio.run(run(args.logins, Path(work)))
    baseline = statistics.median(times["local"])
    for name, values in times.items():
        median = statistics.median(values)
        p95 = statistics.quantiles(values, n=20)[-1]
        print(
            f"{name:10s} median {median * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms   "
            f"x local {median / baseline:.2f}"
        )


if __name__ == "__main__":
    main()
