"""Leak reports (`POST /api/v1/leaks`, GitHub's secret scanning partner format) on a real
in-process server, SQLite and PostgreSQL: who may report, what is revoked within the request,
the alert and audit, and the cluster's way back (renewal, rotation)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from mc_api import Api, serving_api
from mc_kit import FakeClock
from mc_messages import health_json
from mcs_staff import staff_token as new_staff_token
from sqlalchemy import select, update

from contract.credentials import CredentialKind, kind_of
from mission_control.db.schema import audit_log, clusters
from mission_control.service.accounts.bearer import digest
from mission_control.service.exchange import alert_store
from mission_control.service.fleet import enrollment
from mission_control.service.fleet.leak_reporters import (
    KEY_ID_HEADER,
    SIGNATURE_HEADER,
    ReporterKeysError,
    load_reporter_keys,
)

KEY_ID = "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a"
REPORTER = ec.generate_private_key(ec.SECP256R1())
STRANGER = ec.generate_private_key(ec.SECP256R1())


def _keys_document(path: Path) -> Path:
    pem = REPORTER.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    doc = {"public_keys": [{"key_identifier": KEY_ID, "key": pem.decode(), "is_current": True}]}
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture
async def api(migrated_url: str, clock: FakeClock, tmp_path: Path) -> AsyncIterator[Api]:
    keys = _keys_document(tmp_path / "secret_scanning.json")
    async with serving_api(migrated_url, clock, leak_reporter_keys_file=keys) as served:
        yield served


def _report(*tokens: str) -> bytes:
    return json.dumps(
        [
            {
                "token": t,
                "type": "managed_cluster_credential",
                "url": "https://github.com/octo/repo/blob/abc/deploy.env",
                "source": "content",
            }
            for t in tokens
        ]
    ).encode()


def _signed(body: bytes, key: ec.EllipticCurvePrivateKey = REPORTER) -> dict[str, str]:
    signature = key.sign(body, ec.ECDSA(hashes.SHA256()))
    return {KEY_ID_HEADER: KEY_ID, SIGNATURE_HEADER: base64.b64encode(signature).decode()}


async def _post(api: Api, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    async with api.http.post(api.url + path, data=body, headers=headers) as response:
        return response.status, await response.json()


async def _health(api: Api, cluster: str, credential: str) -> tuple[int, Any]:
    return await api.call("POST", f"/api/v1/clusters/{cluster}/health", health_json(1), credential)


async def _events(api: Api, action: str) -> list[dict[str, Any]]:
    async with api.admin.engine.connect() as conn:
        rows = (await conn.execute(select(audit_log).where(audit_log.c.action == action))).all()
    return [dict(row._mapping) for row in rows]


async def test_a_signed_report_revokes_in_the_request_and_the_cluster_renews(api: Api) -> None:
    created = await enrollment.create_cluster(api.admin, "acme", "EU")
    status, enrolled = await api.call("POST", "/api/v1/enroll", {"token": created.enrollment_token})
    assert status == 200
    cluster, credential = enrolled["cluster_id"], enrolled["credential"]
    renewal = enrolled["renewal_secret"]
    assert kind_of(credential) is CredentialKind.CLUSTER
    assert kind_of(renewal) is CredentialKind.RENEWAL
    assert (await _health(api, cluster, credential))[0] == 200  # and now cached

    # Renewal is refused while the credential stands: a leaked renewal secret alone buys nothing.
    renew = f"/api/v1/clusters/{cluster}/credential/renew"
    assert (await api.call("POST", renew, {}, renewal))[0] == 401

    body = _report(credential, "mcc_" + "0" * 68)
    status, verdicts = await _post(api, "/api/v1/leaks", body, _signed(body))
    assert status == 200, verdicts
    assert [v["label"] for v in verdicts] == ["true_positive", "false_positive"]
    assert verdicts[0]["token_hash"] == hashlib.sha256(credential.encode()).hexdigest()
    assert credential not in json.dumps(verdicts)

    status, refused = await _health(api, cluster, credential)
    assert (status, refused["error"]["code"]) == (401, "credential_revoked")
    [alert] = await alert_store.list_alerts(api.admin)
    assert alert.kind == "credential_leaked" and alert.severity == "critical"
    assert "renews its credential by itself" in alert.detail
    [leaked] = await _events(api, "cluster.credential.leaked")
    assert leaked["cluster"] == cluster and "secret scanner" in leaked["actor_name"]
    assert "github.com/octo/repo" in leaked["detail"]

    status, renewed = await api.call("POST", renew, {}, renewal)
    assert status == 200, renewed
    assert (await _health(api, cluster, renewed["credential"]))[0] == 200
    assert (await api.call("POST", renew, {}, renewal))[0] == 401  # the secret worked once
    assert (await _health(api, cluster, credential))[0] == 401
    assert await _events(api, "cluster.credential.renewed")

    # The alert stays for a person to acknowledge.
    assert [a.kind for a in await alert_store.list_alerts(api.admin)] == ["credential_leaked"]


async def test_reports_need_a_trusted_signature_or_an_operator(api: Api) -> None:
    cluster, credential = await api.enroll("acme")
    body = _report(credential)
    forged = {**_signed(body, STRANGER)}
    other_body = _report("mct_" + "1" * 36)
    refusals = [
        (await _post(api, "/api/v1/leaks", body, {}))[0],
        (await _post(api, "/api/v1/leaks", body, forged))[0],
        (await _post(api, "/api/v1/leaks", body, _signed(other_body)))[0],  # another body
        (await _post(api, "/api/v1/leaks", body, {**_signed(body), KEY_ID_HEADER: "nope"}))[0],
        (await _post(api, "/api/v1/leaks", body, {**_signed(body), SIGNATURE_HEADER: "!"}))[0],
    ]
    assert refusals == [401] * 5
    viewer = await new_staff_token(api.admin, "vera", "support-l2")
    assert (await api.call("POST", "/api/v1/leaks", raw=body, token=viewer))[0] == 403
    assert (await _health(api, cluster, credential))[0] == 200  # nothing was revoked

    operator = await new_staff_token(api.admin, "olga", "operator")
    leaked_staff = await new_staff_token(api.admin, "sam", "support-l3")
    both = _report(credential, leaked_staff)
    status, verdicts = await api.call("POST", "/api/v1/leaks", raw=both, token=operator)
    assert status == 200 and [v["label"] for v in verdicts] == ["true_positive"] * 2
    assert (await api.call("GET", "/api/v1/clusters", token=leaked_staff))[0] == 401
    assert (await _health(api, cluster, credential))[0] == 401
    [event] = await _events(api, "staff.token.leaked")
    assert event["subject"] == "sam" and event["actor_name"] == "olga"

    bad = [(b"[]", 422), (b"{}", 422), (b"not json", 400)]
    for raw, expected in bad:
        assert (await api.call("POST", "/api/v1/leaks", raw=raw, token=operator))[0] == expected


async def test_rotation_voids_the_old_pair_and_old_credentials_rotate_too(api: Api) -> None:
    cluster, credential = await api.enroll("acme")
    rotate = f"/api/v1/clusters/{cluster}/credential/rotate"
    status, rotated = await api.call("POST", rotate, {}, credential)
    assert status == 200 and rotated["cluster_id"] == cluster
    assert (await _health(api, cluster, credential))[0] == 401
    assert (await _health(api, cluster, rotated["credential"]))[0] == 200
    assert (await api.call("POST", rotate, {}, credential))[0] == 401
    other, other_credential = await api.enroll("beta")
    assert (await api.call("POST", rotate, {}, other_credential))[0] == 403


async def test_an_enrollment_token_reported_leaked_cannot_be_spent(api: Api) -> None:
    created = await enrollment.create_cluster(api.admin, "acme", "EU")
    operator = await new_staff_token(api.admin, "olga", "operator")
    body = _report(created.enrollment_token)
    status, verdicts = await api.call("POST", "/api/v1/leaks", raw=body, token=operator)
    assert status == 200 and verdicts[0]["label"] == "true_positive"
    status, _ = await api.call("POST", "/api/v1/enroll", {"token": created.enrollment_token})
    assert status == 401


def test_a_bad_keys_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"public_keys": [{"key_identifier": "x", "key": "no"}]}')
    for path in (tmp_path / "bad.json", tmp_path / "missing.json"):
        with pytest.raises(ReporterKeysError) as caught:
            load_reporter_keys(path)
        assert str(path) in str(caught.value) and "\n" not in str(caught.value)
    assert load_reporter_keys(_keys_document(tmp_path / "good.json")).keys.keys() == {KEY_ID}


async def test_a_credential_of_the_older_format_works_until_rotated(api: Api) -> None:
    cluster, _ = await api.enroll("acme")
    old = f"mcc.{cluster}.{'x' * 43}"  # as issued before the checksummed format
    async with api.admin.engine.begin() as conn:
        await conn.execute(
            update(clusters).where(clusters.c.id == cluster).values(credential_hash=digest(old))
        )
    assert (await _health(api, cluster, old))[0] == 200
    rotate = f"/api/v1/clusters/{cluster}/credential/rotate"
    status, rotated = await api.call("POST", rotate, {}, old)
    assert status == 200 and kind_of(rotated["credential"]) is CredentialKind.CLUSTER
    assert (await _health(api, cluster, old))[0] == 401
    assert (await _health(api, cluster, rotated["credential"]))[0] == 200
