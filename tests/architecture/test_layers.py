"""The one dependency rule, checked on the sources: see docs/architecture.md.

contract <- backup? no: `contract` and `backup` stand alone; `cluster` and `mission_control`
depend on both and never on each other, not even inside a function.
"""

from __future__ import annotations

from collections import defaultdict

import pytest
from import_graph import Edge, cycles, edges

#: For each package, the packages of the project it may import.
ALLOWED = {
    "contract": {"contract"},
    "backup": {"backup"},
    "cluster": {"cluster", "contract", "backup"},
    "mission_control": {"mission_control", "contract", "backup"},
}


def _package(module: str) -> str:
    return module.split(".")[0]


def test_the_graph_is_read() -> None:
    found = list(edges())
    assert len(found) > 500
    assert any(e.source.startswith("cluster.") and _package(e.target) == "contract" for e in found)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_package_imports_only_what_the_rule_allows(package: str) -> None:
    wrong = [
        str(e)
        for e in edges()
        if _package(e.source) == package and _package(e.target) not in ALLOWED[package]
    ]
    assert wrong == [], "\n".join(wrong)


def test_no_import_cycles() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for edge in edges():
        if edge.source != edge.target:
            graph[edge.source].add(edge.target)
    assert cycles(graph) == []


def test_cycles_are_found() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_edges_name_their_line() -> None:
    assert str(Edge("cluster.x", "contract.y", 3)) == "cluster.x:3 imports contract.y"
