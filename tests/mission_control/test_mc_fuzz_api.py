"""Mission Control's API fuzzed from its own OpenAPI document (schemathesis), against a real
`mission-control serve` process: as an anonymous caller, as an enrolled cluster and as a staff
user, with valid and with invalid requests. Every answer is no server error and is what the
document promises (status, content type, body); a method a path does not serve is answered 405
with an `Allow` header naming the ones it does. Real cluster messages, and schema-valid bodies
of every other POST route that takes JSON (taken from the document), mutated by hypothesis, are
answered as documented too, and a refused one changes nothing in the database (every table).

Bounded for CI: a few examples per operation, persona and mode, derandomized (the same cases
every run), no example database.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sqlite3
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mc_kit import make_settings
from mc_messages import consumption, event, health_json, heartbeat, license_check
from mc_postgres import free_port, migrate, run_async
from mc_process import serve
from mcs_staff import staff_token
from schemathesis import CheckFunction, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from mission_control.api.routes import ROUTES
from mission_control.app import service_context
from mission_control.db.engine import create_engine
from mission_control.openapi import build_document
from mission_control.service.fleet import enrollment

# One worker, one server for the whole module (the fixture is module-scoped).
pytestmark = pytest.mark.xdist_group("mission-control-fuzz")

DOCUMENT = build_document(ROUTES, "0")  # what the server serves (a test holds them equal)
OPERATIONS = sorted(
    (method.upper(), path) for path, methods in DOCUMENT["paths"].items() for method in methods
)
PERSONAS = ("anonymous", "cluster", "staff")
#: Per operation, persona and mode; `MC_FUZZ_EXAMPLES=50` for a deeper run by hand.
EXAMPLES = int(os.environ.get("MC_FUZZ_EXAMPLES", "3"))
POSITIVE_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
NEGATIVE_CHECKS = [*POSITIVE_CHECKS, negative_data_rejection]


def bounded(examples: int) -> settings:
    """Hypothesis settings for CI: `examples` cases, the same every run, no example database."""
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )


@dataclass(frozen=True)
class Server:
    url: str
    cluster_id: str
    headers: dict[str, dict[str, str]]  # per persona
    schema: schemathesis.schemas.BaseSchema
    log: Path
    db: Path

    def stored(self) -> Stored:
        """The whole database, as a refused request must leave it."""
        with contextlib.closing(sqlite3.connect(self.db)) as conn:
            names = [
                str(r[0])
                for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            ]
            tables = {
                t: _digest(conn.execute(f'SELECT * FROM "{t}"'))
                for t in sorted(names)
                if t not in (AUDIT, CHECKPOINTS)
            }
            audit = conn.execute(f"SELECT seq, action, hash FROM {AUDIT} ORDER BY seq").fetchall()
            signed = conn.execute(f"SELECT seq, hash FROM {CHECKPOINTS} ORDER BY seq").fetchall()
        return Stored(tables, tuple(audit), tuple(signed))


#: The audit log and its signed checkpoints: a refused staff action or login is recorded there
#: by design (who tried what), and a checkpoint that falls due is signed with the entry.
AUDIT, CHECKPOINTS = "audit_log", "audit_checkpoints"
#: What a refusal records on purpose, besides the audit log: a failed login counts towards the
#: name's throttle (docs/mission-control-api.md: 429 after repeated failures).
REFUSAL_RECORDS = {"/api/v1/login": {"login_throttle"}, "/api/v1/login/ldap": {"login_throttle"}}


@dataclass(frozen=True)
class Stored:
    """Every table but the audit log's two as a digest of all its rows (any row added, removed
    or changed anywhere changes it); the audit log's entries (seq, action, hash) and signed
    checkpoints (seq, hash), in order."""

    tables: dict[str, str]
    audit: tuple[tuple[Any, ...], ...]
    checkpoints: tuple[tuple[Any, ...], ...]

    def changed_since(self, before: Stored, path: str) -> list[str]:
        """What changed since `before` that a refused POST to `path` may not change: any table
        but the route's `REFUSAL_RECORDS`; the audit log other than by appending entries that
        record a refusal (actions ending `.refused` or `.failed`); its checkpoints other than
        by signing one as such an entry is appended."""
        mine = REFUSAL_RECORDS.get(path, set())
        changed = sorted(
            t for t in self.tables if self.tables[t] != before.tables.get(t) and t not in mine
        )
        kept, added = self.audit[: len(before.audit)], self.audit[len(before.audit) :]
        refusals = all(str(a[1]).endswith((".refused", ".failed")) for a in added)
        if kept != before.audit or not refusals:
            changed.append(f"{AUDIT}: {[a[1] for a in added]}")
        signed = self.checkpoints[len(before.checkpoints) :]
        if self.checkpoints[: len(before.checkpoints)] != before.checkpoints or (
            signed and not added
        ):
            changed.append(f"{CHECKPOINTS}: {len(signed)} signed")
        return changed


def _digest(rows: Iterable[tuple[Any, ...]]) -> str:
    """The same for the same rows in any order."""
    return hashlib.sha256("\n".join(sorted(repr(r) for r in rows)).encode()).hexdigest()


async def _prepare(db: str) -> tuple[str, str]:
    """A cluster record (its enrollment token) and a staff operator (an API token)."""
    return await _new_caller(db, "cluster", "fuzzed"), await _new_caller(db, "staff", "ops")


async def _new_caller(db: str, persona: str, name: str) -> str:
    """A new cluster record's enrollment token, or a new staff operator's API token."""
    engine = create_engine(db)
    try:
        ctx = service_context(make_settings(db), engine)
        if persona == "staff":
            return await staff_token(ctx, name, "operator")
        return (await enrollment.create_cluster(ctx, name, "EU")).enrollment_token
    finally:
        await engine.dispose()


def own_caller(server: Server, persona: str, test: str) -> tuple[dict[str, str], dict[str, str]]:
    """A caller of `persona` made for one test alone (named after `test`), so that what the
    test does to its credential (a logout, a rotation) reaches no other test: its headers,
    and the path parameters of its own records."""
    if persona == "anonymous":
        return {}, {}
    words = re.findall(r"[a-z0-9]+", re.sub(r"/api/v1/|{\w+}|clusters", " ", test))
    name = "fuzz-" + "-".join(words)
    secret = run_async(lambda: _new_caller(f"sqlite:///{server.db}", persona, name))
    if persona == "staff":
        return {"Authorization": f"Bearer {secret}"}, {}
    cluster_id, headers = enroll(server.url, secret)
    return headers, {"cluster_id": cluster_id}


def enroll(url: str, token: str) -> tuple[str, dict[str, str]]:
    """Enroll with `token`: the cluster's id, and headers that carry its credential."""
    enrolled = requests.post(f"{url}/api/v1/enroll", json={"token": token}, timeout=10).json()
    return str(enrolled["cluster_id"]), {"Authorization": f"Bearer {enrolled['credential']}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("fuzz")
    db, port, log = f"sqlite:///{base / 'mc.db'}", free_port(), base / "serve.log"
    migrate(db)
    token, staff = run_async(lambda: _prepare(db))
    # No background sweep while requests are fuzzed (one runs at start-up): nothing but the
    # requests themselves changes the database, so a refusal can be held to change nothing.
    with serve(db, port, log=log, env={"MISSION_CONTROL_SWEEP_INTERVAL_S": "86400"}):
        url = f"http://127.0.0.1:{port}"
        cluster_id, cluster = enroll(url, token)
        with urllib.request.urlopen(f"{url}/api/v1/openapi.json", timeout=10) as served:
            document = json.load(served)
        yield Server(
            url,
            cluster_id,
            {"anonymous": {}, "cluster": cluster, "staff": {"Authorization": f"Bearer {staff}"}},
            schemathesis.openapi.from_dict(document),
            log,
            base / "mc.db",
        )


#: Operations that end the caller's credential (a logout, a rotation, a renewal): fuzzed as a
#: caller of their own, so that the shared personas outlive them.
ENDS_CREDENTIAL = {
    "/api/v1/logout",
    "/api/v1/clusters/{cluster_id}/credential/rotate",
    "/api/v1/clusters/{cluster_id}/credential/renew",
}


def fuzz(
    server: Server,
    operation: schemathesis.APIOperation,
    caller: tuple[dict[str, str], dict[str, str]],
    mode: GenerationMode,
    checks: list[CheckFunction],
) -> None:
    """Send `EXAMPLES` generated requests of `mode` for `operation` as `caller` (headers, and
    the path parameters of its own records); every answer must pass `checks` (the first
    failure, shrunk, fails the test)."""
    headers, own = caller
    own = own if "{cluster_id}" in operation.path else {}  # a cluster fuzzes its own records
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=own or None)
    http = requests.Session()

    @bounded(EXAMPLES)
    @given(case=strategy)
    def answered_as_documented(case: schemathesis.Case) -> None:
        response = case.call(base_url=server.url, session=http, headers=headers, timeout=10)
        case.validate_response(response, checks=checks)

    answered_as_documented()


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_answer_is_documented_and_none_is_a_server_error(
    server: Server, method: str, path: str, persona: str
) -> None:
    operation = server.schema[path][method]
    caller = (
        server.headers[persona],
        {"cluster_id": server.cluster_id} if persona == "cluster" else {},
    )
    if path in ENDS_CREDENTIAL:
        caller = own_caller(server, persona, f"{persona} {path}")
    fuzz(server, operation, caller, GenerationMode.POSITIVE, POSITIVE_CHECKS)
    documented = DOCUMENT["paths"][path][method.lower()]
    if documented["parameters"] or "requestBody" in documented:  # else nothing to make invalid
        fuzz(server, operation, caller, GenerationMode.NEGATIVE, NEGATIVE_CHECKS)


