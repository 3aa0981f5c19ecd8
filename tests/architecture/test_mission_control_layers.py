"""Mission Control's layers, checked on the sources: see docs/architecture.md.

    api, console  ->  service  ->  db

- `db` (tables, engine, migrations) imports no other layer: only itself and `errors`.
- `service` imports neither `api` nor `console`: it does not know who calls it.
- `service.rules` is pure: no database, and nothing of the service that does I/O.
- `console` imports no `api` and no `db`: it reads through service queries, never tables.
- `api` imports no `console` and no `db`: it translates HTTP into service calls.
"""

from __future__ import annotations

import pytest
from import_graph import edges

MC = "mission_control"

#: layer -> the modules of Mission Control it must never import (prefixes).
FORBIDDEN = {
    f"{MC}.db": (f"{MC}.service", f"{MC}.console", f"{MC}.api", f"{MC}.app"),
    f"{MC}.service": (f"{MC}.console", f"{MC}.api", f"{MC}.app", f"{MC}.cli"),
    f"{MC}.console": (f"{MC}.api", f"{MC}.db"),
    f"{MC}.api": (f"{MC}.console", f"{MC}.db"),
}

#: What the pure rules may import from the project.
RULES = f"{MC}.service.rules"
RULES_MAY_IMPORT = ("contract", RULES)


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_nothing_above_or_beside_it(layer: str) -> None:
    wrong = [
        str(e)
        for e in edges()
        if _within(e.source, layer) and any(_within(e.target, f) for f in FORBIDDEN[layer])
    ]
    assert wrong == [], "\n".join(wrong)


def test_db_imports_only_itself_and_errors() -> None:
    allowed = (f"{MC}.db", f"{MC}.errors")
    wrong = [
        str(e)
        for e in edges()
        if _within(e.source, f"{MC}.db")
        and _within(e.target, MC)
        and not any(_within(e.target, a) for a in allowed)
    ]
    assert wrong == [], "\n".join(wrong)


def test_rules_are_pure() -> None:
    found = [e for e in edges() if _within(e.source, RULES)]
    assert found, "service.rules has no imports to check: was it moved?"
    wrong = [str(e) for e in found if not any(_within(e.target, a) for a in RULES_MAY_IMPORT)]
    assert wrong == [], "\n".join(wrong)


def test_the_rules_catch_a_violation() -> None:
    """The prefixes match modules, not names that merely start alike."""
    assert _within(f"{MC}.db.schema", f"{MC}.db")
    assert not _within(f"{MC}.dbx", f"{MC}.db")
    assert _within(f"{MC}.api", f"{MC}.api")
