"""What the service does, without HTTP: the loaded policies and one method per operation.

Each operation calls the library's public functions and returns what they return, as plain
JSON values, so an answer over HTTP is the library's own result. Nothing here knows of
requests or tokens (a refusal carries only the status it is answered with);
:mod:`fairalloc.serve._app` puts it on the web.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import fairalloc as fa
from fairalloc.errors import PopulationError, ServiceError
from fairalloc.serve._config import PolicyEntry, ServiceConfig

__all__ = ["Served", "Service"]

#: The formats an explanation is rendered in besides its JSON form.
RENDERED = ("text", "md", "html")


@dataclass
class Served:
    """One policy as the service holds it.

    Attributes:
        entry: Its configuration entry.
        policy: The policy, loaded and checked.
        pool: The resident pool, if configured.
        outcome: What the pool's explanations read: its allocation, matching or evaluation.
        lock: Serialises the decision log's operations on this policy.
    """

    entry: PolicyEntry
    policy: fa.Policy
    pool: fa.Population | None = None
    outcome: Any = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def name(self) -> str:
        """The policy's name in URLs."""
        return self.entry.name


def _outcome_of(policy: fa.Policy, evaluation: fa.Evaluation, capacity: int | None) -> Any:
    """What a population's explanations read: the allocation, matching or the evaluation."""
    spec = policy.allocation
    if spec is None or spec.rotation is not None:
        return evaluation
    if spec.matching is not None:
        return fa.match(evaluation)
    return fa.allocate(evaluation, capacity=capacity)


def _issue(i: Any) -> dict[str, Any]:
    return {
        "code": i.code,
        "column": i.column,
        "message": i.message,
        "ids": list(i.ids),
        "values": [str(v) for v in i.values],
        "valid": i.valid,
        "count": i.count,
    }


