"""The same policy over a Dask DataFrame, on a ``dask.distributed`` cluster.

Each partition is evaluated by the same compiled policy and engine; each sends up only its
candidates for every cut-off, and the one-process allocation decides on them, exactly (the
module :mod:`fairalloc.cluster._allocate` gives the argument). Every resident's outcome and
explanation are written by the workers in one process's order, through a sample sort
(:mod:`fairalloc.cluster._sort`). A rotation is served a round at a time
(:func:`run_round_on_cluster`, :mod:`fairalloc.cluster._rotation`). Group statistics and
the flip audit of a decision are counted per partition and combined
(:mod:`fairalloc.cluster._flip`). Install with
``pip install 'fairalloc[dask]'``; ``docs/cluster.md`` tells how to run it on a real cluster.
"""

from __future__ import annotations

from fairalloc.cluster._allocate import ClusterAllocation, allocate_on_cluster
from fairalloc.cluster._rotation import ClusterRound, run_round_on_cluster

__all__ = ["ClusterAllocation", "ClusterRound", "allocate_on_cluster", "run_round_on_cluster"]
