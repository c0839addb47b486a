"""Many training runs at once: a batched multi-run environment and the engine beneath it.

:class:`BatchedLRControlEnv` is a Gymnasium ``VectorEnv`` of K runs of one task; each
slot equals an :class:`~lrgym.core.env.LRControlEnv` episode. :class:`BatchedRuns` is the
engine underneath; :mod:`lrgym.agents.vec_env` adapts both to stable-baselines3 for training.
"""

from lrgym.vector.batchable import NotBatchable, check_batchable
from lrgym.vector.batched_runs import BatchedRuns
from lrgym.vector.env import BatchedLRControlEnv

__all__ = ["BatchedLRControlEnv", "BatchedRuns", "NotBatchable", "check_batchable"]
