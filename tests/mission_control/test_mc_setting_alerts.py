"""setting_changed events over HTTP (SQLite and PostgreSQL): the alert they raise, its audit
entries, and operators acknowledging it (API and `mission-control alerts acknowledge`)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from click.testing import CliRunner, Result
from mc_api import Api
from mcs_staff import staff_token

from mission_control.cli import main


def event(kind: str, detail: str = "", **fields: Any) -> dict[str, Any]:
    return {"message_id": str(uuid.uuid4()), "epoch": 1, "kind": kind, "detail": detail, **fields}


async def test_a_changed_setting_raises_an_alert_until_an_operator_acknowledges_it(
    api: Api,
) -> None:
    cluster, credential = await api.enroll("acme")
    path = f"/api/v1/clusters/{cluster}/events"
    operator = await staff_token(api.admin, "olga", "operator")
    engineer = await staff_token(api.admin, "sam", "support-l2")
    admin = await staff_token(api.admin, "root", "admin")

    first = event("setting_changed", "fingerprint SHA256:ab12", setting="backup.public_key")
    assert (await api.call("POST", path, first, credential))[0] == 200
    _, listed = await api.call("GET", "/api/v1/alerts", token=operator)
    (alert,) = listed["alerts"]
    assert (alert["kind"], alert["severity"], alert["cluster_name"]) == (
        "setting_changed",
        "warning",
        "acme",
    )
    assert alert["detail"] == "backup key changed: fingerprint SHA256:ab12"

    # One open alert per cluster: a later change updates it; a resend changes nothing.
    second = event("setting_changed", "https://mc.example", setting="mission_control.url")
    assert (await api.call("POST", path, second, credential))[0] == 200
    status, reply = await api.call("POST", path, second, credential)
    assert status == 200 and reply["duplicate"] is True
    _, listed = await api.call("GET", "/api/v1/alerts", token=operator)
    (alert,) = listed["alerts"]
    assert alert["detail"] == "Mission Control URL changed: https://mc.example"
    # Backup events do not clear it.
    assert (await api.call("POST", path, event("backup_succeeded", "backup x: ok"), credential))[
        0
    ] == 200
    assert len((await api.call("GET", "/api/v1/alerts", token=operator))[1]["alerts"]) == 1

    # Every change is in Mission Control's audit log.
    _, audit = await api.call("GET", "/api/v1/audit?action=cluster.setting_changed", token=admin)
    assert [(e["subject"], e["detail"]["detail"]) for e in audit["entries"]] == [
        ("mission_control.url", "https://mc.example"),
        ("backup.public_key", "fingerprint SHA256:ab12"),
    ]

    acknowledge = f"/api/v1/alerts/{alert['id']}/acknowledge"
    status, reply = await api.call("POST", acknowledge, token=engineer)
    assert (status, reply["error"]["code"]) == (403, "forbidden")
    status, reply = await api.call("POST", acknowledge, token=operator)
    assert status == 200 and reply["cleared_at"] is not None
    assert (await api.call("GET", "/api/v1/alerts", token=operator))[1]["alerts"] == []
    status, reply = await api.call("POST", acknowledge, token=operator)
    assert (status, reply["error"]["code"]) == (409, "invalid_state")
    for bogus in ("999999", "x", "99999999999999999999"):
        status, _ = await api.call("POST", f"/api/v1/alerts/{bogus}/acknowledge", token=operator)
        assert status == 404
    _, audit = await api.call("GET", "/api/v1/audit?action=alert.acknowledged", token=admin)
    (entry,) = audit["entries"]
    assert entry["actor"]["name"] == "olga" and entry["subject"] == str(alert["id"])

    # A new change raises a new alert; alerts that their own condition clears are not
    # acknowledged by hand.
    third = event("setting_changed", "approval -> allowed", setting="support.mode")
    assert (await api.call("POST", path, third, credential))[0] == 200
    assert (await api.call("POST", path, event("backup_failed", "backup y: S3"), credential))[
        0
    ] == 200
    _, listed = await api.call("GET", "/api/v1/alerts", token=operator)
    by_kind = {a["kind"]: a for a in listed["alerts"]}
    assert by_kind["setting_changed"]["detail"] == "support mode changed: approval -> allowed"
    failed = by_kind["backup_failed"]["id"]
    status, reply = await api.call("POST", f"/api/v1/alerts/{failed}/acknowledge", token=admin)
    assert status == 409 and "clears when its condition ends" in reply["error"]["message"]


async def test_setting_and_kind_must_go_together(api: Api) -> None:
    cluster, credential = await api.enroll("acme")
    path = f"/api/v1/clusters/{cluster}/events"
    for body in (
        event("setting_changed", "no setting named"),
        event("backup_failed", "x", setting="backup.target"),
        event("setting_changed", "x", setting="backup.bogus"),
    ):
        status, reply = await api.call("POST", path, body, credential)
        assert (status, reply["error"]["code"]) == (422, "invalid_request"), reply
    assert await api.stored_messages() == 0


async def test_the_cli_lists_and_acknowledges(api: Api, migrated_url: str) -> None:
    cluster, credential = await api.enroll("acme")
    body = event("setting_changed", "s3://elsewhere", setting="backup.target")
    path = f"/api/v1/clusters/{cluster}/events"
    assert (await api.call("POST", path, body, credential))[0] == 200

    def cli(*args: str) -> Result:  # in a thread: the command runs its own event loop
        return CliRunner().invoke(main, [*args, "--db", migrated_url])

    listed = await asyncio.to_thread(cli, "alerts", "list")
    assert "backup target changed: s3://elsewhere" in listed.stdout
    alert_id = listed.stdout.splitlines()[1].split()[0]
    done = await asyncio.to_thread(cli, "alerts", "acknowledge", alert_id)
    assert done.exit_code == 0 and "closed" in done.stderr
    again = await asyncio.to_thread(cli, "alerts", "acknowledge", alert_id)
    assert again.exit_code == 1 and "was closed at" in again.stderr
