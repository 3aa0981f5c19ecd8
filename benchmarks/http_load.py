"""The ingest benchmark's load generator: a lean HTTP/1.1 keep-alive client, run as its own
process so that it measures the server, not itself.

Each simulated cluster has ONE keep-alive connection and alternates health check and heartbeat
(a fresh message_id each time). Closed loop (``rate == 0``): the next request leaves as soon
as the reply is in, so the figure is the server's capacity at that concurrency. Open loop
(``rate > 0``): the clusters together send `rate` requests/s on a fixed schedule, and latency
counts from the scheduled time (a late request is charged its wait), so it is the latency a
cluster sees at that offered load.

A request costs this process a few tens of microseconds (pre-built request bytes, a minimal
response parser), against several hundred for aiohttp's client; on a 2-core machine that CPU
is taken from the server under test.

    python benchmarks/http_load.py PLAN.json RESULT.json
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

KINDS = ("health", "heartbeat")


@dataclass(frozen=True)
class Plan:
    host: str
    port: int
    clusters: list[tuple[str, str]]  # (cluster id, credential)
    bodies: dict[str, dict[str, Any]]  # kind -> body; message_id is filled in per request
    start_at: float  # wall clock (time.time()) when every loader starts sending
    warmup: float
    seconds: float
    rate: float = 0.0  # requests/s across this loader's clusters; 0 = closed loop


@dataclass
class Result:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    errors: int = 0
    cpu_s: float = 0.0  # this process's CPU time, whole run


class _Connection(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._reply: asyncio.Future[int] | None = None
        self._transport: asyncio.Transport | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self._reply is not None and not self._reply.done():
            self._reply.set_exception(ConnectionError("connection closed"))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0 or self._reply is None:
            return
        head = bytes(self._buffer[:end]).lower()
        at = head.find(b"content-length:")
        length = 0 if at < 0 else int(head[at + 15 :].split(b"\r\n", 1)[0])
        if len(self._buffer) < end + 4 + length:
            return
        status = int(head[9:12])
        del self._buffer[: end + 4 + length]
        if not self._reply.done():
            self._reply.set_result(status)

    async def request(self, payload: bytes) -> int:
        assert self._transport is not None
        self._reply = asyncio.get_running_loop().create_future()
        self._transport.write(payload)
        return await self._reply

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def _templates(plan: Plan, cluster_id: str, credential: str) -> dict[str, tuple[bytes, bytes]]:
    """Per kind: the request bytes before and after the message_id (always 36 characters)."""
    out = {}
    for kind in KINDS:
        body = json.dumps({**plan.bodies[kind], "message_id": "#" * 36}).encode()
        head = (
            f"POST /api/v1/clusters/{cluster_id}/{kind} HTTP/1.1\r\n"
            f"Host: {plan.host}:{plan.port}\r\nAuthorization: Bearer {credential}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        before, after = body.split(b"#" * 36)
        out[kind] = (head + before, after)
    return out


async def _cluster(plan: Plan, index: int, result: Result, clock: tuple[float, float]) -> None:
    cluster_id, credential = plan.clusters[index]
    templates = _templates(plan, cluster_id, credential)
    wall0, perf0 = clock
    start = perf0 + (plan.start_at - wall0)
    window = (start + plan.warmup, start + plan.warmup + plan.seconds)
    interval = len(plan.clusters) / plan.rate if plan.rate else 0.0
    due = start + (index / len(plan.clusters)) * interval
    loop = asyncio.get_running_loop()
    connection: _Connection | None = None
    n = index  # clusters start on alternating kinds, so both kinds are sent all the time
    await asyncio.sleep(max(0.0, start - time.perf_counter()))
    try:
        while time.perf_counter() < window[1]:
            if interval:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
            kind = KINDS[n % 2]
            n += 1
            before, after = templates[kind]
            payload = before + str(uuid.uuid4()).encode() + after
            sent = due if interval else time.perf_counter()
            due += interval
            try:
                if connection is None or connection.lost:
                    _, connection = await loop.create_connection(_Connection, plan.host, plan.port)
                ok = await asyncio.wait_for(connection.request(payload), 30) == 200
            except (OSError, TimeoutError, ConnectionError):
                ok, connection = False, None
            done = time.perf_counter()
            if window[0] <= done <= window[1]:
                if ok:
                    result.latencies[kind].append(done - sent)
                else:
                    result.errors += 1
    finally:
        if connection is not None:
            connection.close()


async def run(plan: Plan) -> Result:
    result = Result()
    clock = (time.time(), time.perf_counter())
    await asyncio.gather(*(_cluster(plan, i, result, clock) for i in range(len(plan.clusters))))
    return result


def main() -> None:
    plan_file, result_file = Path(sys.argv[1]), Path(sys.argv[2])
    raw = json.loads(plan_file.read_text())
    plan = Plan(**{**raw, "clusters": [tuple(c) for c in raw["clusters"]]})
    result = asyncio.run(run(plan))
    result.cpu_s = time.process_time()
    temp = result_file.with_suffix(".tmp")
    temp.write_text(json.dumps(asdict(result)))
    temp.replace(result_file)


if __name__ == "__main__":
    main()
