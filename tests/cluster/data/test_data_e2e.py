"""Monitoring data end to end on three real nodes: environments, tokens, HTTPS ingest on every
node, masking at ingest and storage, display masking with and without `sensitive-data`, search
by user tag, outsiders refused with nothing stored, remask and forget across the nodes."""

from __future__ import annotations

import json
import time
from pathlib import Path

from clusterkit import ClusterUnderTest
from datakit import DataCluster, beacon, https, load

SHOP = "https://shop.example.com"
CORPUS = json.loads(
    (Path(__file__).parents[2] / "unit" / "privacy" / "masking_corpus.json").read_text()
)


def _setup(dc: DataCluster) -> tuple[str, str, str]:
    """prod with app `shop` (user tags on, URI masking on) and app `corpus` (URI masking on);
    an ingest token, alice's and bob's read tokens (alice will hold sensitive-data). Settings
    first: a node that accepts a token has the settings made before it."""
    assert "created" in dc.cli("env", "create", "prod")
    dc.cli("env", "app", "prod", "shop", "--user-tags", "--uri-masking")
    dc.cli("env", "app", "prod", "corpus", "--uri-masking")
    ingest = dc.cli("token", "create", "--env", "prod", "--scope", "ingest").strip()
    alice = dc.cli("token", "create", "--scope", "read", "--for", "alice").strip()
    bob = dc.cli("token", "create", "--scope", "read", "--for", "bob").strip()
    return ingest, alice, bob


