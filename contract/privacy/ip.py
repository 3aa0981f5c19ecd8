"""IP address masking, applied before an address is stored or looked up.

Modes: `all` (the default) masks every address, `public` only addresses routable on the
internet (private, loopback and link-local ones are kept, they name no one outside the
customer's network), `off` keeps them. Masking keeps the network and drops the host: IPv4 loses
its last octet (`203.0.113.77` -> `203.0.113.0`), IPv6 its last 80 bits (the first three groups
remain: `2001:db8:85a3::`).
"""

from __future__ import annotations

import ipaddress
from typing import Literal, get_args

IpMasking = Literal["all", "public", "off"]
IP_MODES: tuple[str, ...] = get_args(IpMasking)


def mask_ip(address: str, mode: IpMasking = "all") -> str | None:
    """The address as it may be stored under `mode`; None when `address` is not an address."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    if mode == "off" or (mode == "public" and not ip.is_global):
        return str(ip)
    if isinstance(ip, ipaddress.IPv4Address):
        return str(ipaddress.IPv4Address(int(ip) & 0xFFFFFF00))
    return str(ipaddress.IPv6Address(int(ip) & ~((1 << 80) - 1)))
