"""The meta-training environment: each episode samples a task, a seed and an initial LR."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from lrgym.env import INITIAL_LR_RANGE, LRControlEnv

TRAIN_SEEDS = (0, 1_000_000)
"""Run seeds for meta-training episodes."""

VALIDATION_SEEDS = (1_000_000, 2_000_000)
"""Run seeds for the validation slice: the same meta-train tasks, runs never trained on."""


class MetaTaskEnv(gym.Env):
    """Samples a task, a run seed and an initial LR per episode, then acts as its env.

    Observation and action spaces are :class:`~lrgym.env.LRControlEnv`'s, identical
    across tasks.

    Args:
        tasks: Task ids to sample from (uniformly).
        seed_range: Half-open range of run seeds to draw from.
        decision_interval: Override every task's ``k``.
        total_steps: Override every task's step budget.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        tasks: Sequence[str],
        seed_range: tuple[int, int] = TRAIN_SEEDS,
        decision_interval: int | None = None,
        total_steps: int | None = None,
    ) -> None:
        if not tasks:
            raise ValueError("MetaTaskEnv needs at least one task")
        self.tasks = list(tasks)
        self.seed_range = seed_range
        self._envs = {
            t: LRControlEnv(t, decision_interval=decision_interval, total_steps=total_steps)
            for t in self.tasks
        }
        first = self._envs[self.tasks[0]]
        self.observation_space = first.observation_space
        self.action_space = first.action_space
        self.current: LRControlEnv = first

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        options = dict(options or {})
        task = (
            options.pop("task", None) or self.tasks[int(self.np_random.integers(len(self.tasks)))]
        )
        low, high = np.log(INITIAL_LR_RANGE)
        options.setdefault("initial_lr", float(np.exp(self.np_random.uniform(low, high))))
        options.setdefault("run_seed", int(self.np_random.integers(*self.seed_range)))
        self.current = self._envs[task]
        return self.current.reset(options=options)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        return self.current.step(action)

    def close(self) -> None:
        for env in self._envs.values():
            env.close()
