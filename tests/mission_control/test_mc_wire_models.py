"""Every message a cluster sends is parsed into its model of the shared contract, and every
reply it gets is one: one model per message, end to end (`contract.messages`)."""

from __future__ import annotations

import pytest

from mission_control.api.routes import ROUTES
from mission_control.openapi import Route

CLUSTER_ROUTES = [r for r in ROUTES if r.auth == "cluster"]


def _name(route: Route) -> str:
    return f"{route.method} {route.path}"


def test_there_are_cluster_routes() -> None:
    assert len(CLUSTER_ROUTES) >= 10


@pytest.mark.parametrize("route", CLUSTER_ROUTES, ids=_name)
def test_cluster_routes_speak_contract_models(route: Route) -> None:
    if route.method == "POST":
        assert route.request is not None, "a cluster message without a model"
        assert route.request.__module__ == "contract.messages"
    if route.content != "application/json":  # a file of the release repository, TUF-verified
        assert route.method == "GET" and route.reply is None
        return
    assert route.reply is not None and route.reply.__module__ == "contract.messages"


def test_every_route_of_the_contract_is_served_with_its_models() -> None:
    """What the cluster's client sends by (`contract.routes`) is what Mission Control serves."""
    from contract.routes import ROUTES as CONTRACT

    served = {r.path: r for r in CLUSTER_ROUTES if r.method == "POST"}
    for route in CONTRACT.values():
        path = f"/api/v1/clusters/{{cluster_id}}/{route.path}"
        assert path in served, f"{route.kind}: Mission Control serves no {path}"
        assert served[path].request is route.message, route.kind
        assert served[path].reply is route.reply, route.kind
