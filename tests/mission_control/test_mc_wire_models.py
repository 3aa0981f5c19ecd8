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
    assert route.reply is not None and route.reply.__module__ == "contract.messages"
