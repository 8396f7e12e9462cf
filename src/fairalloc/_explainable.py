"""``explain`` and ``contrast`` on every result that holds residents' outcomes.

Evaluations, allocations, matchings and rotations share these two methods; the work is done by
:mod:`fairalloc.explain`, imported when an explanation is asked for, so that results do not
depend on the renderers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fairalloc.explain import Audience, Contrast, Explanation

__all__ = ["Explainable"]


class Explainable:
    """Adds :meth:`explain` and :meth:`contrast` to a result class."""

    __slots__ = ()

    def explain(
        self,
        resident_id: str,
        *,
        lang: str = "en",
        counterfactuals: bool = True,
        **options: Any,
    ) -> Explanation:
        """Why ``resident_id`` got its outcome; see :func:`fairalloc.explain.explain`.

        Args:
            resident_id: The resident's id.
            lang: The default language of renderings: ``en`` or ``zh-CN``.
            counterfactuals: Search for the smallest changes that would change the outcome.
            **options: ``target_rank``, ``attributes``, ``limit``
                (see :func:`fairalloc.explain.explain`).
        """
        from fairalloc.explain import explain

        return explain(
            self,  # type: ignore[arg-type]
            resident_id,
            lang=lang,
            counterfactuals=counterfactuals,
            **options,
        )

    def contrast(
        self, a: str, b: str, *, lang: str = "en", audience: Audience = "officer"
    ) -> Contrast:
        """Why resident ``a`` ranked where it did relative to ``b``, part by part.

        See :func:`fairalloc.explain.contrast`.
        """
        from fairalloc.explain import contrast

        return contrast(self, a, b, lang=lang, audience=audience)  # type: ignore[arg-type]