def test_a_method_a_path_does_not_serve_is_405_with_allow(server: Server) -> None:
    for path, methods in DOCUMENT["paths"].items():
        concrete = re.sub(r"{\w+}", server.cluster_id, path)
        served = {m.upper() for m in methods}
        for method in {"GET", "POST", "PUT", "PATCH", "DELETE"} - served:
            reply = requests.request(method, server.url + concrete, timeout=10)
            assert reply.status_code == 405, (method, path, reply.status_code, reply.text)
            allowed = {m.strip() for m in reply.headers.get("Allow", "").split(",") if m.strip()}
            assert served <= allowed <= served | {"HEAD"}, (method, path, reply.headers)
            assert reply.headers["Content-Type"].startswith("application/json"), reply.headers


def _nested(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    )


#: Any JSON value, a few levels deep.
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    _nested,
    max_leaves=12,
)


def real_bodies(epoch: int) -> dict[str, dict[str, Any]]:
    """What a cluster really sends, by path below its clusters/{id}/, as JSON."""
    return {
        "health": health_json(epoch),
        "license": license_check(epoch).model_dump(mode="json"),
        "consumption": consumption(epoch).model_dump(mode="json"),
        "heartbeat": heartbeat(epoch).model_dump(mode="json"),
        "events": event(epoch).model_dump(mode="json"),
    }


