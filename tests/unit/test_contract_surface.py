"""The contract is imported through its surface, and the two sides never import each other."""

from __future__ import annotations

import ast
from pathlib import Path

import topics

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("pipeline", "projections", "cqrs", "bench", "tests")


def _imports(package: str) -> list[tuple[str, str]]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.append((str(path.relative_to(ROOT)), node.module))
            elif isinstance(node, ast.Import):
                found.extend((str(path.relative_to(ROOT)), alias.name) for alias in node.names)
    return found


def test_the_contract_is_imported_from_topics_only() -> None:
    inside = [
        (path, module)
        for package in PACKAGES
        for path, module in _imports(package)
        if module.startswith("topics.")
    ]
    assert inside == []


def test_the_read_side_imports_nothing_of_the_write_side() -> None:
    write_side = [
        (path, module)
        for path, module in _imports("projections")
        if module == "pipeline" or module.startswith("pipeline.")
    ]
    assert write_side == []


def test_the_surface_names_only_what_it_has() -> None:
    assert sorted(topics.__all__) == sorted(set(topics.__all__))
    assert [name for name in topics.__all__ if not hasattr(topics, name)] == []
