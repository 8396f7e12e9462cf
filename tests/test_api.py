"""The public API: exports, docstrings, result conversions, and import direction."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

import fairalloc as fa

SRC = Path(fa.__file__).resolve().parent
EXAMPLE = SRC.parent.parent / "examples" / "elderly-care"


def test_all_is_complete_and_documented() -> None:
    helpers = {"annotations", "Any", "TYPE_CHECKING", "sys", "types"}
    public = {n for n in dir(fa) if not n.startswith("_")} - helpers
    # Subpackages appear as attributes once imported; they are namespaces, not API.
    modules = {n for n in public if inspect.ismodule(getattr(fa, n))}
    assert public - modules == set(fa.__all__) - {"__version__"}
    for name in fa.__all__:
        obj = getattr(fa, name)
        if name != "__version__":
            assert inspect.getdoc(obj), f"{name} has no docstring"


def test_public_methods_have_docstrings() -> None:
    for cls in (
        fa.Evaluation,
        fa.Ranking,
        fa.Population,
        fa.CompiledPolicy,
        fa.Policy,
        fa.IdColumn,
    ):
        for name, member in vars(cls).items():
            if name.startswith("_") or (not callable(member) and not isinstance(member, property)):
                continue
            assert inspect.getdoc(member), f"{cls.__name__}.{name} has no docstring"


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


def test_a_missing_optional_library_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    result = fa.evaluate(fa.load_policy(EXAMPLE / "policy.yaml"), EXAMPLE / "residents.csv")
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if it were not installed
    with pytest.raises(fa.MissingDependency, match=r"pip install 'fairalloc\[pandas\]'") as info:
        result.ranking.to_pandas()
    assert isinstance(info.value, ImportError)
    assert info.value.extra == "pandas"


def test_import_is_light_and_names_load_on_first_use() -> None:
    import subprocess
    import sys

    code = (
        "import sys, fairalloc as fa\n"
        "heavy = [m for m in ('numpy', 'pydantic', 'fairalloc._engine') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert callable(fa.evaluate) and callable(fa.explain)\n"
        "import fairalloc.explain\n"
        "assert callable(fa.explain)  # the function, not the subpackage\n"
        "assert fa.analysis.with_parameters\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