def _wait_token(dc: DataCluster, node: str, token: str) -> None:
    """Nodes refresh their tokens every second: wait until `node` knows this one (and those
    created before it)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status, _ = dc.request(node, "/v1/capture-rules", token=token)
        if status != 401:
            return
        time.sleep(0.1)
    raise AssertionError(f"{node} never accepted the token")


def test_ingest_read_mask_search_remask_forget_on_three_nodes(cluster: ClusterUnderTest) -> None:
    dc = DataCluster.create(cluster)
    nodes = dc.start(3)
    ingest, alice, bob = _setup(dc)
    for n in nodes:
        _wait_token(dc, n, bob)  # the last one created

    # Beacons to n1 and n2, one per person; the page's card number is masked at storage.
    for node, session, tag in (("n1", "sess-ann-0001", "ann@example.com"),
                               ("n2", "sess-bob-0001", "bob@example.com")):  # fmt: skip
        page = f"{SHOP}/checkout/123456?card=4111111111111111"
        status, _ = dc.request(
            node, "/v1/beacon", beacon("shop", session, load(page), user_tag=tag), token=ingest
        )
        assert status == 204
    # The golden corpus's URIs as pages of one beacon into n2 (app `corpus`, URI masking on,
    # user tags off): masked at storage.
    now_ms = time.time() * 1000  # recent: the retention sweep keeps them while the test reads
    pages = [load(uri, at=now_ms + i) for i, (uri, _) in enumerate(CORPUS["uri"])]
    status, _ = dc.request("n2", "/v1/beacon", beacon("corpus", "sess-corpus-01", *pages),
                           token=ingest)  # fmt: skip
    assert status == 204
    # The golden corpus's log lines into n3: the new environment's rules mask at ingest.
    lines = "\n".join(json.dumps({"message": text}) for text, _ in CORPUS["log_default"])
    status, answer = dc.request(n := "n3", "/v1/logs", lines.encode(), token=ingest)
    assert (status, answer["stored"]) == (200, len(CORPUS["log_default"])), answer
    del n

    # bob reads from every node, merged; user tags masked: he lacks sensitive-data.
    sessions = dc.read("sessions", "--env", "prod", token=bob)
    assert sessions["missing"] == {}
    tagged = [r for r in sessions["rows"] if r["app"] == "shop"]
    assert sorted(r["node"] for r in tagged) == ["n1", "n2"]
    assert {r["user_tag"] for r in tagged} == {"*****"}
    assert {r["ip"] for r in sessions["rows"]} == {"127.0.0.0"}  # masked by default
    assert len(sessions["rows"]) == 3  # stored before each beacon was answered
    actions = dc.read("actions", "--env", "prod", "--limit", "500", token=bob)["rows"]
    shop = {a["page"] for a in actions if a["app"] == "shop"}
    assert shop == {f"{SHOP}/checkout/<masked>?card=<masked>"}
    corpus = sorted((a["at"], a["page"]) for a in actions if a["app"] == "corpus")
    assert [page for _, page in corpus] == [masked for _, masked in CORPUS["uri"]]
    logs = dc.read("logs", "--env", "prod", token=bob)["rows"]
    assert sorted(r["message"] for r in logs) == sorted(m for _, m in CORPUS["log_default"])

    # The help-desk case: search by e-mail, see that person's sessions only, still masked.
    found = dc.read("sessions", "--env", "prod", "--user-tag", "ann@example.com", token=bob)
    assert found["rows"] and all(r["app"] == "shop" for r in found["rows"])
    assert [r["id"] for r in found["rows"]] == ["sess-ann-0001"]
    assert found["rows"][0]["user_tag"] == "*****"
    # With sensitive-data (granted to alice, audited) the tag is shown.
    dc.cli("data", "sensitive-data", "grant", "alice")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = dc.read("sessions", "--env", "prod", token=alice)["rows"]
        if {r["user_tag"] for r in rows} == {"ann@example.com", "bob@example.com", None}:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(rows)
    text = cluster.cli("data", "sessions", "--env", "prod", "--token", bob,
                       "--ca-file", str(dc.tls.ca_cert))  # fmt: skip
    assert "*****" in text.stdout and "ann@" not in text.stdout

    # Remask: a rule added later reaches what is stored already, on every node.
    dc.cli("env", "rule", "add", "prod", "mails", "--detector", "email")
    out = dc.cli("data", "remask", "--env", "prod")
    assert "n3: {'logs': 1, 'actions': 0}" in out, out
    logs = dc.read("logs", "--env", "prod", token=bob)["rows"]
    assert not any("ann@example.com" in r["message"] for r in logs)

    # Forget: ann's sessions leave every node; bob's stay; backups are named.
    out = dc.cli("data", "forget", "--env", "prod", "--user-tag", "ann@example.com", "--yes")
    assert "n1: {'sessions': 1, 'actions': 1}" in out and "no existing backup" in out, out
    rows = dc.read("sessions", "--env", "prod", token=alice)["rows"]
    assert sorted(r["id"] for r in rows) == ["sess-bob-0001", "sess-corpus-01"]

    # Every change above is in the audit log, the user tag only as its hash.
    audit = cluster.cli("audit", "log", "--json").stdout
    audited = ["data.env.created", "data.privacy.changed", "data.token.created"]
    audited += ["data.sensitive.granted", "data.rule.added", "data.remask", "data.forget"]
    for action in audited:
        assert action in audit, action
    assert "ann@example.com" not in audit


def test_outsiders_and_bad_input_get_4xx_and_store_nothing(cluster: ClusterUnderTest) -> None:
    dc = DataCluster.create(cluster)
    dc.start(1)
    ingest, alice, bob = _setup(dc)
    _wait_token(dc, "n1", bob)  # the last one created
    good = beacon("shop", "sess-0000001", load(f"{SHOP}/"))
    forged = ingest[:-12] + "0" * 12  # right shape, wrong secret and checksum
    cases = [
        ("/v1/beacon", good, None, 401),  # no token
        ("/v1/beacon", good, forged, 401),  # forged
        ("/v1/beacon", good, alice, 403),  # a read token cannot write
        ("/v1/beacon", b"{not json", ingest, 400),
        ("/v1/beacon", b"[]", ingest, 400),
        ("/v1/beacon", beacon("shop", "x", load(SHOP)), ingest, 400),  # session id too short
        ("/v1/beacon", beacon("Shop!", "sess-0000001", load(SHOP)), ingest, 400),
        ("/v1/beacon", beacon("shop", "sess-0000001", {"type": "keypress"}), ingest, 400),
        ("/v1/beacon", b"{" + b" " * 70_000 + b"}", ingest, 413),
        ("/v1/logs", b'{"message": "ok"}\n{"message": 5}', ingest, 400),  # all or nothing
        ("/v1/logs", b'{"message": "x"}\n' * 10 + b"x" * 1_100_000, ingest, 413),
        ("/v1/logs", b'{"message": "ok"}', alice, 403),
        ("/v1/data/sessions?env=prod", None, ingest, 403),  # an ingest token cannot read
        ("/v1/data/sessions?env=prod", None, forged, 401),
        ("/v1/data/sessions?env=prod", None, None, 401),
    ]
    for path, body, token, expected in cases:
        status, answer = dc.request("n1", path, body, token=token)
        assert status == expected, (path, body and body[:40], status, answer)
        assert isinstance(answer, dict) and answer["error"], answer
    for kind in ("sessions", "actions", "logs"):
        assert dc.read(kind, "--env", "prod", token=alice)["rows"] == [], kind
    # /rum.js needs a valid ingest token too; the health routes stay as they are.
    status, _ = https(dc.url("n1", "/rum.js?app=shop&token=" + forged), dc.tls.ca_cert)
    assert status == 401
    status, script = https(dc.url("n1", f"/rum.js?app=shop&token={ingest}"), dc.tls.ca_cert)
    assert status == 200 and "managedRum" in script and '"userTags": true' in script
    assert cluster.api("n1", "/health")[0] == 200
    # A wrong token for the CLI read is one clear line, exit 1.
    r = cluster.cli("data", "logs", "--env", "prod", "--token", forged,
                    "--ca-file", str(dc.tls.ca_cert))  # fmt: skip
    assert r.returncode == 1 and "unknown or revoked token" in r.stderr
    assert r.stderr.count("\n") == 1
