"""kazoo is imported only inside the ZooKeeper boundary (`cluster/zk/`): see docs/architecture.md.

Every other module of `cluster` talks to ZooKeeper through the boundary's typed API. Imports are
read from the sources, wherever they stand: at the top of a module, inside a function, or under
`if TYPE_CHECKING:`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from import_graph import modules

#: The only modules that may import kazoo: the session and its requests, ZooKeeper's errors,
#: and ACL entries.
BOUNDARY = {"cluster.zk.client", "cluster.zk.errors", "cluster.zk.acl"}


def kazoo_lines(source: str) -> list[int]:
    """The lines of `source` that import kazoo or one of its modules."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        if any(name.split(".")[0] == "kazoo" for name in names):
            lines.append(node.lineno)
    return lines


def kazoo_imports() -> Iterator[tuple[str, int]]:
    """(module, line) of every kazoo import in `cluster`."""
    for module, path in modules().items():
        if module.split(".")[0] == "cluster":
            for line in kazoo_lines(path.read_text()):
                yield module, line


def test_kazoo_is_imported_only_by_the_boundary() -> None:
    wrong = [f"{m}:{line} imports kazoo" for m, line in kazoo_imports() if m not in BOUNDARY]
    assert wrong == [], "\n".join(wrong)


def test_the_boundary_is_found() -> None:
    """The check reads the sources it means to: every boundary module imports kazoo."""
    assert {m for m, _ in kazoo_imports()} == BOUNDARY


def test_imports_inside_functions_and_type_checking_count() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from kazoo.client import KazooClient\n"
        "def f():\n"
        "    import kazoo.exceptions as e\n"
        "import kazooish\n"
    )
    assert kazoo_lines(source) == [3, 5]
