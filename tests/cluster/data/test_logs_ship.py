"""`managed logs ship`: the environment's capture rules fetched from a node and applied on this
host before sending (`capture_record`, checked on its own below: the node applies the same rules
again, so the store alone could not tell where masking happened)."""

from __future__ import annotations

import json
from pathlib import Path

from clusterkit import ClusterUnderTest, managed
from datakit import DataCluster

from cluster.cli.logs import capture_record
from contract.privacy.rules import DEFAULT_RULES


def test_logs_ship_masks_before_sending(cluster: ClusterUnderTest, tmp_path: Path) -> None:
    dc = DataCluster.create(cluster)
    dc.start(1)
    dc.cli("env", "create", "prod")
    dc.cli("env", "create", "stage")
    dc.cli("env", "rule", "add", "prod", "customer", "--pattern", r"customer=\w+",
           "--replacement", "customer=<masked>")  # fmt: skip
    ingest = dc.cli("token", "create", "--env", "prod", "--scope", "ingest").strip()
    reader = dc.cli("token", "create", "--scope", "read", "--for", "alice").strip()
    dc.wait_token_known(ingest, ["n1"])
    dc.wait_token_known(reader, ["n1"])
    log = tmp_path / "app.log"
    log.write_text(
        "paid with 4111 1111 1111 1111 from 203.0.113.9 customer=ann\n"
        + json.dumps(
            {"message": "ip 10.0.0.8", "level": "warn", "attributes": {"card": "5500000000000004"}}
        )  # fmt: skip
        + "\n\nplain line\n"
    )
    url = f"https://{dc.data['n1']}"
    ca = str(dc.tls.ca_cert)
    # A forwarder needs no cluster credential: only the node's URL, its CA and the token.
    for _ in range(50):
        r = managed("logs", "ship", str(log), "--env", "prod", "--url", url, "--token", ingest,
                    "--ca-file", ca)  # fmt: skip
        if "unknown or revoked" not in r.stderr:
            break
    assert r.returncode == 0, r.stderr
    assert "shipped 3 record(s) to prod, masked with 3 rule(s)" in r.stdout
    rows = dc.read("logs", "--env", "prod", token=reader)["rows"]
    messages = sorted(row["message"] for row in rows)
    assert messages == [
        "ip <masked>",
        "paid with <masked> from <masked> customer=<masked>",
        "plain line",
    ]
    [warned] = [row for row in rows if row["level"] == "warn"]
    assert warned["attributes"] == {"card": "<masked>"}
    # The token names its environment: shipping it as another one is refused, nothing sent.
    r = managed("logs", "ship", str(log), "--env", "stage", "--url", url, "--token", ingest,
                "--ca-file", ca)  # fmt: skip
    assert r.returncode == 1 and "writes environment prod, not stage" in r.stderr
    assert len(dc.read("logs", "--env", "prod", token=reader)["rows"]) == 3


def test_capture_record_masks_what_leaves_the_host() -> None:
    assert capture_record("card 4111111111111111 ip 10.1.2.3", DEFAULT_RULES) == {
        "message": "card <masked> ip <masked>"
    }
    line = json.dumps({"message": "from 10.1.2.3", "level": "error", "attributes": {"a": "x"}})
    assert capture_record(line, DEFAULT_RULES) == {
        "message": "from <masked>",
        "level": "error",
        "attributes": {"a": "x"},
    }
    assert capture_record("x" * 5000, ())["message"] == "x" * 4096