class Service:
    """The policies of a configuration, loaded, with their pools evaluated and allocated.

    Args:
        config: The configuration (paths absolute, see :func:`load_config`).

    Raises:
        PolicyError: if a policy file does not load.
        PopulationError: if a pool does not fit its policy.
    """

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.policies: dict[str, Served] = {}
        for entry in config.policies:
            policy = fa.load_policy(entry.file)
            served = Served(entry, policy)
            if entry.residents is not None:
                served.pool = fa.Population.load(
                    entry.residents, policy, source=str(entry.residents)
                )
                evaluation = fa.evaluate(policy, served.pool)
                served.outcome = _outcome_of(policy, evaluation, entry.capacity)
                if evaluation.n:  # build the lookups once, before threads share them
                    fa.explain(served.outcome, str(evaluation.id_column[0]), counterfactuals=False)
            self.policies[entry.name] = served

    # -- lookups -------------------------------------------------------------------------
    def get(self, name: str) -> Served:
        """The policy served under ``name``.

        Raises:
            ServiceError: ``FA928`` if there is none.
        """
        served = self.policies.get(name)
        if served is None:
            raise ServiceError(
                "FA928",
                f"no policy is served as {name!r}; served: {', '.join(sorted(self.policies))}",
                status=404,
                location="path policy",
            )
        return served

    def listing(self, allowed: Sequence[str] = ()) -> list[dict[str, Any]]:
        """The policies served (those in ``allowed``, when given)."""
        out = []
        for s in self.policies.values():
            if allowed and s.name not in allowed:
                continue
            meta = s.policy.policy
            out.append(
                {
                    "name": s.name,
                    "id": meta.id,
                    "version": meta.version,
                    "title": meta.title if isinstance(meta.title, str) else dict(meta.title),
                    "pool": s.pool.n if s.pool is not None else None,
                    "log": s.entry.log is not None,
                }
            )
        return out

    @staticmethod
    def _pool(s: Served) -> fa.Population:
        if s.pool is None:
            raise ServiceError(
                "FA930",
                f"policy {s.name!r} has no resident pool: the service was started without one",
                status=409,
                location="path policy",
            )
        return s.pool

    @staticmethod
    def _row(s: Served, resident: str) -> int:
        outcome = Service._outcome(s)
        ev: fa.Evaluation = getattr(outcome, "evaluation", outcome)
        try:
            return ev.index_of(resident)
        except KeyError:
            raise ServiceError(
                "FA929",
                "no resident with this id in the pool",
                status=404,
                location="path resident",
            ) from None

    @staticmethod
    def _outcome(s: Served) -> Any:
        Service._pool(s)
        return s.outcome

    @staticmethod
    def population(s: Served, residents: Sequence[Mapping[str, Any]] | None) -> fa.Population:
        """The residents given, or the pool when none are given."""
        if residents is None:
            return Service._pool(s)
        return fa.Population.from_records(residents, s.policy, source="body.residents")

    # -- residents -----------------------------------------------------------------------
    def validate(self, s: Served, residents: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Whether the records fit the policy's attribute schema, and every problem if not."""
        try:
            fa.Population.from_records(residents, s.policy, source="body.residents")
        except PopulationError as e:
            return {"valid": False, "issues": [_issue(i) for i in e.issues]}
        return {"valid": True, "issues": []}

    def evaluate(
        self, s: Served, residents: Sequence[Mapping[str, Any]], as_of: dt.date | None
    ) -> dict[str, Any]:
        """The evaluation of the residents given (:meth:`Evaluation.to_json`'s document)."""
        ev = fa.evaluate(s.policy, self.population(s, residents), as_of=as_of)
        meta = s.policy.policy
        return {
            "policy": {"id": meta.id, "version": meta.version},
            "as_of": ev.policy.as_of.isoformat() if ev.policy.as_of else None,
            "residents": ev.to_dicts(),
        }

    def explain(
        self,
        s: Served,
        residents: Sequence[Mapping[str, Any]],
        *,
        ids: Sequence[str] | None,
        lang: str,
        counterfactuals: bool,
        target_rank: int | None,
        as_of: dt.date | None,
    ) -> list[dict[str, Any]]:
        """The explanations of the residents given, evaluated together (all, or ``ids``)."""
        ev = fa.evaluate(s.policy, self.population(s, residents), as_of=as_of)
        wanted = [str(ev.id_column[i]) for i in ev.canonical_order()] if ids is None else list(ids)
        out = []
        for k, rid in enumerate(wanted):
            try:
                e = fa.explain(
                    ev, rid, lang=lang, counterfactuals=counterfactuals, target_rank=target_rank
                )
            except KeyError:
                raise ServiceError(
                    "FA929",
                    "no resident with this id among those given",
                    status=404,
                    location=f"body.ids[{k}]",
                ) from None
            out.append(e.to_dict())
        return out

    def allocate(
        self,
        s: Served,
        residents: Sequence[Mapping[str, Any]],
        *,
        capacity: int | None,
        as_of: dt.date | None,
    ) -> dict[str, Any]:
        """The allocation (or matching) of the residents given: its summary and every outcome."""
        ev = fa.evaluate(s.policy, self.population(s, residents), as_of=as_of)
        spec = s.policy.allocation
        if spec is not None and spec.matching is not None:
            doc: dict[str, Any] = json.loads(fa.match(ev).to_json())
            return doc
        alloc = fa.allocate(ev, capacity=capacity)
        return {**alloc.summary(), "residents": alloc.to_dicts()}

    # -- the pool --------------------------------------------------------------------------
    def pool_record(self, s: Served, resident: str) -> dict[str, Any]:
        """One pool resident's outcome: the allocation's record, or the evaluation's."""
        outcome = self._outcome(s)
        row = self._row(s, resident)
        if isinstance(outcome, fa.Evaluation):
            return outcome.record(row)
        if isinstance(outcome, fa.Allocation):
            ev = outcome.evaluation
            return {**ev.record(row), **outcome.record(row)}
        return {**outcome.evaluation.record(row), **outcome.record(row)}

    def pool_explanation(
        self, s: Served, resident: str, *, lang: str, counterfactuals: bool, format: str
    ) -> dict[str, Any]:
        """One pool resident's explanation: its JSON form, or rendered as text, md or html."""
        outcome = self._outcome(s)
        self._row(s, resident)
        e = fa.explain(outcome, resident, lang=lang, counterfactuals=counterfactuals)
        if format == "json":
            return e.to_dict()
        return {
            "resident": resident,
            "format": format,
            "lang": lang,
            "text": e.render(cast(Any, format), lang),
        }

    def pool_summary(self, s: Served) -> dict[str, Any]:
        """The pool's allocation summary (capacity, cut-offs), or its counts."""
        outcome = self._outcome(s)
        if isinstance(outcome, fa.Evaluation):
            meta = s.policy.policy
            return {
                "policy": {"id": meta.id, "version": meta.version},
                "residents": outcome.n,
                "eligible": int(outcome.eligible.sum()),
            }
        summary: dict[str, Any] = outcome.summary()
        return summary

    # -- documents -------------------------------------------------------------------------
    def criteria(self, s: Served, *, lang: str, format: str, large_print: bool) -> dict[str, Any]:
        """The policy's criteria document (:func:`fairalloc.publish.criteria`)."""
        from fairalloc.publish import criteria

        text = criteria(s.policy, lang=lang, format=format, large_print=large_print)
        return {"lang": lang, "format": format, "document": text}

    def audit(
        self, s: Served, *, capacity: int | None, strata: str | None, publication: bool
    ) -> dict[str, Any]:
        """The fairness audit of the pool (:func:`fairalloc.audit.audit`), as its JSON form."""
        from fairalloc.audit import audit

        report = audit(
            s.policy,
            self._pool(s),
            capacity=capacity if capacity is not None else s.entry.capacity,
            strata=strata,
            publication=publication,
        )
        doc: dict[str, Any] = json.loads(report.to_json())
        return doc

    # -- the decision log ------------------------------------------------------------------
    def log(self, s: Served) -> Any:
        """The policy's decision log, opened (close it after use).

        Raises:
            ServiceError: ``FA931`` if no log is configured for the policy.
        """
        from fairalloc.records import DecisionLog

        if s.entry.log is None:
            raise ServiceError(
                "FA931",
                f"policy {s.name!r} has no decision log: configure `log` for it",
                status=409,
                location="path policy",
            )
        return DecisionLog.open(s.entry.log)

    def head(self, s: Served) -> dict[str, Any]:
        """The log's head to publish."""
        with s.lock, self.log(s) as log:
            head: dict[str, Any] = log.head().to_dict()
        return head

    def records(self, s: Served) -> list[dict[str, Any]]:
        """Every record of the log (commitments only: no resident's data)."""
        with s.lock, self.log(s) as log:
            return [
                {
                    "seq": r.seq,
                    "kind": r.kind,
                    "time": r.time,
                    "operator": r.operator,
                    "body": r.body,
                }
                for r in log.records()
            ]

    def register(
        self,
        s: Served,
        *,
        approved_by: str,
        approved_at: dt.date,
        until: dt.date | None,
        operator: str,
    ) -> dict[str, Any]:
        """Record the served policy's version in the log."""
        with s.lock, self.log(s) as log:
            rec = log.register_policy(
                s.policy,
                approved_by=approved_by,
                approved_at=approved_at.isoformat(),
                effective_until=until,
                operator=operator,
            )
        return {"record": rec.seq, "body": rec.body}

    def freeze(
        self, s: Served, residents: Sequence[Mapping[str, Any]] | None, *, operator: str
    ) -> dict[str, Any]:
        """Freeze the applicant list (the residents given, or the pool)."""
        from fairalloc.records import policy_hash

        population = self.population(s, residents)
        with s.lock, self.log(s) as log:
            digest = policy_hash(s.policy)
            found = [
                r.seq
                for r in log.records()
                if r.kind == "policy" and r.body["policy_hash"] == digest
            ]
            if not found:
                from fairalloc.errors import RecordsError

                raise RecordsError(
                    "FA712",
                    f"{s.policy.policy.id} {s.policy.policy.version} is not registered in the log",
                    valid="register the policy version first",
                )
            rec = log.freeze(found[-1], population, policy=s.policy, operator=operator)
        return {"record": rec.seq, "body": rec.body}

    def draw(
        self,
        s: Served,
        *,
        freeze: int,
        seed: str | None,
        public_randomness: str | None,
        how: str,
        operator: str,
    ) -> dict[str, Any]:
        """Record the lottery seed drawn after a freeze."""
        with s.lock, self.log(s) as log:
            rec = log.draw_seed(
                freeze, value=seed, public_randomness=public_randomness, how=how, operator=operator
            )
        return {"record": rec.seq, "body": rec.body}

    def decide(
        self,
        s: Served,
        residents: Sequence[Mapping[str, Any]] | None,
        *,
        freeze: int,
        seed: int | None,
        capacity: int | None,
        as_of: dt.date | None,
        operator: str,
    ) -> dict[str, Any]:
        """Allocate with the recorded seed over the frozen list, and record the decision."""
        population = self.population(s, residents)
        with s.lock, self.log(s) as log:
            decision = log.decide(
                s.policy,
                population,
                freeze=freeze,
                seed=seed,
                operator=operator,
                capacity=capacity,
                as_of=as_of,
            )
            head = log.head().to_dict()
        return {"record": decision.seq, "body": decision.record.body, "head": head}

    def receipt(
        self,
        s: Served,
        residents: Sequence[Mapping[str, Any]] | None,
        *,
        decision: int,
        resident: str,
    ) -> dict[str, Any]:
        """A resident's receipt for a recorded decision."""
        population = self.population(s, residents)
        with s.lock, self.log(s) as log:
            recorded = log.decision(decision, s.policy, population)
            receipt: dict[str, Any] = log.receipt(recorded, resident)
        return receipt

    def verify(self, s: Served, residents: Sequence[Mapping[str, Any]] | None) -> dict[str, Any]:
        """Check the log and re-run its decisions on the residents given (or the pool)."""
        from fairalloc.records import verify_log

        data = self.population(s, residents) if residents is not None or s.pool else None
        with s.lock, self.log(s) as log:
            report = verify_log(log, policies=[s.policy], data=data)
        return {
            "ok": report.ok,
            "size": report.size,
            "head": report.head.to_dict() if report.head is not None else None,
            "problems": [
                {"code": p.code, "record": p.record, "what": p.what} for p in report.problems
            ],
        }

    def review_open(
        self,
        s: Served,
        residents: Sequence[Mapping[str, Any]] | None,
        *,
        decision: int,
        case: str,
        resident: str,
        grounds: str,
        corrections: Sequence[tuple[str, Any, str]],
        filed: dt.date,
        operator: str,
    ) -> dict[str, Any]:
        """Open a review case on a recorded decision; returns the case to keep."""
        from fairalloc.review import Correction, open_review

        population = self.population(s, residents)
        with s.lock, self.log(s) as log:
            opened = open_review(
                log,
                decision,
                s.policy,
                population,
                case_id=case,
                resident=resident,
                grounds=grounds,
                corrections=[Correction(a, v, ev) for a, v, ev in corrections],
                filed=filed,
                operator=operator,
            )
            seq = len(log) - 1
        return {"record": seq, "case": opened.to_dict()}

    def review_answer(
        self,
        s: Served,
        residents: Sequence[Mapping[str, Any]] | None,
        *,
        case: Mapping[str, Any],
        on: dt.date,
        lang: str,
        operator: str,
    ) -> dict[str, Any]:
        """Review a case as opened and record the answer; returns the complainant's answer."""
        from fairalloc.review import Case, answer_review

        population = self.population(s, residents)
        with s.lock, self.log(s) as log:
            finding = answer_review(
                log, Case.from_dict(case), s.policy, population, on=on, operator=operator, lang=lang
            )
            seq = len(log) - 1
        return {
            "record": seq,
            "answer": finding.for_complainant(),
            "text": finding.complainant_text(lang),
        }

    def cases(self, s: Served, as_of: dt.date) -> list[dict[str, Any]]:
        """Every review case in the log and its state on ``as_of``."""
        from fairalloc.review import case_statuses

        with s.lock, self.log(s) as log:
            statuses = case_statuses(log)
        return [
            {
                "case": c.case,
                "state": c.state(as_of),
                "decision_record": c.decision_record,
                "filed": c.filed.isoformat(),
                "deadline": c.deadline.isoformat(),
                "answered": c.answered.isoformat() if c.answered else None,
            }
            for c in statuses
        ]

    def round(
        self,
        s: Served,
        residents: Sequence[Mapping[str, Any]] | None,
        *,
        freeze: int,
        seed: int | None,
        state: Mapping[str, Any] | None,
        capacity: int | None,
        as_of: dt.date | None,
        operator: str,
    ) -> dict[str, Any]:
        """Run and record the next round of the policy's rotation; returns the new state."""
        from fairalloc.review import record_round

        population = self.population(s, residents)
        start = fa.RotationState.from_json(json.dumps(state)) if state is not None else None
        with s.lock, self.log(s) as log:
            rnd, rec = record_round(
                log,
                s.policy,
                population,
                freeze=freeze,
                seed=seed,
                operator=operator,
                state=start,
                capacity=capacity,
                as_of=as_of,
            )
            head = log.head().to_dict()
        return {
            "record": rec.seq,
            "round": rnd.to_dict(),
            "state": json.loads(rnd.state.to_json()),
            "head": head,
        }
