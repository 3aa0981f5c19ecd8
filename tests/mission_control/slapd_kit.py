"""A real OpenLDAP directory for staff sign-in tests: Debian's `slapd`, its own configuration
directory, port and TLS certificate (StartTLS and LDAPS), loaded with people and groups before
it starts, ready once a StartTLS succeeds, stopped by PID afterwards."""

from __future__ import annotations

import socket
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import ldap3
from ldap3.core.exceptions import LDAPException

from cluster.dev.processes import Process, free_port, start, wait_until
from contract.certs import DevCA, write_dev_ca

SUFFIX = "dc=example,dc=org"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
SLAPD = "/usr/sbin/slapd"

#: name -> (password, groups)
DIRECTORY = {
    "ada": ("ada-directory-pw", ["mc-admins"]),
    "sam": ("sam-directory-pw", ["mc-support"]),
    "olga": ("olga-directory-pw", ["mc-operators", "mc-support"]),
    "nobody": ("nobody-directory-pw", ["coffee-club"]),
}


@dataclass(frozen=True)
class Directory:
    ldap_url: str
    ldaps_url: str
    tls: DevCA

    def user_dn(self, name: str) -> str:
        return f"uid={name},{PEOPLE}"


def _ldif() -> str:
    entries = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example",
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people",
        f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups",
    ]
    members: dict[str, list[str]] = {}
    for name, (password, groups) in DIRECTORY.items():
        entries.append(
            f"dn: uid={name},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {name}\ncn: {name}\n"
            f"sn: {name}\nuserPassword: {password}"
        )
        for group in groups:
            members.setdefault(group, []).append(f"uid={name},{PEOPLE}")
    for group, dns in members.items():
        lines = "".join(f"\nmember: {dn}" for dn in dns)
        entries.append(f"dn: cn={group},{GROUPS}\nobjectClass: groupOfNames\ncn: {group}{lines}")
    return "\n\n".join(entries) + "\n"


def _config(base: Path, tls: DevCA) -> str:
    return f"""include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {base}/slapd.pid
TLSCACertificateFile {tls.ca_cert}
TLSCertificateFile {tls.server_cert}
TLSCertificateKeyFile {tls.server_key}
database mdb
maxsize 16777216
directory {base}/data
suffix "{SUFFIX}"
rootdn "cn=admin,{SUFFIX}"
rootpw not-used-by-the-tests
access to attrs=userPassword by self =xw by anonymous auth by * none
access to * by users read by * none
"""


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _starts_tls(url: str, ca: Path) -> bool:
    """A StartTLS on `url` succeeds (slapd answers on its port before it is ready for one)."""
    tls = ldap3.Tls(ca_certs_file=str(ca), validate=ssl.CERT_REQUIRED)
    connection = ldap3.Connection(
        ldap3.Server(url, tls=tls, connect_timeout=2), receive_timeout=2, raise_exceptions=True
    )
    try:
        connection.open()
        return bool(connection.start_tls())
    except LDAPException:
        return False
    finally:
        connection.unbind()


@contextmanager
def slapd(base: Path) -> Iterator[Directory]:
    """A directory on two free loopback ports (plain for StartTLS, and LDAPS)."""
    base.mkdir(parents=True, exist_ok=True)
    (base / "data").mkdir(exist_ok=True)
    tls = write_dev_ca(base / "tls", ["127.0.0.1", "localhost"])
    conf = base / "slapd.conf"
    conf.write_text(_config(base, tls))
    (base / "data.ldif").write_text(_ldif())
    subprocess.run(
        ["/usr/sbin/slapadd", "-f", str(conf), "-l", str(base / "data.ldif")],
        check=True,
        capture_output=True,
        timeout=60,
    )
    port, tls_port = free_port(), free_port()
    urls = f"ldap://127.0.0.1:{port}/ ldaps://127.0.0.1:{tls_port}/"
    process: Process = start("slapd", [SLAPD, "-f", str(conf), "-h", urls, "-d", "0"], base / "log")
    try:
        url = f"ldap://127.0.0.1:{port}"

        def ready() -> bool:
            return _answers(port) and _answers(tls_port) and _starts_tls(url, tls.ca_cert)

        if not wait_until(ready, 30, 0.05):
            raise RuntimeError(f"slapd did not start: {process.log_tail(20)}")
        yield Directory(url, f"ldaps://127.0.0.1:{tls_port}", tls)
    finally:
        process.stop(timeout=10)
