"""Personal data in URIs: "mask personal data in URIs", off by default per application.

Guarantees: every query-parameter value becomes `<masked>` (names stay: `?card=<masked>`), the
path, the fragment and any user info pass through every built-in detector, and a host given as
an IP address is masked too. Scheme, host names, ports and parameter order are kept, so the
page stays recognisable. Text that is not a URI at all is masked as free text.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from contract.privacy.detectors import MASKED, mask_detected


def mask_query(query: str) -> str:
    """Each `name=value` of a query string as `name=<masked>`; bare names are kept."""
    if not query:
        return query
    parts = []
    for pair in query.split("&"):
        name, sep, _value = pair.partition("=")
        parts.append(f"{name}={MASKED}" if sep else pair)
    return "&".join(parts)


def mask_uri(uri: str) -> str:
    """`uri` with its personal data masked (see the module's guarantees)."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return mask_detected(uri)
    netloc = parts.netloc
    if netloc:
        userinfo, at, hostport = netloc.rpartition("@")
        if at:
            userinfo = MASKED
        netloc = f"{userinfo}{at}{mask_detected(hostport, ('ipv6', 'ipv4'))}"
    return urlunsplit(
        (
            parts.scheme,
            netloc,
            mask_detected(parts.path),
            mask_query(parts.query),
            mask_detected(parts.fragment),
        )
    )
