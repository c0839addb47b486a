"""Meta-training on batched runs: K runs per task in each worker, N workers.

Tasks are dealt round-robin to the ``n_envs`` workers; in its worker each task is a
:class:`~lrgym.vector.BatchedLRControlEnv` of ``batched`` runs (stacked when the task
allows it, one after another otherwise), and a worker's tasks sit side by side
(:class:`~lrgym.agents.vec_env.ConcatVecEnv`). Every task thus gets the same number of
parallel runs, as :class:`~lrgym.agents.meta_env.MetaTaskEnv` gives every task the same
chance per episode.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence

import numpy as np
import torch
from stable_baselines3.common.vec_env import VecEnv, VecMonitor

from lrgym._lifetime import quiet_worker
from lrgym.agents.config import TrainConfig
from lrgym.agents.meta_env import TRAIN_SEEDS
from lrgym.agents.vec_env import ConcatVecEnv, SubprocVecEnvGroup, VectorEnvAdapter
from lrgym.registration import TaskSpec, ensure_registered, portable_specs
from lrgym.signals import feature_indices
from lrgym.vector.env import BatchedLRControlEnv


def start_worker(own_tasks: Sequence[TaskSpec]) -> None:
    """Set up a meta-training environment worker (a process, or the parent with one env):
    Ctrl-C is the parent's to report, one torch thread, the user's tasks registered."""
    if multiprocessing.parent_process() is not None:  # a worker process
        quiet_worker()  # Ctrl-C is the parent's; SIGTERM, a gone parent: no traceback
    torch.set_num_threads(1)  # one core per worker; PPO's update runs in the parent
    ensure_registered(own_tasks)


def deal_tasks(tasks: Sequence[str], workers: int) -> list[list[str]]:
    """Tasks dealt round-robin to ``workers`` (a worker with none gets one again)."""
    dealt = [list(tasks[w::workers]) for w in range(workers)]
    return [d or [tasks[w % len(tasks)]] for w, d in enumerate(dealt)]


def _worker_factory(tasks: list[str], config: TrainConfig) -> Callable[[], VecEnv]:
    own_tasks = portable_specs(tasks)  # a user's tasks, registered here only

    def factory() -> VecEnv:
        start_worker(own_tasks)
        envs = [
            BatchedLRControlEnv(
                task,
                config.batched,
                config.decision_interval,
                config.episode_steps,
                config.hparams,
                seed_range=TRAIN_SEEDS,
                default_lr_share=config.default_lr_share,
                val_every=config.val_every,
                compile=config.compile,
                action_map=config.action_map,
            )
            for task in tasks
        ]
        hide = None
        if config.drop_features:  # zeroed as in MetaTaskEnv's feature ablations
            keep = np.ones(envs[0].single_observation_space.shape, dtype=np.float32)
            keep[feature_indices(config.drop_features)] = 0.0

            def hide(obs: np.ndarray) -> np.ndarray:
                return obs * keep

        return ConcatVecEnv([VectorEnvAdapter(env, hide) for env in envs])

    return factory


def make_batched_vec_env(tasks: Sequence[str], config: TrainConfig) -> VecEnv:
    """The meta-training ``VecEnv`` of ``config.n_envs`` workers × tasks × ``batched`` runs."""
    factories = [_worker_factory(t, config) for t in deal_tasks(tasks, config.n_envs)]
    venv = SubprocVecEnvGroup(factories) if len(factories) > 1 else factories[0]()
    venv.seed(config.seed)
    return VecMonitor(venv)
