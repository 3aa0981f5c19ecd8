"""The async client a cluster's leader uses to talk to Mission Control.

Guarantees:
- TLS only, verified against `ca_file` (or the system store); plain ``http://`` is refused
  unless `insecure_http=True` (tests, loopback benchmarks). A bad URL or an unusable CA file is
  a ValueError with one clear line, raised by the constructor.
- Every call ends in a parsed reply or one of two errors (mission_control.errors):
  `MissionControlUnavailable` (connection failure, timeout, 408/429/5xx: retry the same
  message later, it is deduplicated) or `MessageRejected` (other 4xx: do not retry unchanged).
- Every message goes through `deliver(route, message)` (`contract.routes`): the route names
  the path and the reply model, so a message reaches only its own path and its reply is parsed
  into its own class. The typed methods (`health`, `heartbeat`...) are that call for one route;
  the leader's exchange stamps each queued body (`OutboxMessage.stamped`) and delivers it.

Use as ``async with MissionControlClient(url, credential=..., ca_file=...) as mc: ...`` or call
`close()` when done.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncGenerator
from types import TracebackType
from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel, ValidationError
from yarl import URL

from cluster.link.errors import MessageRejected, MissionControlUnavailable
from contract.messages import (
    AuditCheckpointCopy,
    ClusterCheckpoints,
    ClusterEvent,
    ClusterMessage,
    ConsumptionReply,
    ConsumptionReport,
    CredentialReply,
    EnrollReply,
    EnrollRequest,
    EventReply,
    HealthReply,
    HealthReport,
    Heartbeat,
    HeartbeatReply,
    LicenseCheck,
    LicenseReply,
    ReleaseOffer,
    SupportAck,
    SupportCommandResult,
    SupportDecision,
    SupportPolicyReport,
    SupportPublicKey,
    cluster_id_of,
)
from contract.releases import RELEASE_OFFER, RELEASES
from contract.routes import (
    AUDIT_CHECKPOINT,
    CONSUMPTION,
    EVENT,
    HEALTH,
    HEARTBEAT,
    LICENSE,
    SUPPORT_COMMAND_RESULT,
    SUPPORT_DECISION,
    SUPPORT_POLICY,
    SUPPORT_PUBLIC_KEY,
    Route,
)

R = TypeVar("R", bound=BaseModel)
M = TypeVar("M", bound=ClusterMessage)

_RETRYABLE = {408, 425, 429}


def verifying_context(ca_file: str | None = None, *, ca_pem: str | None = None) -> ssl.SSLContext:
    """A client TLS context that verifies the server against a CA certificate, given as a file
    (`ca_file`) or as PEM text (`ca_pem`, as the cluster stores it), or the system store.

    Raises ValueError with one clear line if the certificate cannot be read or is not valid PEM.
    """
    where = ca_file or "the stored CA certificate"
    try:
        return ssl.create_default_context(cafile=ca_file, cadata=ca_pem)
    except ssl.SSLError as error:
        reason = error.reason or str(error)
        raise ValueError(
            f"cannot use {where} as the CA certificate: it holds no valid PEM certificate "
            f"({reason})"
        ) from None
    except OSError as error:
        raise ValueError(
            f"cannot read the CA certificate {where}: {error.strerror or error}"
        ) from None


class MissionControlClient:
    def __init__(
        self,
        base_url: str,
        *,
        credential: str | None,
        ca_file: str | None = None,
        ca_pem: str | None = None,
        insecure_http: bool = False,
        timeout: float = 10,
    ) -> None:
        url = URL(base_url)
        if url.scheme not in ("https", "http") or not url.host:
            raise ValueError(f"Mission Control URL must be https://HOST[:PORT], not {base_url!r}")
        if url.scheme == "http" and not insecure_http:
            raise ValueError(f"refusing plain http:// for {base_url} (TLS is required)")
        self._base = url.with_path(url.path.rstrip("/") + "/api/v1")
        self._ssl: ssl.SSLContext | bool = (
            verifying_context(ca_file, ca_pem=ca_pem) if url.scheme == "https" else False
        )
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self.credential = credential

    @property
    def cluster_id(self) -> str | None:
        """The cluster the credential speaks for (None before enrollment)."""
        return cluster_id_of(self.credential) if self.credential else None

    async def __aenter__(self) -> MissionControlClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, connector=aiohttp.TCPConnector(ssl=self._ssl)
            )
        return self._session

    async def _post(self, path: str, body: bytes, credential: str | None) -> dict[str, Any]:
        return await self._request("POST", path, body, credential)

    async def _request(
        self, method: str, path: str, body: bytes | None, credential: str | None
    ) -> dict[str, Any]:
        """One call; the JSON object it answered, or MissionControlUnavailable (retry later) or
        MessageRejected (Mission Control refused it, with its error code)."""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if credential is not None:
            headers["Authorization"] = f"Bearer {credential}"
        url = self._base / path
        try:
            async with self._http().request(method, url, data=body, headers=headers) as response:
                text = await response.text()
                status = response.status
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            raise MissionControlUnavailable(
                f"cannot reach Mission Control at {url}: {error or type(error).__name__}"
            ) from error
        if status >= 500 or status in _RETRYABLE:
            raise MissionControlUnavailable(f"Mission Control answered {status}: {text[:200]}")
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if status >= 400:
            detail = parsed.get("error") if isinstance(parsed, dict) else None
            if isinstance(detail, dict):
                newest = detail.get("newest_epoch")
                raise MessageRejected(
                    status,
                    str(detail.get("code")),
                    str(detail.get("message")),
                    newest if isinstance(newest, int) and not isinstance(newest, bool) else None,
                )
            raise MessageRejected(status, "http_error", text[:200])
        if not isinstance(parsed, dict):
            raise MissionControlUnavailable(f"Mission Control sent a non-JSON reply ({status})")
        return parsed

    @staticmethod
    def _parse(model: type[R], raw: dict[str, Any]) -> R:
        try:
            return model.model_validate(raw)
        except ValidationError as error:
            raise MissionControlUnavailable(
                f"unexpected reply from Mission Control: {error}"
            ) from error

    async def enroll(self, token: str) -> EnrollReply:
        """Exchange the one-time token for a credential; the client keeps using it."""
        body = EnrollRequest(token=token).model_dump_json().encode()
        reply = self._parse(EnrollReply, await self._post("enroll", body, None))
        self.credential = reply.credential
        return reply

    async def rotate_credential(self) -> CredentialReply:
        """A new credential and renewal secret for the current credential (which then stops
        working); the client keeps using the new credential."""
        cluster_id = self.cluster_id
        if self.credential is None or cluster_id is None:
            raise MessageRejected(401, "unauthorized", "no cluster credential: enroll first")
        path = f"clusters/{cluster_id}/credential/rotate"
        reply = self._parse(CredentialReply, await self._post(path, b"{}", self.credential))
        self.credential = reply.credential
        return reply

    async def renew_credential(self, cluster_id: str, renewal_secret: str) -> CredentialReply:
        """After Mission Control revoked the credential for a leak: a new pair for the renewal
        secret (which is sent nowhere else)."""
        path = f"clusters/{cluster_id}/credential/renew"
        reply = self._parse(CredentialReply, await self._post(path, b"{}", renewal_secret))
        self.credential = reply.credential
        return reply

    async def deliver(self, route: Route[M, R], message: M) -> R:
        """Send `message` by its route; its reply, parsed. A message of another class than the
        route's is a programming error (TypeError), never sent."""
        if type(message) is not route.message:
            raise TypeError(f"{type(message).__name__} does not travel by {route.kind}")
        cluster_id = self.cluster_id
        if self.credential is None or cluster_id is None:
            raise MessageRejected(401, "unauthorized", "no cluster credential: enroll first")
        body = message.model_dump_json().encode()
        raw = await self._post(f"clusters/{cluster_id}/{route.path}", body, self.credential)
        return self._parse(route.reply, raw)

    async def health(self, report: HealthReport) -> HealthReply:
        return await self.deliver(HEALTH, report)

    async def license_check(self, check: LicenseCheck) -> LicenseReply:
        return await self.deliver(LICENSE, check)

    async def consumption(self, report: ConsumptionReport) -> ConsumptionReply:
        return await self.deliver(CONSUMPTION, report)

    async def heartbeat(self, beat: Heartbeat) -> HeartbeatReply:
        return await self.deliver(HEARTBEAT, beat)

    async def event(self, event: ClusterEvent) -> EventReply:
        return await self.deliver(EVENT, event)

    async def support_decision(self, decision: SupportDecision) -> SupportAck:
        return await self.deliver(SUPPORT_DECISION, decision)

    async def support_command_result(self, result: SupportCommandResult) -> SupportAck:
        return await self.deliver(SUPPORT_COMMAND_RESULT, result)

    async def support_public_key(self, key: SupportPublicKey) -> SupportAck:
        return await self.deliver(SUPPORT_PUBLIC_KEY, key)

    async def support_policy(self, policy: SupportPolicyReport) -> SupportAck:
        return await self.deliver(SUPPORT_POLICY, policy)

    async def audit_checkpoint(self, copy: AuditCheckpointCopy) -> SupportAck:
        return await self.deliver(AUDIT_CHECKPOINT, copy)

    async def audit_checkpoints(self) -> ClusterCheckpoints:
        """Mission Control's copies of this cluster's signed audit checkpoints, and the key it
        pinned for the cluster (`managed audit verify` checks the local log against them)."""
        cluster_id = self.cluster_id
        if self.credential is None or cluster_id is None:
            raise MessageRejected(401, "unauthorized", "no cluster credential: enroll first")
        raw = await self._request(
            "GET", f"clusters/{cluster_id}/audit/checkpoints", None, self.credential
        )
        return self._parse(ClusterCheckpoints, raw)

    def _cluster_path(self, path: str) -> str:
        cluster_id = self.cluster_id
        if self.credential is None or cluster_id is None:
            raise MessageRejected(401, "unauthorized", "no cluster credential: enroll first")
        return f"clusters/{cluster_id}/{path}"

    async def release_offer(self) -> ReleaseOffer:
        """The release Mission Control offers this cluster (`version` None: none)."""
        raw = await self._request("GET", self._cluster_path(RELEASE_OFFER), None, self.credential)
        return self._parse(ReleaseOffer, raw)

    async def release_file(self, path: str, chunk: int = 1 << 16) -> AsyncGenerator[bytes, None]:
        """Stream a file of the release repository (`path` under `releases/`: `metadata/...`
        or `targets/releases/...`). MessageRejected(404) when Mission Control has no such
        file; MissionControlUnavailable as for every call. Nothing streamed is trusted: the
        caller's TUF client verifies it."""
        url = self._base / self._cluster_path(f"{RELEASES}/{path}")
        headers = {"Authorization": f"Bearer {self.credential}"}
        try:
            slow = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60)
            async with self._http().get(url, headers=headers, timeout=slow) as response:
                if response.status >= 500 or response.status in _RETRYABLE:
                    raise MissionControlUnavailable(f"Mission Control answered {response.status}")
                if response.status >= 400:
                    text = (await response.text())[:200]
                    raise MessageRejected(response.status, "http_error", text)
                async for data in response.content.iter_chunked(chunk):
                    yield data
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            raise MissionControlUnavailable(
                f"cannot fetch {path} from Mission Control: {error or type(error).__name__}"
            ) from error
