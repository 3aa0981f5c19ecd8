"""Releases fetched from Mission Control: a TUF fetcher over the cluster's Mission Control
client (TLS verified against the CA the cluster enrolled with, the cluster's credential).

The TUF client (`tuf.ngclient.Updater`, run by `cluster.upgrade.verify`) is synchronous and runs
in a worker thread (or the CLI); `MissionControlFetcher` drives the asyncio client on a private
event loop of its own, one chunk at a time, so a release file is streamed to the TUF client's
temporary file, never held whole. The credential goes only to the Mission Control URL of the
cluster's config, and only over the client's verified TLS.

Guarantees: a missing file answers as HTTP 404 (the TUF client's "no newer root"); an
unreachable or refusing Mission Control is `FetchFailed`, which verification turns into
`ReleaseUnavailable` (no verdict, nothing recorded), never into a refusal of the release.
Nothing fetched is trusted here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Generator, Iterator

from tuf.api.exceptions import DownloadHTTPError

from cluster.errors import ClusterError
from cluster.link.client import MissionControlClient
from cluster.link.credentials import CREDENTIAL_SECRET
from cluster.link.errors import MessageRejected, MissionControlUnavailable
from cluster.link.settings import Link
from cluster.paths import ClusterPaths
from cluster.secrets import read_secret
from cluster.upgrade.fetchers import FetchFailed, ReleaseFetcher
from cluster.zk import ZooKeeper


class NotEnrolled(ClusterError):
    """The cluster has no Mission Control link or credential to fetch releases with."""


def mission_control_client(
    client: ZooKeeper, paths: ClusterPaths, auth: str | None, config: dict[str, object]
) -> MissionControlClient:
    """The cluster's Mission Control client (its link from `config`, its credential from the
    secrets); NotEnrolled when it has none."""
    link = Link.from_config(config)
    if link is None:
        raise NotEnrolled("not enrolled with Mission Control: run `managed mc enroll URL TOKEN`")
    credential = read_secret(client, paths, auth, CREDENTIAL_SECRET)
    if credential is None:
        raise NotEnrolled("this cluster holds no Mission Control credential: enroll again")
    try:
        return MissionControlClient(
            link.url, credential=credential.decode(), ca_pem=link.ca_pem or None, timeout=30
        )
    except ValueError as e:
        raise NotEnrolled(str(e)) from None


class MissionControlFetcher(ReleaseFetcher):
    """Release `version` from Mission Control's repository. Use from one thread with no
    running event loop (a worker thread, or the CLI); `close()` when done."""

    def __init__(self, mc: MissionControlClient, version: str) -> None:
        self.mc = mc
        self.version = version
        self.name = "Mission Control"
        self._loop = asyncio.new_event_loop()
        # Streams the TUF client may leave half-read (it stops at a length mismatch): closed
        # by `close()` while the loop still runs.
        self._streams: list[Generator[bytes, None, None]] = []

    def releases(self) -> list[str]:
        return [self.version]

    def release_files(self, version: str) -> list[str] | None:
        return None  # the repository holds every file the signed targets name

    def _fetch(self, url: str) -> Iterator[bytes]:
        for base, folder in ((self.metadata_url, "metadata/"), (self.targets_url, "targets/")):
            if url.startswith(base):
                stream = self._stream(folder + url.removeprefix(base))
                self._streams.append(stream)
                return stream
        raise DownloadHTTPError(f"{url}: not a release address", 404)

    def _stream(self, path: str) -> Generator[bytes, None, None]:
        chunks: AsyncGenerator[bytes, None] = self.mc.release_file(path)
        try:
            while True:
                try:
                    yield self._loop.run_until_complete(anext(chunks))
                except StopAsyncIteration:
                    return
                except MessageRejected as e:
                    if e.status == 404:
                        raise DownloadHTTPError(f"{path}: not at Mission Control", 404) from None
                    raise FetchFailed(f"Mission Control refused {path}: {e}") from None
                except MissionControlUnavailable as e:
                    raise FetchFailed(str(e)) from None
        finally:
            if not self._loop.is_closed():
                self._loop.run_until_complete(chunks.aclose())

    def close(self) -> None:
        for stream in self._streams:
            stream.close()
        self._streams.clear()
        if not self._loop.is_closed():
            self._loop.run_until_complete(self.mc.close())
            self._loop.close()
