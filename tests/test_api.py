"""The public API: exports, docstrings, result conversions, and import direction."""

from __future__ import annotations

import ast
import inspect
import json
from pathlib import Path

import pytest

import fairalloc as fa

SRC = Path(fa.__file__).resolve().parent
EXAMPLE = SRC.parent.parent / "examples" / "elderly-care"


def test_all_is_complete_and_documented() -> None:
    public = {n for n in dir(fa) if not n.startswith("_")} - {"annotations", "dt", "os"}
    # Subpackages appear as attributes once imported; they are namespaces, not API.
    modules = {n for n in public if inspect.ismodule(getattr(fa, n))}
    assert public - modules - {"Any", "Callable"} == set(fa.__all__) - {"__version__"}
    for name in fa.__all__:
        obj = getattr(fa, name)
        if name != "__version__":
            assert inspect.getdoc(obj), f"{name} has no docstring"


def test_public_methods_have_docstrings() -> None:
    for cls in (fa.Evaluation, fa.Ranking, fa.Population, fa.CompiledPolicy, fa.Policy):
        for name, member in vars(cls).items():
            if name.startswith("_") or (not callable(member) and not isinstance(member, property)):
                continue
            assert inspect.getdoc(member), f"{cls.__name__}.{name} has no docstring"


def test_imports_point_downstream() -> None:
    """Lower layers never import higher ones (errors < policy < compiler < engine < cli)."""
    layers = {
        "errors": 0,
        "_html": 0,
        "policy": 1,
        "expr": 1,
        "_numeric": 1,
        "_compiler": 2,
        "_population": 2,
        "_evaluation": 3,
        "_explainable": 3,
        "_ranking": 3,
        "_engine": 4,
        "allocation": 5,
        "explain": 6,
        "audit": 7,
        "analysis": 8,
        "testing": 8,
        "plot": 9,
        "__init__": 9,
        "cli": 10,
    }
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).parts
        mine = layers.get(rel[0].removesuffix(".py"))
        if mine is None:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("fairalloc")
            ):
                parts = node.module.split(".")
                target = parts[1] if len(parts) > 1 else "__init__"
                theirs = layers.get(target)
                if theirs is not None and rel[0].removesuffix(".py") != target:
                    assert theirs <= mine or _type_only(tree, node), (
                        f"{'/'.join(rel)} imports {node.module}"
                    )


def _type_only(tree: ast.Module, imp: ast.ImportFrom) -> bool:
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.If)
            and "TYPE_CHECKING" in ast.unparse(node.test)
            and any(child is imp for child in ast.walk(node))
        ):
            return True
        if isinstance(node, ast.FunctionDef) and any(child is imp for child in ast.walk(node)):
            return True  # a deferred import inside a function body
    return False


@pytest.fixture(scope="module")
def result() -> fa.Evaluation:
    return fa.evaluate(fa.load_policy(EXAMPLE / "policy.yaml"), EXAMPLE / "residents.csv")


def test_result_conversions(result: fa.Evaluation) -> None:
    doc = json.loads(result.to_json())
    assert doc["policy"] == {"id": "elderly-care-places", "version": "2026.1"}
    ids = [r["id"] for r in doc["residents"]]
    assert ids == sorted(ids)
    first = result.record(result.index_of(ids[0]))
    assert first == doc["residents"][0]
    assert sum(first["points"].values()) == pytest.approx(first["score"], abs=1e-9)
    df = result.to_pandas()
    assert df.index.name == "id"
    assert {"eligible", "score", "points.need.health.adl", "grade.need"} <= set(df.columns)
    ranked = result.ranking.to_pandas()
    assert list(ranked["rank"])[:3] == [1, 2, 3]
    assert "<table>" in result._repr_html_()
    assert "<th scope='col'>rank</th>" in result.ranking._repr_html_()
    assert "144 eligible" in repr(result)
    with pytest.raises(KeyError, match="no resident with id 'nobody'"):
        result.index_of("nobody")


def test_parts_add_up_to_the_score_exactly(result: fa.Evaluation) -> None:
    assert (result.points.sum(axis=1) == result.score_micro).all()
    cp = result.policy
    need = cp.scale_paths.index("need")
    parts = [j for j, c in enumerate(cp.criteria) if c.kind == "indicator"]
    assert (result.points[:, parts].sum(axis=1) == result.scale_totals[:, need]).all()


def test_dependencies_are_exact(result: fa.Evaluation) -> None:
    deps = result.policy.dependencies()
    assert deps["rule:aged-60-plus"] == {"age"}
    assert deps["rule:waiting-time"] == {"waiting_days"}
    assert deps["indicator:need.economic.hardship"] == {"hardship"}
    readers = result.policy.readers_of("waiting_days")
    assert set(readers) == {"rule:waiting-time", "tie_break:0"}
    assert str(readers["rule:waiting-time"][0]) == "derived `months_waited` -> `waiting_days`"
    for protected in ("gender", "occupation", "ethnicity", "disability"):
        assert result.policy.readers_of(protected) == {}
