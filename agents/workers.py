"""The meta-training ``VecEnv``: ``n_envs`` workers, as processes or Ray actors.

A worker is one :class:`~lrgym.agents.meta_env.MetaTaskEnv` (:func:`make_env`), or with
``config.batched`` K runs per task (:func:`worker_factory`): tasks are dealt to the
workers by their estimated cost per decision (:mod:`lrgym.vector.cost`), so that each
worker's share of a step costs about the same and no worker idles while another steps
the expensive tasks (a cheap task waits for nothing but the step's slowest worker, whose
load the deal evens out); in its worker each task is a
:class:`~lrgym.vector.BatchedLRControlEnv` of ``batched`` runs (stacked when the task
allows it, one after another otherwise), and a worker's tasks sit side by side
(:class:`~lrgym.agents.vec_env.ConcatVecEnv`). Every task thus gets the same number of
parallel runs, as ``MetaTaskEnv`` gives every task the same chance per episode.
:func:`make_vec_env` puts the workers in subprocesses, or with ``config.backend ==
"ray"`` in Ray actors (:mod:`lrgym.agents.ray_vec_env`).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Mapping, Sequence

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecMonitor

from lrgym.agents.checkpoints import ResumableMonitor
from lrgym.agents.config import ConfigError, TrainConfig
from lrgym.agents.meta_env import TRAIN_SEEDS, MetaTaskEnv, zero_features
from lrgym.agents.vec_env import ConcatVecEnv, SubprocVecEnvGroup, VectorEnvAdapter
from lrgym.backends._lifetime import quiet_worker
from lrgym.core.registration import TaskSpec, ensure_registered, portable_specs, select_tasks
from lrgym.core.signals import feature_indices
from lrgym.vector.compile_policy import compile_pays_back
from lrgym.vector.cost import balance, decision_cost
from lrgym.vector.env import BatchedLRControlEnv


def start_worker(own_tasks: Sequence[TaskSpec]) -> None:
    """Set up a meta-training environment worker (a process, or the parent with one env):
    Ctrl-C is the parent's to report, one torch thread, the user's tasks registered."""
    if multiprocessing.parent_process() is not None:  # a worker process
        quiet_worker()  # Ctrl-C is the parent's; SIGTERM, a gone parent: no traceback
    torch.set_num_threads(1)  # one core per worker; PPO's update runs in the parent
    ensure_registered(own_tasks)


def deal_tasks(
    tasks: Sequence[str], workers: int, costs: Sequence[float] | None = None
) -> list[list[str]]:
    """Tasks dealt to ``workers``: round-robin, or with ``costs`` (one per task, e.g.
    :func:`~lrgym.vector.cost.decision_cost`) so that the workers' totals are near equal
    (:func:`~lrgym.vector.cost.balance`). A worker with none gets one again."""
    if costs is not None:
        if len(costs) != len(tasks):
            raise ValueError(f"one cost per task: {len(costs)} costs for {len(tasks)} tasks")
        return [[tasks[i] for i in group] for group in balance(list(costs), workers)]
    dealt = [list(tasks[w::workers]) for w in range(workers)]
    return [d or [tasks[w % len(tasks)]] for w, d in enumerate(dealt)]


def meta_env(tasks: list[str], config: TrainConfig, seeds: tuple[int, int]) -> gym.Env:
    """A :class:`MetaTaskEnv` over ``tasks`` as ``config`` sets it up (features dropped)."""
    env = MetaTaskEnv(
        tasks,
        seeds,
        config.decision_interval,
        config.episode_steps,
        config.default_lr_share,
        config.hparams,
        config.val_every,
        config.action_map,
    )
    return zero_features(env, config.drop_features) if config.drop_features else env


def make_env(tasks: list[str], config: TrainConfig, rank: int) -> Callable[[], gym.Env]:
    """A factory of worker ``rank``'s environment: a monitored :class:`MetaTaskEnv` over
    ``tasks`` on training seeds, reset with ``config.seed + rank``."""
    own_tasks = portable_specs(tasks)  # a user's tasks, registered here only

    def factory() -> ResumableMonitor:
        start_worker(own_tasks)
        env = meta_env(tasks, config, TRAIN_SEEDS)
        env.reset(seed=config.seed + rank)
        return ResumableMonitor(env)

    return factory


def runs_per_task(tasks: Sequence[str], config: TrainConfig) -> list[int]:
    """Each task's batched runs: the first ``config.batched_for`` name that selects it
    sets them, else ``config.batched``.

    Raises:
        ConfigError: a ``batched_for`` name is unknown or selects none of ``tasks``.
    """
    selected = {}
    for name in config.batched_for:
        try:
            ids = set(select_tasks([name]))
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"batched_for: {exc}") from None
        if not ids & set(tasks):
            raise ConfigError(
                f"batched_for: {name!r} selects none of the training tasks; use a task id, "
                "group or split listed in tasks"
            )
        selected[name] = ids
    return [
        next((config.batched_for[n] for n, ids in selected.items() if t in ids), config.batched)
        for t in tasks
    ]


def worker_factory(
    tasks: list[str],
    config: TrainConfig,
    runs: Mapping[str, int],
    compile: bool | None = None,
) -> Callable[[], VecEnv]:
    """A factory of one batched worker: ``runs[task]`` runs of each of ``tasks`` (from
    :func:`runs_per_task` over all the training tasks), side by side in one ``VecEnv``
    (features dropped as in :func:`meta_env`), compiled as ``compile`` says (default:
    ``config.compile``)."""
    own_tasks = portable_specs(tasks)  # a user's tasks, registered here only
    if compile is None:
        compile = config.compile

    def factory() -> VecEnv:
        start_worker(own_tasks)
        envs = [
            BatchedLRControlEnv(
                task,
                runs[task],
                config.decision_interval,
                config.episode_steps,
                config.hparams,
                seed_range=TRAIN_SEEDS,
                default_lr_share=config.default_lr_share,
                val_every=config.val_every,
                compile=compile,
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


def make_vec_env(tasks: list[str], config: TrainConfig) -> VecEnv:
    """``n_envs`` meta-task workers (subprocesses when more than one, Ray actors with
    ``config.backend == "ray"``); with ``config.batched``, each worker trains K runs per
    task at once."""
    on_ray = config.backend == "ray"
    if on_ray:  # the actors' module imports Ray's connection only when it is asked for
        from lrgym.agents.ray_vec_env import RayVecEnv, RayVecEnvGroup
        from lrgym.backends.ray_backend import connect

        connect(config.address)
    cpus, gpus = config.cpus_per_env, config.gpus_per_env
    if config.batched:
        compile = config.compile
        if compile is None:  # by default only where it pays back within the run
            compile = compile_pays_back(config.total_timesteps / len(tasks))
        # checked over all the training tasks: a worker may be dealt none that a name selects
        runs = dict(zip(tasks, runs_per_task(tasks, config), strict=True))
        costs = None
        if config.n_envs > 1:  # no worker should wait on one holding the slow tasks
            # a decision_cost is one run's
            costs = [decision_cost(t, config.decision_interval) * runs[t] for t in tasks]
        dealt = deal_tasks(tasks, config.n_envs, costs)
        factories = [worker_factory(t, config, runs, compile) for t in dealt]
        if on_ray:
            venv = RayVecEnvGroup(factories, cpus, gpus)
        else:
            venv = SubprocVecEnvGroup(factories) if len(factories) > 1 else factories[0]()
        venv.seed(config.seed)
        return VecMonitor(venv)
    fns = [make_env(tasks, config, rank) for rank in range(config.n_envs)]
    if on_ray:  # one env: the local backend steps it in a DummyVecEnv, of float32 rewards
        dtype = np.float32 if config.n_envs == 1 else None
        return RayVecEnv(fns, cpus, gpus, reward_dtype=dtype)
    return SubprocVecEnv(fns) if config.n_envs > 1 else DummyVecEnv(fns)


__all__ = [
    "deal_tasks",
    "make_env",
    "make_vec_env",
    "meta_env",
    "runs_per_task",
    "start_worker",
    "worker_factory",
]
