#!/usr/bin/env bash
# Installs the Debian packages the project runs against, only those that are missing:
# ZooKeeper (jars started by the project itself, with the netty jars its TLS port needs),
# Chromium and libatomic1 (console browser tests: Playwright's driver needs libatomic),
# PostgreSQL (binaries for a throwaway test instance where none is running), Debian 12's
# own Python 3.11 with venv (`make test` runs the unit and backup tests under it too),
# iproute2 (`ip netns`: the data-center partition test's namespaces and veth links), git (the
# secret scanner reads history), OpenLDAP's slapd and tools (staff sign-in tests start
# their own directory server), and xmlsec1 (pysaml2 checks SAML signatures with it).
set -euo pipefail
need=()
[ -f /usr/share/java/zookeeper.jar ] || need+=(zookeeper)
command -v java >/dev/null 2>&1 || need+=(default-jre-headless)
[ -x /usr/bin/chromium ] || need+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
dpkg -s libatomic1 >/dev/null 2>&1 || need+=(libatomic1)
[ -x /usr/bin/python3.11 ] || need+=(python3.11)
/usr/bin/python3.11 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3.11-venv)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v git >/dev/null 2>&1 || need+=(git)
[ -x /usr/sbin/slapd ] || need+=(slapd)
command -v ldapadd >/dev/null 2>&1 || need+=(ldap-utils)
command -v xmlsec1 >/dev/null 2>&1 || need+=(xmlsec1)
[ ${#need[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${need[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
