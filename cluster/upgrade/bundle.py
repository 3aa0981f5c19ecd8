"""An offline release bundle (`mission-control releases publish` writes it) as a TUF fetcher.

A bundle is a tar of `metadata/*.json` and `targets/releases/<version>/<file>`. The TUF client
(`tuf.ngclient.Updater`) reads it through `BundleFetcher` exactly as it would read the
repository over HTTPS, so the same checks apply offline.

Guarantees: members are read into memory with bounded sizes (never extracted to disk by name,
so a hostile path cannot escape); a missing file answers as HTTP 404 would. Nothing here is
trusted: the Updater verifies every byte against the pinned root.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from pathlib import Path

from tuf.api.exceptions import DownloadHTTPError

from cluster.errors import ClusterError
from cluster.upgrade.fetchers import ReleaseFetcher

METADATA_URL = ReleaseFetcher.metadata_url
TARGETS_URL = ReleaseFetcher.targets_url
MAX_BUNDLE_BYTES = 512 << 20


class BundleError(ClusterError):
    """The file is not a readable release bundle."""


class BundleFetcher(ReleaseFetcher):
    def __init__(self, path: Path) -> None:
        self.name = path.name
        self.files: dict[str, bytes] = {}
        try:
            if path.stat().st_size > MAX_BUNDLE_BYTES:
                raise BundleError(f"{path}: larger than {MAX_BUNDLE_BYTES >> 20} MiB")
            with tarfile.open(path, mode="r:*") as tar:
                for member in tar.getmembers():
                    if not member.isfile():
                        continue
                    f = tar.extractfile(member)
                    if f is not None:
                        self.files[member.name.lstrip("./")] = f.read()
        except (tarfile.TarError, OSError) as e:
            raise BundleError(f"{path}: not a release bundle ({e})") from None

    def releases(self) -> list[str]:
        """The release versions the bundle carries files for."""
        return sorted(
            {
                n.split("/")[2]
                for n in self.files
                if n.startswith("targets/releases/") and n.count("/") == 3
            }
        )

    def release_files(self, version: str) -> list[str] | None:
        """Target paths (as named in targets metadata) of the bundle's files of `version`."""
        prefix = f"targets/releases/{version}/"
        return sorted(n.removeprefix("targets/") for n in self.files if n.startswith(prefix))

    def _fetch(self, url: str) -> Iterator[bytes]:
        for base, folder in ((METADATA_URL, "metadata/"), (TARGETS_URL, "targets/")):
            if url.startswith(base):
                data = self.files.get(folder + url.removeprefix(base))
                if data is None:
                    raise DownloadHTTPError(f"{url}: not in the bundle", 404)
                return iter([data])
        raise DownloadHTTPError(f"{url}: not a bundle address", 404)
