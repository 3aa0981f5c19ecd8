"""Reading a cluster's monitoring data: ask every serving node over HTTPS and merge.

Guarantees: every node is asked in parallel with a bounded timeout; the server's certificate
must chain to the CA given; a node that cannot answer is named in `missing`, never silently
left out; rows are merged newest first and each names the node that holds it. A node's refusal
(a revoked or wrong token) is one clear error, not an empty answer.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cluster.errors import ClusterError

TIMEOUT = 10.0


class DataReadError(ClusterError):
    """A node refused the request (bad token, unknown environment)."""


def client_context(ca_file: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def request_json(
    url: str,
    token: str,
    context: ssl.SSLContext,
    body: bytes | None = None,
    content_type: str = "application/json",
    timeout: float = TIMEOUT,
) -> Any:
    """One HTTPS request with the token; the JSON answer, or `DataReadError` with the node's
    one-line error for a 4xx; OSError when the node cannot be reached."""
    headers = {"Authorization": f"Bearer {token}"}
    if body is not None:
        headers["Content-Type"] = content_type
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as answer:
            return json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as e:
        try:
            message = json.loads(e.read()).get("error", e.reason)
        except (ValueError, AttributeError):
            message = e.reason
        if 400 <= e.code < 500:
            raise DataReadError(f"{url.split('?')[0]}: {message}") from None
        raise OSError(f"{e.code} {message}") from None


@dataclass
class Merged:
    rows: list[dict[str, Any]] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)  # node -> why it did not answer
    sensitive_data: bool = False


def read_all(
    endpoints: dict[str, str],
    kind: str,
    query: dict[str, str],
    token: str,
    ca_file: Path | None,
) -> Merged:
    """`kind` rows from every node in `endpoints` ({node: HOST:PORT}), merged newest first."""
    context = client_context(ca_file)
    qs = urllib.parse.urlencode(query)

    def ask(item: tuple[str, str]) -> tuple[str, Any]:
        node, address = item
        try:
            return node, request_json(f"https://{address}/v1/data/{kind}?{qs}", token, context)
        except DataReadError:
            raise
        except (OSError, ValueError) as e:
            return node, e

    merged = Merged()
    if not endpoints:
        return merged
    with ThreadPoolExecutor(max_workers=min(8, len(endpoints))) as pool:
        answers = list(pool.map(ask, sorted(endpoints.items())))
    for node, answer in answers:
        if isinstance(answer, Exception):
            merged.missing[node] = str(answer) or type(answer).__name__
            continue
        merged.sensitive_data = bool(answer.get("sensitive-data"))
        merged.rows.extend({**row, "node": node} for row in answer.get("rows", []))
    key = "last_seen" if kind == "sessions" else "at"
    merged.rows.sort(key=lambda r: r.get(key) or 0, reverse=True)
    return merged
