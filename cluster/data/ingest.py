"""What a node does with a beacon or a batch of log records before storing it: validate, then
mask at ingest (the environment's processing rules, for log records) and at storage (IP, URI
and user-tag settings of the application, for beacons). Pure: no I/O.

Guarantees: input is checked whole before anything is returned, so a malformed beacon or batch
raises `BadInput` (one line, the 4xx the API answers) and nothing of it is stored. A beacon from
a browser with Do Not Track on becomes an anonymous session (no user tag, the address masked
whatever the IP setting says) or nothing, as the application chooses; in opt-in mode a beacon
without the page's consent becomes nothing. Input values of forms are not part of a beacon at
all (the browser script never reads them).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cluster.data.settings import DataSettingsError, Environment, check_data_name
from cluster.data.store import ActionRow, LogRow, SessionRow
from contract.privacy.detectors import mask_detected
from contract.privacy.ip import mask_ip
from contract.privacy.rules import apply_rules_many
from contract.privacy.uri import mask_uri

MAX_BEACON_BYTES = 64 * 1024
MAX_LOG_BYTES = 1024 * 1024
MAX_EVENTS = 200
MAX_LOG_RECORDS = 5000
MAX_TEXT = 4096
MAX_ATTRIBUTES = 50
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
LEVELS = {"trace", "debug", "info", "warn", "warning", "error", "fatal", "critical"}


class BadInput(ValueError):
    """The request's content is malformed; nothing of it is stored."""


@dataclass(frozen=True)
class Beacon:
    session: SessionRow
    actions: tuple[ActionRow, ...]


def _text(doc: Mapping[str, Any], name: str, limit: int, where: str, default: Any = ...) -> Any:
    value = doc.get(name, default)
    if value is ...:
        raise BadInput(f"{where}: {name} is missing")
    if value is None and default is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise BadInput(f"{where}: {name} must be a string of at most {limit} characters")
    return value