def _parts(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path to every part of a JSON value, the value itself (`()`) first."""
    found = [at]
    if isinstance(value, dict):
        for k, v in value.items():
            found += _parts(v, (*at, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _parts(v, (*at, i))
    return found


@st.composite
def mutated_body(draw: st.DrawFn, body: Any) -> bytes:
    """`body` with one part of it changed: a key dropped, a value replaced by any JSON value, an
    unknown key added, a number pushed out of range, or the encoded bytes cut or garbled. A
    body with no parts (`{}`, a scalar) is itself replaced or added to."""
    changed = json.loads(json.dumps(body))
    where = draw(st.sampled_from(_parts(changed)[1:] or [()]))
    how = draw(st.sampled_from(["drop", "replace", "extra", "huge", "bytes"]))
    if not where:
        if how == "extra" and isinstance(changed, dict):
            changed[draw(st.text(min_size=1, max_size=8))] = draw(JSON)
        elif how != "bytes":
            changed = draw(JSON)
    else:
        parent = changed
        for step in where[:-1]:
            parent = parent[step]
        if how == "drop":
            del parent[where[-1]]
        elif how == "replace":
            parent[where[-1]] = draw(JSON)
        elif how == "extra" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(JSON)
        elif how == "huge":
            parent[where[-1]] = draw(st.sampled_from([2**63, -(2**63) - 1, 10**30, -1, 1e308]))
    encoded = json.dumps(changed).encode()
    if how == "bytes":
        at = draw(st.integers(0, len(encoded) - 1))
        encoded = encoded[:at] + draw(st.binary(max_size=4)) + encoded[at + 1 :]
    return encoded


def answered_as_documented_or_changed_nothing(
    server: Server, reply: requests.Response, path: str, before: Stored, body: bytes
) -> None:
    """`reply` (to a POST of `body` to `path`) has a documented status, is JSON, and, if it
    refused the request, is an error body and the database is as it was `before`."""
    documented = {int(s) for s in DOCUMENT["paths"][path]["post"]["responses"]}
    assert reply.status_code in documented, (reply.status_code, reply.text, body)
    assert reply.headers["Content-Type"].startswith("application/json")
    answer = reply.json()
    if reply.status_code != 200:
        assert set(answer) == {"error"} and answer["error"]["code"], answer
        changed = server.stored().changed_since(before, path)
        assert changed == [], f"a refused request ({reply.status_code}) changed {changed}: {body!r}"


@pytest.fixture(scope="module")
def messenger(server: Server) -> tuple[dict[str, str], dict[str, str]]:
    """A cluster of its own for the real messages: the shared one's epoch has been raised past
    theirs by the operations fuzzed before, which would make every one of them stale."""
    return own_caller(server, "cluster", "real messages")


@bounded(80)
@given(data=st.data())
def test_mutated_real_messages_are_answered_as_documented_and_refusals_store_nothing(
    server: Server, messenger: tuple[dict[str, str], dict[str, str]], data: st.DataObject
) -> None:
    kind = data.draw(st.sampled_from(sorted(real_bodies(1))), label="kind")
    body = data.draw(mutated_body(real_bodies(epoch=10**6)[kind]), label="body")
    path = f"/api/v1/clusters/{{cluster_id}}/{kind}"
    headers, own = messenger
    before = server.stored()
    reply = requests.post(
        f"{server.url}/api/v1/clusters/{own['cluster_id']}/{kind}",
        data=body,
        headers={**headers, "Content-Type": "application/json"},
        timeout=10,
    )
    answered_as_documented_or_changed_nothing(server, reply, path, before, body)


#: Every other POST route whose body is JSON, from the document (the cluster messages above
#: are mutated from real ones).
BODY_ROUTES = sorted(
    path
    for path, methods in DOCUMENT["paths"].items()
    if "application/json" in methods.get("post", {}).get("requestBody", {}).get("content", {})
    and path not in {f"/api/v1/clusters/{{cluster_id}}/{kind}" for kind in real_bodies(1)}
)
#: Mutated bodies per route; `MC_FUZZ_BODIES=500` for a deeper run by hand.
BODY_EXAMPLES = int(os.environ.get("MC_FUZZ_BODIES", "25"))


def caller_of(path: str) -> str:
    """The persona whose credential the route's documented security asks for."""
    schemes = {
        name for need in DOCUMENT["paths"][path]["post"].get("security", []) for name in need
    }
    if "clusterBearer" in schemes:
        return "cluster"
    return "staff" if "staffBearer" in schemes else "anonymous"


def test_every_json_post_route_is_mutated() -> None:
    """The routes come from the document: the ones the issue names are among them."""
    for name in ("enroll", "login", "access-requests", "support/decision", "command-result"):
        assert any(p.endswith(f"/{name}") for p in BODY_ROUTES), name
    for name in ("support/policy", "credential/rotate", "credential/renew", "leaks"):
        assert any(p.endswith(f"/{name}") for p in BODY_ROUTES), name


@pytest.mark.parametrize("path", BODY_ROUTES)
def test_mutated_request_bodies_are_answered_as_documented_and_refusals_change_nothing(
    server: Server, path: str
) -> None:
    """A schema-valid body drawn from the document, then mutated, sent as the route's own
    caller (`own_caller`: a cluster on its own records): `BODY_EXAMPLES` of them, the same
    every run. A cluster takes up a new credential a reply hands it (a rotation)."""
    operation = server.schema[path]["POST"]
    caller = caller_of(path)
    credential, own = own_caller(server, caller, path)
    headers = {**credential, "Content-Type": "application/json"}
    valid = operation.as_strategy(
        generation_mode=GenerationMode.POSITIVE, path_parameters=own or None
    )
    http = requests.Session()

    @bounded(BODY_EXAMPLES)
    @given(case=valid, data=st.data())
    def mutated(case: schemathesis.Case, data: st.DataObject) -> None:
        body = data.draw(mutated_body(case.body), label="body")
        before = server.stored()
        reply = http.post(server.url + case.formatted_path, data=body, headers=headers, timeout=10)
        answered_as_documented_or_changed_nothing(server, reply, path, before, body)
        answer = reply.json()
        if caller == "cluster" and reply.status_code == 200 and "credential" in answer:
            headers["Authorization"] = f"Bearer {answer['credential']}"

    mutated()
