"""Documents for the public (§2.2): the selection criteria and the period report.

* :func:`criteria` renders a policy's selection criteria (§2.2.1) from its data alone, in
  Chinese or English, as Markdown or an accessible HTML page, byte-identical across runs.
* :func:`report` renders a period's statistics (§2.2.2), with every table protected by the
  audited cell suppression of :mod:`fairalloc.audit` so that no resident can be recognised.
* :func:`log_report` makes the period report from a decision log: each decision re-run and
  checked, plus waiting times, rotation service counts and reviews.
"""

from __future__ import annotations

from fairalloc.publish._criteria import criteria
from fairalloc.publish._doc import page
from fairalloc.publish._report import PeriodReport, log_report, parse_period, report
from fairalloc.publish._words import LOCALES

__all__ = ["LOCALES", "PeriodReport", "criteria", "log_report", "page", "parse_period", "report"]
