"""The release repository served to clusters, and each cluster's offer (docs/releases.md).

`GET /api/v1/clusters/{cluster_id}/releases/metadata/{name}` and
`.../releases/targets/releases/{version}/{file}` stream the files of the repository named by
`--releases-repo` (`mission_control.service.releases.files` decides what may be answered);
`.../releases/offer` names the release offered to the cluster. All three take the cluster's
credential, checked before anything else, like every cluster route: a caller without one
learns nothing, not even whether a file exists.
"""

from __future__ import annotations

from aiohttp import web

from contract.messages import ReleaseOffer
from contract.releases import RELEASE_METADATA, RELEASE_OFFER, RELEASE_TARGETS
from mission_control.api.auth import require_own_cluster
from mission_control.api.bodies import json_reply
from mission_control.api.handlers import authenticate_cluster
from mission_control.app_keys import CONTEXT, SETTINGS
from mission_control.openapi import Route
from mission_control.service.releases import files, offers

PREFIX = "/api/v1/clusters/{cluster_id}/"
FILE = "application/octet-stream"
_ERRORS = (401, 403, 404, 503)


async def _own_cluster(request: web.Request) -> str:
    cluster_id = await authenticate_cluster(request)
    require_own_cluster(cluster_id, request.match_info["cluster_id"])
    return cluster_id


async def release_metadata(request: web.Request) -> web.StreamResponse:
    await _own_cluster(request)
    repo = request.app[SETTINGS].releases_repo
    found = files.metadata_file(repo, request.match_info["name"])
    return web.FileResponse(found, headers={"Content-Type": FILE, "Cache-Control": "no-store"})


async def release_target(request: web.Request) -> web.StreamResponse:
    await _own_cluster(request)
    repo = request.app[SETTINGS].releases_repo
    found = files.target_file(repo, request.match_info["version"], request.match_info["file"])
    return web.FileResponse(found, headers={"Content-Type": FILE})


async def release_offer(request: web.Request) -> web.StreamResponse:
    cluster_id = await _own_cluster(request)
    return json_reply(await offers.offer_for(request.app[CONTEXT], cluster_id))


RELEASE_ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        PREFIX + RELEASE_METADATA + "/{name}",
        release_metadata,
        "getReleaseMetadata",
        "A TUF metadata file of the vendor's release repository (<n>.root.json, timestamp.json, "
        "snapshot.json, targets.json), streamed; the cluster verifies it.",
        reply=None,
        auth="cluster",
        errors=_ERRORS,
        content=FILE,
    ),
    Route(
        "GET",
        PREFIX + RELEASE_TARGETS + "/releases/{version}/{file}",
        release_target,
        "getReleaseFile",
        "A file of a release as named in the signed targets (releases/<version>/<file>), "
        "streamed; the cluster checks its length and hash.",
        reply=None,
        auth="cluster",
        errors=_ERRORS,
        content=FILE,
    ),
    Route(
        "GET",
        PREFIX + RELEASE_OFFER,
        release_offer,
        "getReleaseOffer",
        "The release Mission Control offers this cluster (version null: none).",
        reply=ReleaseOffer,
        auth="cluster",
        errors=(401, 403, 503),
    ),
)
