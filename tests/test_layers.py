"""Imports point downstream: every module of fairalloc has a layer, and no import climbs.

The layer table below is the one place that says which part of the library may import which;
``docs/design.md`` describes it. Every import counts, at the top of a module or inside a
function, except those under ``if TYPE_CHECKING:`` (never executed). The few deferred imports
that climb on purpose are listed in ``ALLOWED`` with the reason, and the design notes name each.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Iterator
from pathlib import Path

import fairalloc as fa

SRC = Path(fa.__file__).resolve().parent

#: Module (dotted, below ``fairalloc``) -> layer. A module takes the layer of its longest
#: listed prefix; a module with no listed prefix fails the test, so new packages get a place.
LAYERS: dict[str, int] = {
    "errors": 0,
    "_html": 0,
    "_escape": 0,
    "_arrays": 0,
    "_ids": 0,
    "_io": 0,
    "_optional": 0,
    "_text": 0,
    "_numeric": 1,
    "expr": 1,
    "policy._model": 1,
    "policy._load": 1,
    "policy._tables": 1,
    "_tables": 1,
    "_compiler": 2,
    "_instruments": 2,
    "_population": 2,
    "_csvread": 2,
    # The policy package's entry points load *and* check a policy, which compiles it.
    "policy": 3,
    "_evaluation": 3,
    "_ranking": 3,
    "_explainable": 3,
    "_engine": 4,
    "allocation": 5,
    "explain": 6,
    "audit": 7,
    "review": 8,
    "events": 9,
    "analysis": 8,
    "records": 8,
    "publish": 8,
    # Allocation over a Dask DataFrame: the engine and the one-process allocation, per partition.
    "cluster": 8,
    "__init__": 9,
    "plot": 10,
    "testing": 10,
    # The web service calls the public API, the records and the review like any program would.
    "serve": 10,
    "cli": 11,
}

#: (importing module, imported module) -> why the arrow climbs; each is deferred into the
#: function that needs it and described in docs/design.md.
ALLOWED: dict[tuple[str, str], str] = {
    ("_explainable", "explain"): (
        "results offer result.explain(id); the renderers load only when an explanation is asked"
    ),
}


def layer_of(module: str) -> int | None:
    """The layer of a dotted module name below ``fairalloc`` (``None`` when unlisted)."""
    parts = module.split(".")
    for k in range(len(parts), 0, -1):
        found = LAYERS.get(".".join(parts[:k]))
        if found is not None:
            return found
    return None


def _module_name(root: Path, path: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            inside.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    return inside


def _targets(root: Path, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The fairalloc modules an import statement loads (dotted, below ``fairalloc``)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name == "fairalloc":
                yield "__init__"
            elif alias.name.startswith("fairalloc."):
                yield alias.name.removeprefix("fairalloc.")
        return
    if node.level or not node.module or node.module.split(".")[0] != "fairalloc":
        return
    base = node.module.removeprefix("fairalloc").lstrip(".")
    for alias in node.names:
        sub = f"{base}.{alias.name}" if base else alias.name
        path = root.joinpath(*sub.split("."))
        if path.with_suffix(".py").exists() or (path / "__init__.py").exists():
            yield sub  # `from fairalloc.policy import _model` imports the submodule
        else:
            yield base or "__init__"


def upward_imports(root: Path) -> list[str]:
    """Every import in the package at ``root`` that climbs to a higher layer, as text."""
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        mine = _module_name(root, path)
        my_layer = layer_of(mine)
        if my_layer is None:
            found.append(f"{mine}: no layer in the table")
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        type_only = _type_checking_nodes(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom) or id(node) in type_only:
                continue
            for target in _targets(root, node):
                theirs = layer_of(target)
                if theirs is None or theirs <= my_layer:
                    continue
                top = (mine.split(".")[0], target.split(".")[0])
                if top not in ALLOWED:
                    found.append(f"{mine} (layer {my_layer}) imports {target} (layer {theirs})")
    return found


def test_imports_point_downstream() -> None:
    assert upward_imports(SRC) == []


def test_allowed_exceptions_are_documented() -> None:
    design = (SRC.parent.parent / "docs" / "design.md").read_text(encoding="utf-8")
    for importer, imported in ALLOWED:
        assert f"`{importer}` → `{imported}`" in design


def test_a_planted_upward_import_fails(tmp_path: Path) -> None:
    root = tmp_path / "fairalloc"
    (root / "allocation").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "explain.py").write_text("")
    (root / "allocation" / "__init__.py").write_text(
        textwrap.dedent(
            """
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                from fairalloc.explain import Explanation  # type-only: allowed
            def allocate():
                import fairalloc as fa  # climbs to the facade
                from fairalloc import explain  # climbs to a higher package
                return fa, explain
            """
        )
    )
    assert upward_imports(root) == [
        "allocation (layer 5) imports __init__ (layer 9)",
        "allocation (layer 5) imports explain (layer 6)",
    ]


def test_an_unlisted_module_fails(tmp_path: Path) -> None:
    root = tmp_path / "fairalloc"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "newthing.py").write_text("")
    assert upward_imports(root) == ["newthing: no layer in the table"]
