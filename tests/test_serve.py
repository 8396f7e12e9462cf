"""The web service, driven over HTTP on loopback: answers, errors, tokens, limits, logs.

A real uvicorn server runs in a thread (tests/serve_helpers.py) on an ephemeral port; the
tests call it with httpx, and compare each answer with what the library itself returns for the
same call. The command line's ``fairalloc serve`` is started as a process once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

import fairalloc as fa  # noqa: E402
from fairalloc.audit import audit  # noqa: E402
from fairalloc.errors import ServiceError  # noqa: E402
from fairalloc.publish import criteria  # noqa: E402
from fairalloc.records import verify_receipt  # noqa: E402
from fairalloc.serve import (  # noqa: E402
    ACCESS_LOGGER,
    hash_token,
    load_config,
    openapi_json,
    parse_config,
)
from tests.serve_helpers import LiveServer, wait_ready  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CARE = ROOT / "examples" / "elderly-care"
PLACES = ROOT / "examples" / "activity-places"
SLOTS = ROOT / "examples" / "facility-slots"

TOKENS = {
    "officer": ("read", "decide", "review"),
    "admin": ("admin",),
    "reader": ("read",),
    "resident": ("read",),
    "elsewhere": ("read",),
}
ME = "R0000003"
PROBLEM = "application/problem+json"


def _auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer token-of-{name}"}


def _config_doc(tmp: Path, **limits: Any) -> dict[str, Any]:
    policy = tmp / "care.yaml"
    policy.write_text((CARE / "policy.yaml").read_text(encoding="utf-8"), "utf-8")
    tokens = []
    for name, scopes in TOKENS.items():
        entry: dict[str, Any] = {"name": name, "sha256": hash_token(f"token-of-{name}")}
        entry["scopes"] = list(scopes)
        if name == "resident":
            entry["resident"] = ME
        if name == "elsewhere":
            entry["policies"] = ["places"]
        tokens.append(entry)
    return {
        "server": {"host": "127.0.0.1", "port": 0},
        "limits": {"max_body_bytes": 256 * 1024, "max_batch": 300, **limits},
        "policies": [
            {
                "name": "care",
                "file": "care.yaml",
                "residents": str(CARE / "residents.csv"),
                "log": "care.db",
            },
            {"name": "places", "file": str(PLACES / "policy.yaml"), "log": "places.db"},
            {"name": "plain", "file": str(CARE / "policy.yaml")},
            {
                "name": "slots",
                "file": str(SLOTS / "policy.yaml"),
                "residents": str(SLOTS / "residents.csv"),
            },
        ],
        "tokens": tokens,
    }


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serve")


@pytest.fixture(scope="module")
def config_file(workdir: Path) -> Path:
    path = workdir / "service.json"
    path.write_text(json.dumps(_config_doc(workdir)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def live(config_file: Path) -> Iterator[LiveServer]:
    with LiveServer(load_config(config_file)) as server:
        yield server


@pytest.fixture(scope="module")
def client(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def care(live: LiveServer) -> fa.Policy:
    return live.service.get("care").policy


@pytest.fixture(scope="module")
def pool(care: fa.Policy) -> fa.Population:
    return fa.Population.from_csv(CARE / "residents.csv", care)


def _records(population: fa.Population, rows: Any) -> list[dict[str, Any]]:
    """Residents as a JSON client sends them (dates as YYYY-MM-DD)."""
    out: list[dict[str, Any]] = json.loads(
        json.dumps(population.take(rows).to_records(), default=str)
    )
    return out


def _same(x: Any) -> Any:
    """``x`` as it reads after a trip through JSON."""
    return json.loads(json.dumps(x, ensure_ascii=False))


def _problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    doc: dict[str, Any] = r.json()
    assert doc["status"] == status
    assert doc["code"] == code, doc
    assert doc["type"] == f"urn:fairalloc:error:{code}"
    assert {"title", "detail", "message", "location"} <= set(doc)
    assert "Traceback" not in r.text
    assert 'File "' not in r.text
    return doc


# -- answers equal the library's --------------------------------------------------------------


def test_health_needs_no_token(client: httpx.Client) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "version": fa.__version__}


def test_policies_are_listed(client: httpx.Client) -> None:
    r = client.get("/v1/policies", headers=_auth("officer"))
    assert [p["name"] for p in r.json()["policies"]] == ["care", "places", "plain", "slots"]
    assert r.json()["policies"][0]["pool"] == 200
    only = client.get("/v1/policies", headers=_auth("elsewhere")).json()["policies"]
    assert [p["name"] for p in only] == ["places"]


def test_evaluation_of_residents_given(
    client: httpx.Client, care: fa.Policy, pool: fa.Population
) -> None:
    rows = _records(pool, [3, 7, 11, 150])
    r = client.post("/v1/policies/care/evaluate", json={"residents": rows}, headers=_auth("reader"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json() == json.loads(fa.evaluate(care, rows).to_json())


def test_explanations_of_residents_given(
    client: httpx.Client, care: fa.Policy, pool: fa.Population
) -> None:
    rows = _records(pool, range(20))
    body = {"residents": rows, "ids": ["R0000004", "R0000001"], "lang": "zh-CN"}
    r = client.post("/v1/policies/care/explain", json=body, headers=_auth("reader"))
    assert r.status_code == 200, r.text
    ev = fa.evaluate(care, rows)
    assert r.json()["explanations"] == [
        _same(fa.explain(ev, rid, lang="zh-CN").to_dict()) for rid in body["ids"]
    ]
    every = client.post(
        "/v1/policies/care/explain",
        json={"residents": rows[:3], "counterfactuals": False},
        headers=_auth("reader"),
    ).json()["explanations"]
    assert [e["resident"] for e in every] == ["R0000000", "R0000001", "R0000002"]
    missing = client.post(
        "/v1/policies/care/explain",
        json={"residents": rows[:3], "ids": ["R0000002", "nobody"]},
        headers=_auth("reader"),
    )
    assert _problem(missing, 404, "FA929")["location"] == "body.ids[1]"


def test_allocation_of_residents_given(
    client: httpx.Client, care: fa.Policy, pool: fa.Population
) -> None:
    rows = _records(pool, range(0, 200, 2))
    r = client.post(
        "/v1/policies/care/allocate",
        json={"residents": rows, "capacity": 7},
        headers=_auth("reader"),
    )
    assert r.status_code == 200, r.text
    assert r.json() == json.loads(fa.allocate(fa.evaluate(care, rows), capacity=7).to_json())


def test_pool_resident_and_explanation(
    client: httpx.Client, care: fa.Policy, pool: fa.Population
) -> None:
    alloc = fa.allocate(fa.evaluate(care, pool))
    row = alloc.evaluation.index_of("R0000042")
    r = client.get("/v1/policies/care/residents/R0000042", headers=_auth("reader"))
    assert r.json() == _same({**alloc.evaluation.record(row), **alloc.record(row)})
    r = client.get("/v1/policies/care/residents/R0000042/explanation", headers=_auth("reader"))
    assert r.json() == _same(alloc.explain("R0000042").to_dict())
    r = client.get(
        "/v1/policies/care/residents/R0000042/explanation",
        params={"format": "md", "lang": "zh-CN", "counterfactuals": "false"},
        headers=_auth("reader"),
    )
    expected = alloc.explain("R0000042", counterfactuals=False).render("md", "zh-CN")
    assert r.json() == {"resident": "R0000042", "format": "md", "lang": "zh-CN", "text": expected}
    assert client.get("/v1/policies/care/allocation", headers=_auth("reader")).json() == _same(
        alloc.summary()
    )
    _problem(client.get("/v1/policies/care/residents/R9", headers=_auth("reader")), 404, "FA929")
    _problem(client.get("/v1/policies/plain/residents/R9", headers=_auth("reader")), 409, "FA930")


def test_a_matching_policy(client: httpx.Client) -> None:
    policy = fa.load_policy(SLOTS / "policy.yaml")
    everyone = fa.Population.from_csv(SLOTS / "residents.csv", policy)
    matched = fa.match(fa.evaluate(policy, everyone))
    rid = str(matched.evaluation.ids[7])
    row = matched.evaluation.index_of(rid)
    r = client.get(f"/v1/policies/slots/residents/{rid}", headers=_auth("reader"))
    assert r.json() == _same({**matched.evaluation.record(row), **matched.record(row)})
    r = client.get(f"/v1/policies/slots/residents/{rid}/explanation", headers=_auth("reader"))
    assert r.json() == _same(fa.explain(matched, rid).to_dict())
    r = client.get("/v1/policies/slots/allocation", headers=_auth("reader"))
    assert r.json() == _same(matched.summary())
    rows = _records(everyone, range(0, 150, 3))
    r = client.post(
        "/v1/policies/slots/allocate", json={"residents": rows}, headers=_auth("reader")
    )
    assert r.json() == json.loads(fa.match(fa.evaluate(policy, rows)).to_json())


def test_validation_lists_every_problem(client: httpx.Client, pool: fa.Population) -> None:
    rows = _records(pool, [1, 2])
    ok = client.post(
        "/v1/policies/care/validate", json={"residents": rows}, headers=_auth("reader")
    )
    assert ok.json() == {"valid": True, "issues": []}
    rows[0]["age"] = "eighty"
    del rows[1]["gender"]
    bad = client.post(
        "/v1/policies/care/validate", json={"residents": rows}, headers=_auth("reader")
    ).json()
    assert bad["valid"] is False
    assert [(i["code"], i["column"], i["ids"]) for i in bad["issues"]] == [
        ("FA502", "age", ["R0000001"]),
        ("FA505", "gender", ["R0000002"]),
    ]
    # Evaluating the same records is refused with the same issues, as a problem document.
    r = client.post("/v1/policies/care/evaluate", json={"residents": rows}, headers=_auth("reader"))
    doc = _problem(r, 422, bad["issues"][0]["code"])
    assert doc["issues"] == bad["issues"]


def test_library_errors_keep_their_codes(client: httpx.Client, pool: fa.Population) -> None:
    rows = _records(pool, [3])
    body = {"residents": rows, "as_of": "1990-01-01"}
    r = client.post("/v1/policies/care/evaluate", json=body, headers=_auth("reader"))
    doc = _problem(r, 422, "FA114")
    assert doc["title"] == "The policy is not in force on that date"
    assert doc["message"].startswith("policy `elderly-care-places` is not in force on 1990-01-01")
    rows[0]["carer_hours"] = None
    r = client.post("/v1/policies/care/evaluate", json={"residents": rows}, headers=_auth("reader"))
    assert _problem(r, 422, "FA505")["location"] == "column carer_hours"


@pytest.mark.slow
def test_criteria_and_audit(client: httpx.Client, care: fa.Policy, pool: fa.Population) -> None:
    r = client.get(
        "/v1/policies/care/criteria",
        params={"lang": "zh-CN", "format": "html"},
        headers=_auth("reader"),
    )
    assert r.json()["document"] == criteria(care, lang="zh-CN", format="html")
    _problem(client.get("/v1/policies/care/audit", headers=_auth("officer")), 403, "FA926")
    r = client.get("/v1/policies/care/audit", headers=_auth("admin"))
    assert r.status_code == 200, r.text
    assert r.json() == json.loads(audit(care, pool, publication=True).to_json())


# -- the decision log --------------------------------------------------------------------------


@pytest.mark.slow
def test_decision_log_operations(
    client: httpx.Client, care: fa.Policy, pool: fa.Population
) -> None:
    base = "/v1/policies/care"
    officer, admin = _auth("officer"), _auth("admin")
    reg = {"approved_by": "committee", "approved_at": "2026-11-20", "operator": "clerk"}
    _problem(
        client.post(f"{base}/log/freeze", json={"operator": "clerk"}, headers=officer), 409, "FA712"
    )
    _problem(client.post(f"{base}/log/register", json=reg, headers=officer), 403, "FA926")
    assert client.post(f"{base}/log/register", json=reg, headers=admin).json()["record"] == 0
    freeze = client.post(f"{base}/log/freeze", json={"operator": "clerk"}, headers=officer).json()
    assert freeze["body"]["count"] == 200
    draw = {
        "freeze": freeze["record"],
        "public_randomness": "07 12 19",
        "how": "public",
        "operator": "clerk",
    }
    seed = client.post(f"{base}/log/draw", json=draw, headers=officer).json()
    _problem(client.post(f"{base}/log/draw", json=draw, headers=officer), 409, "FA707")
    decide = {"freeze": freeze["record"], "seed": seed["record"], "operator": "clerk"}
    decision = client.post(f"{base}/log/decide", json=decide, headers=officer).json()
    assert decision["body"]["served"] == fa.allocate(fa.evaluate(care, pool)).n_served
    _problem(client.post(f"{base}/log/decide", json=decide, headers=officer), 409, "FA711")
    _problem(
        client.post(f"{base}/log/decide", json={**decide, "freeze": 99}, headers=officer),
        404,
        "FA704",
    )

    # A resident's own receipt, checked against the published head.
    mine = client.post(
        f"{base}/log/receipt",
        json={"decision": decision["record"], "resident": ME},
        headers=_auth("resident"),
    )
    assert mine.status_code == 200, mine.text
    head = client.get(f"{base}/log/head", headers=_auth("resident")).json()
    assert verify_receipt(mine.json(), head).ok
    other = client.post(
        f"{base}/log/receipt",
        json={"decision": decision["record"], "resident": "R0000004"},
        headers=_auth("resident"),
    )
    _problem(other, 403, "FA927")

    verified = client.post(f"{base}/log/verify", json={}, headers=admin).json()
    assert verified["ok"] is True
    assert verified["problems"] == []
    assert verified["head"] == head
    records = client.get(f"{base}/log/records", headers=admin).json()["records"]
    assert [r["kind"] for r in records] == ["policy", "freeze", "seed", "decision"]
    assert ME not in json.dumps(records)

    # A review: opened by the review officer, answered, listed.
    waiting = min(
        (
            r
            for r in fa.allocate(fa.evaluate(care, pool)).to_dicts()
            if r["eligible"] and not r["served"]
        ),
        key=lambda r: r["position"],
    )
    opened = client.post(
        f"{base}/review/open",
        json={
            "decision": decision["record"],
            "case": "2026-R-1",
            "resident": waiting["id"],
            "grounds": "assessment entered wrongly",
            "filed": "2026-12-02",
            "operator": "officer",
            "corrections": [{"attribute": "adl_score", "value": 10, "evidence": "report 118"}],
        },
        headers=officer,
    )
    assert opened.status_code == 200, opened.text
    case = opened.json()["case"]
    answer = client.post(
        f"{base}/review/answer",
        json={"case": case, "on": "2026-12-10", "operator": "officer"},
        headers=officer,
    ).json()
    assert answer["answer"]["case"] == "2026-R-1"
    again = client.post(
        f"{base}/review/answer",
        json={"case": case, "on": "2026-12-11", "operator": "officer"},
        headers=officer,
    )
    _problem(again, 409, "FA795")
    cases = client.get(f"{base}/review/cases", params={"as_of": "2026-12-20"}, headers=officer)
    assert [(c["case"], c["state"]) for c in cases.json()["cases"]] == [("2026-R-1", "answered")]
    _problem(client.get("/v1/policies/plain/log/head", headers=officer), 409, "FA931")


def test_rotation_rounds_from_residents_given(client: httpx.Client, tmp_path: Path) -> None:
    policy = fa.load_policy(PLACES / "policy.yaml")
    everyone = fa.Population.from_csv(PLACES / "residents.csv", policy)
    base, officer = "/v1/policies/places", _auth("officer")
    reg = {"approved_by": "committee", "approved_at": "2026-11-20", "operator": "clerk"}
    client.post(f"{base}/log/register", json=reg, headers=_auth("admin"))
    state = None
    served = []
    for k, rows in enumerate((range(140), range(10, 150)), start=1):
        week = _records(everyone, rows)
        f = client.post(
            f"{base}/log/freeze", json={"operator": "c", "residents": week}, headers=officer
        ).json()
        s = client.post(
            f"{base}/log/draw",
            json={"freeze": f["record"], "operator": "c", "seed": f"week {k}", "how": "dice"},
            headers=officer,
        ).json()
        body = {
            "freeze": f["record"],
            "seed": s["record"],
            "operator": "c",
            "residents": week,
            "state": state,
            "as_of": "2026-12-01",
        }
        r = client.post(f"{base}/log/round", json=body, headers=officer)
        assert r.status_code == 200, r.text
        state = r.json()["state"]
        served.append(r.json()["round"]["served"])
    # The same two rounds by the library alone (seeds drawn in public: the same values; a seed
    # derived from public randomness would depend on each log's hiding commitments).
    from fairalloc.records import DecisionLog
    from fairalloc.review import record_round

    with DecisionLog.open(tmp_path / "mine.db") as log:
        p = log.register_policy(policy, approved_by="c", approved_at="2026-11-20", operator="c")
        mine = None
        for k, rows in enumerate((range(140), range(10, 150)), start=1):
            week = everyone.take(rows)
            f = log.freeze(p.seq, week, policy=policy, operator="c")
            s = log.draw_seed(f.seq, value=f"week {k}", how="dice", operator="c")
            rnd, _ = record_round(
                log,
                policy,
                week,
                freeze=f.seq,
                seed=s.seq,
                state=mine,
                operator="c",
                as_of=dt.date(2026, 12, 1),
            )
            mine = rnd.state
            assert _same(rnd.to_dict())["served"] == served[k - 1]


# -- tokens and residents ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({}, "no bearer token"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "not `Bearer TOKEN`"),
        ({"Authorization": "Bearer"}, "not `Bearer TOKEN`"),
        ({"Authorization": "Bearer token-of-nobody"}, "not valid"),
    ],
)
def test_missing_or_wrong_token(client: httpx.Client, headers: dict[str, str], why: str) -> None:
    r = client.get("/v1/policies/care/criteria", headers=headers)
    doc = _problem(r, 401, "FA925")
    assert r.headers["www-authenticate"] == "Bearer"
    assert why in doc["message"]
    assert doc["location"] == "header Authorization"


def test_scopes(client: httpx.Client) -> None:
    freeze = client.post(
        "/v1/policies/care/log/freeze", json={"operator": "x"}, headers=_auth("reader")
    )
    assert "`decide`" in _problem(freeze, 403, "FA926")["message"]
    review = client.get("/v1/policies/care/review/cases", headers=_auth("reader"))
    _problem(review, 403, "FA926")
    other_policy = client.get("/v1/policies/care/criteria", headers=_auth("elsewhere"))
    _problem(other_policy, 403, "FA926")
    _problem(client.get("/v1/policies/nope/criteria", headers=_auth("admin")), 404, "FA928")


def test_a_resident_reads_only_their_own_data(
    client: httpx.Client, care: fa.Policy, pool: fa.Population
) -> None:
    me = _auth("resident")
    own = client.get(f"/v1/policies/care/residents/{ME}/explanation", headers=me)
    assert own.status_code == 200
    assert own.json()["resident"] == ME
    assert client.get(f"/v1/policies/care/residents/{ME}", headers=me).json()["id"] == ME
    for path in (
        "/v1/policies/care/residents/R0000004",
        "/v1/policies/care/residents/R0000004/explanation",
    ):
        _problem(client.get(path, headers=me), 403, "FA927")
    _problem(client.get("/v1/policies/care/allocation", headers=me), 403, "FA927")
    mine = _records(pool, [3])
    r = client.post("/v1/policies/care/evaluate", json={"residents": mine}, headers=me)
    assert r.json() == json.loads(fa.evaluate(care, mine).to_json())
    others = _records(pool, [3, 4])
    r = client.post("/v1/policies/care/evaluate", json={"residents": others}, headers=me)
    assert _problem(r, 403, "FA927")["location"] == "body.residents[1].resident_id"
    r = client.post("/v1/policies/care/allocate", json={"residents": mine}, headers=me)
    _problem(r, 403, "FA927")
    assert client.get("/v1/policies/care/criteria", headers=me).status_code == 200


# -- malformed requests -----------------------------------------------------------------------


def test_malformed_json(client: httpx.Client) -> None:
    r = client.post(
        "/v1/policies/care/evaluate",
        content=b'{"residents": [{"age": 80,}]}',
        headers={**_auth("reader"), "Content-Type": "application/json"},
    )
    assert _problem(r, 400, "FA921")["location"] == "body"
    # Without a token nothing of the body is read: the answer is the missing token.
    r = client.post(
        "/v1/policies/care/evaluate",
        content=b'{"residents": [{"age": 80,}]}',
        headers={"Content-Type": "application/json"},
    )
    _problem(r, 401, "FA925")


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({"residents": 5}, "body.residents"),
        ({"residents": []}, "body.residents"),
        ({"residents": [7]}, "body.residents[0]"),
        ({}, "body.residents"),
        ({"residents": [{"resident_id": "x"}], "as_of": "yesterday"}, "body.as_of"),
        ({"residents": [{"resident_id": "x"}], "colour": "red"}, "body.colour"),
        ([1, 2], "body"),
    ],
)
def test_wrong_types(client: httpx.Client, body: Any, location: str) -> None:
    r = client.post("/v1/policies/care/evaluate", json=body, headers=_auth("reader"))
    doc = _problem(r, 422, "FA922")
    assert doc["location"] == location
    assert all("input" not in e for e in doc["errors"])  # nothing of the body echoed back


def test_wrong_query_values(client: httpx.Client) -> None:
    r = client.get(
        f"/v1/policies/care/residents/{ME}/explanation",
        params={"lang": "fr"},
        headers=_auth("reader"),
    )
    assert _problem(r, 422, "FA922")["location"] == "query.lang"


def test_oversized_bodies(client: httpx.Client, live: LiveServer) -> None:
    limit = live.config.limits.max_body_bytes
    big = json.dumps({"residents": [{"resident_id": "x" * 1000}] * (limit // 1000)}).encode()
    r = client.post(
        "/v1/policies/care/evaluate",
        content=big,
        headers={**_auth("reader"), "Content-Type": "application/json"},
    )
    _problem(r, 413, "FA923")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for k in range(0, len(big), 8192):
            yield big[k : k + 8192]

    r = client.post(
        "/v1/policies/care/evaluate",
        content=chunks(),
        headers={**_auth("reader"), "Content-Type": "application/json"},
    )
    _problem(r, 413, "FA923")


def test_batch_limit(client: httpx.Client, live: LiveServer, pool: fa.Population) -> None:
    rows = _records(pool, [0]) * (live.config.limits.max_batch + 1)
    r = client.post("/v1/policies/care/evaluate", json={"residents": rows}, headers=_auth("reader"))
    assert _problem(r, 413, "FA924")["location"] == "body.residents"


def test_not_json_routes_and_methods(client: httpx.Client) -> None:
    r = client.post(
        "/v1/policies/care/evaluate",
        content=b"residents=1",
        headers={**_auth("reader"), "Content-Type": "application/x-www-form-urlencoded"},
    )
    _problem(r, 415, "FA934")
    _problem(client.get("/v1/nothing-here", headers=_auth("reader")), 404, "FA933")
    _problem(client.get("/v1/policies/care/evaluate", headers=_auth("reader")), 405, "FA933")


def test_an_unexpected_error_is_a_generic_500(
    client: httpx.Client,
    live: LiveServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    served = live.service.get("care")
    monkeypatch.setattr(served, "outcome", object())  # a fault the service cannot foresee
    with caplog.at_level(logging.ERROR, logger="fairalloc.serve"):
        r = client.get(f"/v1/policies/care/residents/{ME}", headers=_auth("reader"))
    doc = _problem(r, 500, "FA949")
    assert doc["message"] == "the service failed to answer; the error was logged"
    assert [rec.getMessage() for rec in caplog.records if rec.name == "fairalloc.serve"] == [
        "unexpected AttributeError"
    ]


@pytest.mark.slow
@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=12,
    )
)
def test_any_json_body_gets_an_answer_or_a_problem(client: httpx.Client, body: Any) -> None:
    r = client.post("/v1/policies/care/evaluate", json=body, headers=_auth("reader"))
    assert r.status_code in (200, 400, 403, 413, 422), r.text
    if r.status_code != 200:
        assert r.headers["content-type"] == PROBLEM
        assert re.fullmatch(r"FA\d{3}", r.json()["code"])


@pytest.mark.slow
@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_generated_residents_get_the_librarys_answers(
    client: httpx.Client, care: fa.Policy, data: st.DataObject
) -> None:
    from fairalloc.testing import residents

    drawn = data.draw(residents(care, min_size=1, max_size=12))
    rows = json.loads(json.dumps(drawn, default=str))  # as a JSON client sends them
    body = {"residents": rows, "capacity": data.draw(st.integers(0, 15))}
    r = client.post("/v1/policies/care/allocate", json=body, headers=_auth("reader"))
    assert r.status_code == 200, r.text
    expected = fa.allocate(fa.evaluate(care, rows), capacity=body["capacity"])
    assert r.json() == json.loads(expected.to_json())


# -- the access log, CORS, timeouts -----------------------------------------------------------


def test_access_log_holds_no_personal_data(
    client: httpx.Client, pool: fa.Population, caplog: pytest.LogCaptureFixture
) -> None:
    rows = _records(pool, [5, 6])
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        client.get(f"/v1/policies/care/residents/{ME}/explanation", headers=_auth("resident"))
        client.post("/v1/policies/care/evaluate", json={"residents": rows}, headers=_auth("reader"))
        client.get("/v1/policies/care/residents/R0000004", headers=_auth("resident"))
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == ACCESS_LOGGER]
    assert [(x["method"], x["route"], x["status"], x["token"]) for x in lines] == [
        ("GET", "/v1/policies/{policy}/residents/{resident}/explanation", 200, "resident"),
        ("POST", "/v1/policies/{policy}/evaluate", 200, "reader"),
        ("GET", "/v1/policies/{policy}/residents/{resident}", 403, "resident"),
    ]
    text = json.dumps(lines)
    assert not re.search(r"R\d{7}", text)
    assert set(lines[0]) == {
        "time",
        "method",
        "route",
        "status",
        "ms",
        "bytes_in",
        "bytes_out",
        "token",
    }


def test_cors_is_off_by_default(client: httpx.Client) -> None:
    r = client.options(
        "/v1/policies/care/criteria",
        headers={"Origin": "https://example.org", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in r.headers


def test_cors_timeouts_and_limits_as_configured(workdir: Path, pool: fa.Population) -> None:
    doc = _config_doc(workdir, timeout_seconds=0.001)
    doc["server"]["cors_origins"] = ["https://portal.example.org"]
    doc["server"]["access_log"] = False
    config = parse_config(doc, base=workdir)
    with LiveServer(config) as server, httpx.Client(base_url=server.url) as c:
        r = c.options(
            "/v1/policies/care/criteria",
            headers={
                "Origin": "https://portal.example.org",
                "Access-Control-Request-Method": "GET",
            },
        )
        assert r.headers["access-control-allow-origin"] == "https://portal.example.org"
        rows = _records(pool, range(200))
        r = c.post("/v1/policies/care/evaluate", json={"residents": rows}, headers=_auth("reader"))
        assert "0.001 s" in _problem(r, 503, "FA932")["message"]


@pytest.mark.slow
def test_abandoned_computations_keep_their_slot(workdir: Path, pool: fa.Population) -> None:
    """A timed-out request is answered at once; its computation holds its slot until it ends."""
    doc = _config_doc(workdir, timeout_seconds=0.3, workers=1)
    doc["server"]["access_log"] = False
    doc["policies"][0]["log"] = None
    with (
        LiveServer(parse_config(doc, base=workdir)) as server,
        httpx.Client(base_url=server.url, timeout=30) as c,
    ):
        # 100 explanations, each searching counterfactuals: a second or more of work.
        body = {"residents": _records(pool, range(100))}
        slow = c.post("/v1/policies/care/explain", json=body, headers=_auth("reader"))
        _problem(slow, 503, "FA932")
        # They still compute in the only slot: a quick request waits, then times out.
        quick = c.get("/v1/policies/care/criteria", headers=_auth("reader"))
        _problem(quick, 503, "FA932")
        stop = time.monotonic() + 60
        while quick.status_code != 200 and time.monotonic() < stop:
            quick = c.get("/v1/policies/care/criteria", headers=_auth("reader"))
        assert quick.status_code == 200


# -- configuration, OpenAPI, command line ------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "location"),
    [
        (lambda d: d["tokens"][1].update(sha256="abc"), "tokens[1].sha256"),
        (lambda d: d["tokens"][0].update(scopes=["everything"]), "tokens[0].scopes[0]"),
        (lambda d: d["policies"].append(dict(d["policies"][0])), "policies"),
        (lambda d: d["limits"].update(max_batch=0), "limits.max_batch"),
        (lambda d: d.update(policies=[]), "policies"),
        (lambda d: d["server"].update(cors="*"), "server.cors"),
    ],
)
def test_configuration_errors(workdir: Path, change: Any, location: str) -> None:
    doc = _config_doc(workdir)
    change(doc)
    with pytest.raises(ServiceError) as info:
        parse_config(doc)
    assert (info.value.code, info.value.location) == ("FA940", location)


def test_configuration_files(tmp_path: Path) -> None:
    example = load_config(ROOT / "examples" / "service" / "service.toml")
    assert example.policies[0].file.resolve() == CARE / "policy.yaml"
    assert example.server.cors_origins == ()
    assert example.server.host == "127.0.0.1"
    for name, text in (("a.toml", "[server\n"), ("b.json", "{")):
        (tmp_path / name).write_text(text)
        with pytest.raises(ServiceError) as info:
            load_config(tmp_path / name)
        assert info.value.code == "FA940"
    with pytest.raises(ServiceError):
        load_config(tmp_path / "missing.toml")


def test_openapi_document_is_published(client: httpx.Client) -> None:
    committed = (ROOT / "docs" / "openapi.json").read_text(encoding="utf-8")
    assert committed == openapi_json(), "run: python docs/gen_openapi.py"
    served = client.get("/openapi.json").json()
    assert served == json.loads(committed)
    assert "/v1/policies/{policy}/residents/{resident}/explanation" in served["paths"]


def test_cli_check_and_tokens(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fairalloc.cli import main

    assert main(["serve", str(config_file), "--check"]) == 0
    out = capsys.readouterr().out
    assert "care: elderly-care-places v2026.1, pool of 200 residents, decision log" in out
    assert main(["serve", "--new-token"]) == 0
    token = re.search(r"token .*: (\S+)", capsys.readouterr().out)
    assert token is not None
    assert len(token.group(1)) >= 40
    assert main(["serve"]) == 2
    bad = config_file.with_name("bad.toml")
    bad.write_text("[[policies]]\nname = 'Care!'\nfile = 'x.yaml'\n")
    assert main(["serve", str(bad), "--check"]) == 1
    assert "FA940" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.mark.slow
def test_the_command_serves_until_interrupted(config_file: Path) -> None:
    port = _free_port()
    exe = shutil.which("fairalloc", path=str(Path(sys.executable).parent)) or "fairalloc"
    proc = subprocess.Popen(
        [exe, "serve", str(config_file), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, deadline_s=60, alive=proc)
        r = httpx.get(f"{url}/v1/policies/care/residents/{ME}", headers=_auth("reader"))
        assert r.json()["id"] == ME
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    access = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert [a["route"] for a in access] == ["/health", "/v1/policies/{policy}/residents/{resident}"]
    assert ME not in err


# -- under load -------------------------------------------------------------------------------


@pytest.mark.slow
def test_bounded_load_every_answer_is_the_librarys(
    live: LiveServer, care: fa.Policy, pool: fa.Population
) -> None:
    alloc = fa.allocate(fa.evaluate(care, pool))
    ids = [str(i) for i in alloc.evaluation.ids[::4]]
    expected_explanations = {
        rid: _same(alloc.explain(rid, counterfactuals=False).to_dict()) for rid in ids
    }
    ev = alloc.evaluation
    expected_records = {
        rid: _same({**ev.record(ev.index_of(rid)), **alloc.record(ev.index_of(rid))}) for rid in ids
    }
    duration = float(os.environ.get("FAIRALLOC_LOAD_SECONDS", "5"))
    latencies: list[float] = []
    wrong: list[str] = []

    async def one_client(k: int, c: httpx.AsyncClient, stop: float) -> None:
        n = k
        while time.monotonic() < stop:
            rid = ids[n % len(ids)]
            explain = n % 2 == 0
            path = f"/v1/policies/care/residents/{rid}" + ("/explanation" if explain else "")
            start = time.perf_counter()
            r = await c.get(path, params={"counterfactuals": "false"} if explain else None)
            latencies.append(time.perf_counter() - start)
            want = expected_explanations[rid] if explain else expected_records[rid]
            if r.status_code != 200 or r.json() != want:
                wrong.append(f"{path}: {r.status_code}")
            n += 7

    async def main() -> None:
        # One client (one connection) each: 50 independent callers.
        clients = [
            httpx.AsyncClient(base_url=live.url, headers=_auth("reader"), timeout=30)
            for _ in range(50)
        ]
        stop = time.monotonic() + duration
        try:
            await asyncio.gather(*(one_client(k, c, stop) for k, c in enumerate(clients)))
        finally:
            for c in clients:
                await c.aclose()

    asyncio.run(main())
    assert not wrong, wrong[:5]
    latencies.sort()
    n = len(latencies)
    assert n >= 50
    print(
        f"\n{n} answers in {duration:g} s from 50 clients: {n / duration:.0f}/s,"
        f" p50 {latencies[n // 2] * 1000:.1f} ms, p99 {latencies[int(n * 0.99)] * 1000:.1f} ms"
    )


# -- the Java example of the docs --------------------------------------------------------------


@pytest.mark.slow
def test_the_java_example_runs_against_the_server(
    live: LiveServer, tmp_path: Path, care: fa.Policy, pool: fa.Population
) -> None:
    javac, java = shutil.which("javac"), shutil.which("java")
    if javac is None or java is None:
        pytest.skip("no JDK on this machine")
    page = (ROOT / "docs" / "service.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```java\n(.*?)^```", page, re.DOTALL | re.MULTILINE)
    assert len(blocks) == 1
    source = tmp_path / "FairallocClient.java"
    source.write_text(blocks[0], encoding="utf-8")
    subprocess.run([javac, "-d", str(tmp_path), str(source)], check=True, timeout=120)
    env = {
        **os.environ,
        "FAIRALLOC_URL": live.url,
        "FAIRALLOC_TOKEN": "token-of-reader",
        "FAIRALLOC_POLICY": "care",
    }
    done = subprocess.run(
        [java, "-cp", str(tmp_path), "FairallocClient"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    alloc = fa.allocate(fa.evaluate(care, pool))
    assert lines[0] == "200"
    assert json.loads(lines[1]) == _same(alloc.explain(ME).to_dict())
    assert lines[2] == "200"
    assert json.loads(lines[3]) == json.loads(fa.evaluate(care, _records(pool, [3])).to_json())
    assert lines[4] == "401"
    assert json.loads(lines[5])["code"] == "FA925"
