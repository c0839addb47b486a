"""The meta-training environment: each episode samples a task, a seed and an initial LR."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import TransformObservation

from lrgym.core.actions import LogLRAction
from lrgym.core.env import INITIAL_LR_RANGE, LRControlEnv
from lrgym.core.hyperparams import LR
from lrgym.core.signals import feature_indices

TRAIN_SEEDS = (0, 1_000_000)
"""Run seeds for meta-training episodes."""

VALIDATION_SEEDS = (1_000_000, 2_000_000)
"""Run seeds for the validation slice: the same meta-train tasks, runs never trained on."""


class MetaTaskEnv(gym.Env):
    """Samples a task, a run seed and an initial LR per episode, then acts as its env.

    Observation and action spaces are :class:`~lrgym.core.env.LRControlEnv`'s, identical
    across tasks. The initial LR is the task's default LR with probability
    ``default_lr_share`` and otherwise log-uniform over ``INITIAL_LR_RANGE``: evaluation
    starts at both, and a default outside that range (XGBoost's eta 0.3) would otherwise
    never be seen in training.

    Args:
        tasks: Task ids to sample from (uniformly).
        seed_range: Half-open range of run seeds to draw from.
        decision_interval: Override every task's ``k``.
        total_steps: Override every task's step budget.
        default_lr_share: Probability of starting an episode at the task's default LR.
        hparams: Hyperparameters the agent controls (``"lr"`` first); every task must
            accept them (torch tasks: momentum, weight_decay; XGBoost: max_depth, subsample).
        val_every: Validation cadences, one drawn per episode (see
            :class:`~lrgym.core.env.LRControlEnv`); ``options["val_every"]`` fixes it.
        action_map: How actions move the LR (default: :class:`~lrgym.core.actions.LogLRAction`).
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        tasks: Sequence[str],
        seed_range: tuple[int, int] = TRAIN_SEEDS,
        decision_interval: int | None = None,
        total_steps: int | None = None,
        default_lr_share: float = 0.0,
        hparams: Sequence[str] = (LR,),
        val_every: Sequence[int] = (1,),
        action_map: LogLRAction | None = None,
    ) -> None:
        if not tasks:
            raise ValueError("MetaTaskEnv needs at least one task")
        self.tasks = list(tasks)
        self.seed_range = seed_range
        self.default_lr_share = default_lr_share
        self.val_every = list(val_every) or [1]
        self._envs = {
            t: LRControlEnv(
                t,
                decision_interval=decision_interval,
                total_steps=total_steps,
                action_map=action_map,
                hparams=hparams,
            )
            for t in self.tasks
        }
        first = self._envs[self.tasks[0]]
        self.observation_space = first.observation_space
        self.action_space = first.action_space
        self.current: LRControlEnv = first
        self._episode: dict[str, Any] | None = None  # for resume_state()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._episode = {
            "rng": self.np_random.bit_generator.state,
            "options": options,
            "actions": [],
        }
        options = dict(options or {})
        task = (
            options.pop("task", None) or self.tasks[int(self.np_random.integers(len(self.tasks)))]
        )
        self.current = self._envs[task]
        low, high = np.log(INITIAL_LR_RANGE)
        drawn_lr = float(np.exp(self.np_random.uniform(low, high)))
        if self.np_random.uniform() < self.default_lr_share:
            drawn_lr = self.current.task.info.default_lr
        options.setdefault("initial_lr", drawn_lr)
        options.setdefault("run_seed", int(self.np_random.integers(*self.seed_range)))
        val_every = self.val_every[0]
        if len(self.val_every) > 1:  # no draw for one cadence: seeded streams stay as they were
            val_every = self.val_every[int(self.np_random.integers(len(self.val_every)))]
        options.setdefault("val_every", val_every)
        return self.current.reset(options=options)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._episode is not None:
            self._episode["actions"].append(np.asarray(action, np.float64).ravel().tolist())
        return self.current.step(action)

    def resume_state(self) -> dict[str, Any]:
        """Plain data from which :meth:`set_sampler_state` and a replay of the recorded
        actions rebuild this env exactly: the sampler state when the episode in progress
        started, its reset options and its actions so far (``actions`` None before any
        episode)."""
        if self._episode is None:
            return {"rng": self.np_random.bit_generator.state, "options": None, "actions": None}
        return {**self._episode, "actions": [list(a) for a in self._episode["actions"]]}

    def set_sampler_state(self, state: dict[str, Any]) -> None:
        """Put the task/seed/LR sampler in ``state`` (a ``bit_generator.state``)."""
        self.np_random.bit_generator.state = state

    def close(self) -> None:
        for env in self._envs.values():
            env.close()


def zero_features(env: gym.Env, names: Sequence[str]) -> gym.Env:
    """``env`` with the named features or feature groups set to 0 (feature ablations).

    See :data:`lrgym.core.signals.FEATURE_GROUPS`. The exported policy zeroes its input
    weights for them, so deployment sees what training saw.
    """
    keep = np.ones(env.observation_space.shape, dtype=np.float32)
    keep[feature_indices(names)] = 0.0
    return TransformObservation(env, lambda obs: obs * keep, env.observation_space)
