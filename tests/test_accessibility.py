"""Every HTML output passes axe-core in a real headless browser (§2.1.3).

The page, with axe-core appended, is opened in Debian's chromium (``--headless --dump-dom``,
a 1280-pixel window, virtual time so that the asynchronous check finishes before the DOM is
dumped); the violations and the page's scroll width are written into attributes of the root
element and read back from the dumped DOM. No network: the page is a local file.

Setup (``.ci/run`` does it): ``apt-get install -y chromium`` and
``npm install --prefix .axe axe-core@4`` (or point ``FAIRALLOC_AXE_CORE`` at ``axe.min.js``).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

import fairalloc as fa
from fairalloc.audit import audit
from fairalloc.explain import explain
from fairalloc.publish import criteria
from tests.conftest import EXAMPLE, ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
AXE = Path(
    os.environ.get("FAIRALLOC_AXE_CORE", ROOT / ".axe" / "node_modules" / "axe-core" / "axe.min.js")
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
    "--virtual-time-budget=30000",
]

pytestmark = [pytest.mark.slow]


def _require_browser() -> tuple[str, str]:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (apt-get install -y chromium)")
        pytest.skip("chromium is not installed here (apt-get install -y chromium); CI installs it")
    if not AXE.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"axe-core is missing at {AXE} (npm install --prefix .axe axe-core@4)")
        pytest.skip(f"axe-core is missing at {AXE} (npm install --prefix .axe axe-core@4)")
    return CHROMIUM, AXE.read_text(encoding="utf-8")


_RUNNER = (
    "axe.run(document,{resultTypes:['violations']}).then(function(r){"
    "var v=r.violations.map(function(x){return {id:x.id,impact:x.impact,help:x.help,"
    "nodes:x.nodes.slice(0,3).map(function(n){return n.html.slice(0,120)})}});"
    "document.documentElement.setAttribute('data-axe',JSON.stringify(v));"
    "document.documentElement.setAttribute('data-width',"
    "String(document.documentElement.scrollWidth));"
    "}).catch(function(e){document.documentElement.setAttribute('data-axe-error',String(e))});"
)


def check(page: str) -> tuple[list[dict[str, Any]], int]:
    """axe-core's violations of ``page`` and its scroll width in a 1280-pixel window."""
    chromium, axe = _require_browser()
    script = "<script>" + axe.replace("</script", "<\\/script") + "</script>"
    doc = page.replace("</body>", f"{script}<script>{_RUNNER}</script></body>", 1)
    assert doc != page, "the page has a </body>"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "page.html"
        path.write_text(doc, encoding="utf-8")
        profile = Path(tmp) / "profile"
        out = subprocess.run(
            [chromium, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", path.as_uri()],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    found = re.search(r'data-axe="([^"]*)"', out.stdout)
    assert found, f"axe did not report (exit {out.returncode}): {out.stderr[-2000:]}"
    width = re.search(r'data-width="(\d+)"', out.stdout)
    assert width
    return json.loads(html.unescape(found.group(1))), int(width.group(1))


def _serious(violations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [v for v in violations if v["impact"] in ("serious", "critical")]


NAMES = (
    "audit",
    "audit publication large print",
    "criteria en",
    "criteria zh-CN",
    "criteria zh-CN large print",
    "explanation en",
    "explanation zh-CN",
    "report en",
    "report zh-CN large print",
    "report from the log zh-CN",
)


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Every HTML output of the example, by name."""
    policy = fa.load_policy(EXAMPLE / "policy.yaml")
    data = EXAMPLE / "residents.csv"
    alloc = fa.allocate(policy, data)
    out = {}
    for lang in ("en", "zh-CN"):
        out[f"criteria {lang}"] = criteria(policy, lang=lang, format="html")
        ex = explain(alloc, "R0000001")
        out[f"explanation {lang}"] = ex.to_html(lang, fragment=False)
    out["criteria zh-CN large print"] = criteria(
        policy, lang="zh-CN", format="html", large_print=True
    )
    out["audit"] = audit(policy, data).to_html()
    out["audit publication large print"] = audit(policy, data, publication=True).to_html(
        large_print=True
    )
    import datetime as dt

    from fairalloc.publish import report
    from tests.test_disclosure import _generated

    rounds = []
    for k, day in enumerate((dt.date(2026, 1, 15), dt.date(2026, 2, 15))):
        rounds.append((day, fa.allocate(fa.evaluate(policy, _generated(300, 11 + k), as_of=day))))
    period = report(rounds, period="2026-Q1")
    out["report en"] = period.render(format="html")
    out["report zh-CN large print"] = period.render(lang="zh-CN", format="html", large_print=True)
    from fairalloc.publish import log_report
    from fairalloc.records import DecisionLog

    with DecisionLog.open(tmp_path_factory.mktemp("log") / "log.db") as log:
        p = log.register_policy(policy, operator="c")
        frozen = {}
        for k, day in enumerate((dt.date(2026, 1, 15), dt.date(2026, 2, 15))):
            residents = _generated(300, 11 + k)
            f = log.freeze(p.seq, residents, policy=policy, operator="c", time=f"{day}T08:00:00Z")
            frozen[f.seq] = residents
            s = log.draw_seed(f.seq, value=f"dice {k}", how="dice", operator="c")
            log.decide(policy, residents, freeze=f.seq, seed=s.seq, operator="c", as_of=day)
        from_log = log_report(log, policy, frozen, period="2026-Q1")
    out["report from the log zh-CN"] = from_log.render(lang="zh-CN", format="html")
    assert sorted(out) == sorted(NAMES)
    return out


def test_the_check_finds_violations() -> None:
    bad = (
        "<!DOCTYPE html><html><head><title>x</title></head><body>"
        '<img src="x.png"><p style="color:#bbb;background:#fff">faint</p>'
        '<table style="width:3000px"><tr><td>wide</td></tr></table></body></html>'
    )
    violations, width = check(bad)
    ids = {v["id"] for v in _serious(violations)}
    assert "image-alt" in ids
    assert "color-contrast" in ids
    assert width > 1280


@pytest.mark.parametrize("name", NAMES)
def test_every_html_output_passes_axe(name: str, pages: dict[str, str]) -> None:
    violations, width = check(pages[name])
    assert _serious(violations) == [], _serious(violations)
    assert width <= 1280, f"{name} is {width} px wide"
