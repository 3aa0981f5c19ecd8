"""Mission Control's API fuzzed from its own OpenAPI document (schemathesis), against a real
`mission-control serve` process: as an anonymous caller, as an enrolled cluster and as a staff
user, with valid and with invalid requests. Every answer is no server error and is what the
document promises (status, content type, body); a method a path does not serve is answered 405
with an `Allow` header naming the ones it does. Real cluster messages, mutated by hypothesis,
are answered as documented too, and a refused one stores nothing.

Bounded for CI: a few examples per operation, persona and mode, derandomized (the same cases
every run), no example database.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import urllib.request
from collections.abc import Iterator
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


@dataclass(frozen=True)
class Server:
    url: str
    cluster_id: str
    headers: dict[str, dict[str, str]]  # per persona
    schema: schemathesis.schemas.BaseSchema
    log: Path
    db: Path

    def stored(self) -> tuple[int, int]:
        """Stored messages and consumption rows: what a refused message must not change."""
        with sqlite3.connect(self.db) as conn:
            messages = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
            consumption = conn.execute("SELECT count(*) FROM consumption").fetchone()[0]
        return int(messages), int(consumption)


async def _prepare(db: str) -> tuple[str, str]:
    """A cluster record (its enrollment token) and a staff operator (an API token)."""
    engine = create_engine(db)
    try:
        ctx = service_context(make_settings(db), engine)
        created = await enrollment.create_cluster(ctx, "fuzzed", "EU")
        return created.enrollment_token, await staff_token(ctx, "ops", "operator")
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("fuzz")
    db, port, log = f"sqlite:///{base / 'mc.db'}", free_port(), base / "serve.log"
    migrate(db)
    token, staff = run_async(lambda: _prepare(db))
    with serve(db, port, log=log):
        url = f"http://127.0.0.1:{port}"
        enrolled = requests.post(f"{url}/api/v1/enroll", json={"token": token}, timeout=10).json()
        with urllib.request.urlopen(f"{url}/api/v1/openapi.json", timeout=10) as served:
            document = json.load(served)
        yield Server(
            url,
            enrolled["cluster_id"],
            {
                "anonymous": {},
                "cluster": {"Authorization": f"Bearer {enrolled['credential']}"},
                "staff": {"Authorization": f"Bearer {staff}"},
            },
            schemathesis.openapi.from_dict(document),
            log,
            base / "mc.db",
        )


def fuzz(
    server: Server,
    operation: schemathesis.APIOperation,
    persona: str,
    mode: GenerationMode,
    checks: list[CheckFunction],
) -> None:
    """Send `EXAMPLES` generated requests of `mode` for `operation` as `persona`; every answer
    must pass `checks` (the first failure, shrunk, fails the test)."""
    own = {"cluster_id": server.cluster_id} if "{cluster_id}" in operation.path else {}
    own = own if persona == "cluster" else {}  # a cluster fuzzes its own records
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=own or None)
    http = requests.Session()

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def answered_as_documented(case: schemathesis.Case) -> None:
        response = case.call(
            base_url=server.url, session=http, headers=server.headers[persona], timeout=10
        )
        case.validate_response(response, checks=checks)

    answered_as_documented()


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_answer_is_documented_and_none_is_a_server_error(
    server: Server, method: str, path: str, persona: str
) -> None:
    operation = server.schema[path][method]
    fuzz(server, operation, persona, GenerationMode.POSITIVE, POSITIVE_CHECKS)
    documented = DOCUMENT["paths"][path][method.lower()]
    if documented["parameters"] or "requestBody" in documented:  # else nothing to make invalid
        fuzz(server, operation, persona, GenerationMode.NEGATIVE, NEGATIVE_CHECKS)


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


@st.composite
def mutated_body(draw: st.DrawFn, body: dict[str, Any]) -> bytes:
    """`body` with one part of it changed: a key dropped, a value replaced by any JSON value, an
    unknown key added, a number pushed out of range, or the encoded bytes cut or garbled."""

    def paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        found = [at]
        if isinstance(value, dict):
            for k, v in value.items():
                found += paths(v, (*at, k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                found += paths(v, (*at, i))
        return found

    changed = json.loads(json.dumps(body))
    where = draw(st.sampled_from(paths(changed)[1:]))
    parent = changed
    for step in where[:-1]:
        parent = parent[step]
    how = draw(st.sampled_from(["drop", "replace", "extra", "huge", "bytes"]))
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


@settings(
    max_examples=80,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
def test_mutated_real_messages_are_answered_as_documented_and_refusals_store_nothing(
    server: Server, data: st.DataObject
) -> None:
    kind = data.draw(st.sampled_from(sorted(real_bodies(1))), label="kind")
    body = data.draw(mutated_body(real_bodies(epoch=10**6)[kind]), label="body")
    path = f"/api/v1/clusters/{{cluster_id}}/{kind}"
    documented = {int(s) for s in DOCUMENT["paths"][path]["post"]["responses"]}
    before = server.stored()
    reply = requests.post(
        f"{server.url}/api/v1/clusters/{server.cluster_id}/{kind}",
        data=body,
        headers={**server.headers["cluster"], "Content-Type": "application/json"},
        timeout=10,
    )
    assert reply.status_code in documented, (reply.status_code, reply.text, body)
    assert reply.headers["Content-Type"].startswith("application/json")
    answer = reply.json()
    if reply.status_code != 200:
        assert set(answer) == {"error"} and answer["error"]["code"], answer
        assert server.stored() == before, "a refused message changed what is stored"
