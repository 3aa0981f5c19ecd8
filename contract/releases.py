"""What a cluster and Mission Control share about releases: where the vendor's TUF repository
is served to a cluster, and what a release version looks like.

Under ``/api/v1/clusters/{cluster_id}/releases/`` (the cluster's credential, like every
cluster route): ``metadata/<file>`` (``<n>.root.json``, ``timestamp.json``, ``snapshot.json``,
``targets.json``), ``targets/releases/<version>/<file>`` (as named in the signed targets) and
``offer`` (its reply: `contract.messages.ReleaseOffer`). Nothing served there is trusted by the
cluster: its TUF client verifies every byte.
"""

from __future__ import annotations

import re

#: The path under ``/api/v1/clusters/{cluster_id}/`` of the release repository.
RELEASES = "releases"
RELEASE_METADATA = f"{RELEASES}/metadata"
RELEASE_TARGETS = f"{RELEASES}/targets"
RELEASE_OFFER = f"{RELEASES}/offer"
#: Version strings a release may have: digits and dots, optionally a suffix (PEP 440-like).
RELEASE_VERSION = re.compile(r"^\d+(\.\d+){0,3}([a-z]+\d*)?$")