def _time(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadInput(f"{where}: a time in milliseconds since the epoch")
    return float(value) / 1000.0


def parse_json_object(body: bytes, where: str) -> Mapping[str, Any]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadInput(f"{where} is not valid JSON") from None
    if not isinstance(doc, dict):
        raise BadInput(f"{where} must be a JSON object")
    return doc


def prepare_beacon(
    doc: Mapping[str, Any],
    env: Environment,
    client_ip: str,
    user_agent: str | None,
    dnt_header: bool,
    now: float,
) -> Beacon | None:
    """The rows to store for one beacon, masked; None when nothing may be stored."""
    app_name = _text(doc, "app", 32, "beacon")
    try:
        check_data_name("application", app_name)
    except DataSettingsError as e:
        raise BadInput(f"beacon: {e}") from None
    session_id = _text(doc, "session", 64, "beacon")
    if not SESSION_ID.fullmatch(session_id):
        raise BadInput("beacon: session must be 8 to 64 letters, digits, '-' or '_'")
    user_tag = _text(doc, "user_tag", 256, "beacon", None)
    dnt = doc.get("dnt", False)
    consent = doc.get("consent", False)
    if not isinstance(dnt, bool) or not isinstance(consent, bool):
        raise BadInput("beacon: dnt and consent are true or false")
    events = doc.get("events")
    if not isinstance(events, list) or not 1 <= len(events) <= MAX_EVENTS:
        raise BadInput(f"beacon: events must be a list of 1 to {MAX_EVENTS} events")
    app = env.app(app_name)
    anonymous = dnt or dnt_header
    mask_text = mask_detected if app.uri_masking else _same
    mask_page = mask_uri if app.uri_masking else _same
    actions = []
    for i, event in enumerate(events):
        where = f"beacon event {i}"
        if not isinstance(event, dict):
            raise BadInput(f"{where}: not an object")
        kind = event.get("type")
        if kind not in ("load", "action"):
            raise BadInput(f"{where}: type must be load or action")
        duration = event.get("duration_ms")
        if duration is not None and (
            isinstance(duration, bool)
            or not isinstance(duration, int | float)
            or not 0 <= duration < 1e9
        ):
            raise BadInput(f"{where}: duration_ms must be a number of milliseconds")
        actions.append(
            ActionRow(
                env=env.name,
                session_id=session_id,
                at=_time(event.get("at"), where),
                kind=kind,
                name=mask_text(_text(event, "name", 256, where, "")),
                page=mask_page(_text(event, "page", 2048, where)),
                duration_ms=None if duration is None else float(duration),
            )
        )
    if (anonymous and app.dnt == "nothing") or (app.opt_in and not consent):
        return None  # checked after validation: a malformed beacon is refused either way
    ip = mask_ip(client_ip, "all" if anonymous else app.ip_masking)
    session = SessionRow(
        env=env.name,
        id=session_id,
        app=app_name,
        started_at=min(a.at for a in actions) if actions else now,
        user_tag=user_tag if app.user_tags and not anonymous else None,
        ip=ip,
        user_agent=user_agent[:512] if user_agent else None,
        anonymous=anonymous,
    )
    return Beacon(session, tuple(actions))


def _same(text: str) -> str:
    return text


#: A validated log record before masking: time, level, message, attributes.
Record = tuple[float, str, str, dict[str, str]]


def _log_record(doc: Any, where: str, now: float) -> Record:
    if not isinstance(doc, dict):
        raise BadInput(f"{where}: not a JSON object")
    message = _text(doc, "message", MAX_TEXT, where)
    level = str(_text(doc, "level", 16, where, "info")).lower()
    if level not in LEVELS:
        raise BadInput(f"{where}: level must be one of {', '.join(sorted(LEVELS))}")
    at = doc.get("timestamp")
    stamp = now if at is None else _time(at, where)
    attributes = doc.get("attributes", {})
    if not isinstance(attributes, dict) or len(attributes) > MAX_ATTRIBUTES:
        raise BadInput(f"{where}: attributes must be an object of at most {MAX_ATTRIBUTES}")
    for key, value in attributes.items():
        if len(key) > 128 or not isinstance(value, str) or len(value) > MAX_TEXT:
            raise BadInput(f"{where}: attribute {key[:40]!r} must be a string")
    return stamp, level, message, attributes


def _masked_rows(records: list[Record], env: Environment) -> list[LogRow]:
    """The rows to store: the records after the environment's processing rules, all texts of
    the batch at once (`apply_rules_many` is several times faster per record than one text at
    a time), each row built once."""
    if not env.rules:
        return [LogRow(env.name, *record) for record in records]
    texts = [record[2] for record in records]
    texts += [value for record in records if record[3] for value in record[3].values()]
    masked = apply_rules_many(texts, env.rules)
    if len(masked) == len(records):  # no attributes: the usual batch
        return [
            LogRow(env.name, at, level, message, attrs)
            for (at, level, _, attrs), message in zip(records, masked, strict=True)
        ]
    values = iter(masked[len(records) :])
    return [
        LogRow(env.name, at, level, message, {k: next(values) for k in attrs} if attrs else attrs)
        for (at, level, _, attrs), message in zip(records, masked, strict=False)
    ]


def prepare_log_lines(body: bytes, env: Environment, now: float) -> list[LogRow]:
    """JSON lines, one record each: `{"message", "level"?, "timestamp"? (ms), "attributes"?}`."""
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise BadInput("log records must be UTF-8") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not 1 <= len(lines) <= MAX_LOG_RECORDS:
        raise BadInput(f"send 1 to {MAX_LOG_RECORDS} log records, one JSON object per line")
    records = []
    for n, line in enumerate(lines, 1):
        try:
            doc = json.loads(line)
        except ValueError:
            raise BadInput(f"log record on line {n} is not valid JSON") from None
        records.append(_log_record(doc, f"log record on line {n}", now))
    return _masked_rows(records, env)


def _otlp_value(value: Any) -> str:
    if isinstance(value, dict):
        for key in ("stringValue", "intValue", "doubleValue", "boolValue"):
            if key in value:
                return str(value[key])
    raise BadInput("OTLP: only string, int, double and bool values are accepted")


def prepare_otlp(body: bytes, env: Environment, now: float) -> list[LogRow]:
    """OTLP/HTTP logs in JSON (`ExportLogsServiceRequest`): body, severityText, timeUnixNano
    and attributes of each record (resource and scope attributes are left out)."""
    doc = parse_json_object(body, "OTLP logs")
    records = []
    try:
        for resource in doc.get("resourceLogs", []):
            for scope in resource.get("scopeLogs", []):
                records.extend(scope.get("logRecords", []))
    except (AttributeError, TypeError):
        raise BadInput(
            "OTLP logs: resourceLogs, scopeLogs and logRecords must be lists of objects"
        ) from None
    if not 1 <= len(records) <= MAX_LOG_RECORDS:
        raise BadInput(f"OTLP logs: send 1 to {MAX_LOG_RECORDS} log records")
    rows = []
    for i, record in enumerate(records):
        where = f"OTLP log record {i}"
        if not isinstance(record, dict):
            raise BadInput(f"{where}: not an object")
        nanos = record.get("timeUnixNano")
        try:
            at_ms = int(nanos) / 1e6 if nanos not in (None, "0", 0) else None
        except (TypeError, ValueError):
            raise BadInput(f"{where}: timeUnixNano must be an integer") from None
        attributes = record.get("attributes", [])
        if not isinstance(attributes, list):
            raise BadInput(f"{where}: attributes must be a list")
        flat = {}
        for attribute in attributes:
            if not isinstance(attribute, dict) or not isinstance(attribute.get("key"), str):
                raise BadInput(f"{where}: an attribute needs a key")
            flat[attribute["key"]] = _otlp_value(attribute.get("value"))
        severity = str(record.get("severityText") or "info").lower()
        doc_row = {
            "message": _otlp_value(record.get("body")),
            "level": severity if severity in LEVELS else "info",
            "timestamp": at_ms,
            "attributes": flat,
        }
        rows.append(_log_record(doc_row, where, now))
    return _masked_rows(rows, env)
