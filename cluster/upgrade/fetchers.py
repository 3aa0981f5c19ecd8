"""Where a release comes from, as the TUF client sees it: a fetcher (python-tuf's
`FetcherInterface`) that also says which release it carries.

Two exist: an offline bundle (`cluster.upgrade.bundle`) and Mission Control's API
(`cluster.upgrade.remote`). Neither is trusted: `cluster.upgrade.verify` runs the same TUF client
over either, against the same trusted metadata in ZooKeeper.
"""

from __future__ import annotations

import abc

from tuf.api.exceptions import DownloadError
from tuf.ngclient import FetcherInterface


class FetchFailed(DownloadError):
    """The source could not be read (unreachable, refused us): no verdict on the release."""


class ReleaseFetcher(FetcherInterface):
    """A TUF fetcher over one release source."""

    #: Base "URLs" the Updater is given; the fetcher maps them back to its own files.
    metadata_url = "release:/metadata/"
    targets_url = "release:/targets/"
    #: How the source is named in audit entries and refusals (a bundle's file name...).
    name = "release source"

    @abc.abstractmethod
    def releases(self) -> list[str]:
        """The release versions this source carries (a bundle must carry exactly one)."""

    @abc.abstractmethod
    def release_files(self, version: str) -> list[str] | None:
        """The target paths of `version` the source holds; None: whatever the signed targets
        name for it (a repository holds them all)."""

    def close(self) -> None:
        """Release what the fetcher holds (connections); it is not used afterwards."""
