"""Many training runs at once: a batched multi-run environment and its SB3 adapters.

:class:`BatchedLRControlEnv` is a Gymnasium ``VectorEnv`` of K runs of one task; each
slot equals an :class:`~lrgym.env.LRControlEnv` episode. :class:`BatchedRuns` is the
engine underneath, and :mod:`lrgym.vector.sb3` adapts both to stable-baselines3.
"""

from lrgym.vector.batched_runs import BatchedRuns, NotBatchable, check_batchable
from lrgym.vector.env import BatchedLRControlEnv

__all__ = ["BatchedLRControlEnv", "BatchedRuns", "NotBatchable", "check_batchable"]
