"""Many runs of one task as one Gymnasium ``VectorEnv``, trained as one computation."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from lrgym.core.actions import LogLRAction
from lrgym.core.decision import DecisionPath
from lrgym.core.env import INITIAL_LR_RANGE, LRControlEnv
from lrgym.core.hyperparams import LR, HyperParamSet
from lrgym.core.registration import make_task
from lrgym.core.task import Task
from lrgym.core.trainee import DIVERGENCE_FACTOR, is_diverged
from lrgym.io.validate import check_initial_lr, whole_number
from lrgym.vector.batchable import NotBatchable
from lrgym.vector.batched_runs import BatchedRuns

RUN_SEEDS = (0, 2**31 - 1)
"""Run seeds are drawn from this half-open range unless ``seed_range`` narrows it."""


class BatchedLRControlEnv(VectorEnv):
    """K runs of one task, each an :class:`~lrgym.core.env.LRControlEnv` episode, stepped together.

    Slot ``i`` behaves exactly like ``LRControlEnv(task, ...)`` reset with slot ``i``'s
    run seed and initial LR: same observations, rewards, LRs and episode ends (within
    float tolerance), because each slot is built by the task's own ``build`` and
    observes and acts through the same :class:`~lrgym.core.decision.DecisionPath`. Torch
    tasks whose runs share an architecture train as one stacked computation
    (:class:`~lrgym.vector.batched_runs.BatchedRuns`; CNNs as grouped convolutions);
    other tasks (XGBoost, batch-norm, dropout, fused RNNs, architectures drawn per seed
    such as ``TeacherStudent*-v0``, whose ``-v1`` draws it per task) fall back to K
    ``LRControlEnv`` stepped one after another, with the same interface (:attr:`batched`
    says which).

    A slot's episode that ends (budget spent or diverged) is reset in the same step
    (``AutoresetMode.SAME_STEP``): the returned observation starts the slot's next run,
    and ``infos["final_obs"]`` / ``infos["final_info"]`` hold the ended one's. A
    diverging run never touches the other slots.

    Args:
        task: Task id or :class:`~lrgym.core.task.Task`.
        num_envs: K, the number of runs.
        decision_interval: Optimizer steps between decisions (default: the task's).
        total_steps: Optimizer steps per run (default: the task's).
        hparams: Controlled hyperparameters, ``"lr"`` first.
        seed_range: Half-open range of run seeds drawn at each reset.
        default_lr_share: Probability that a reset starts at the task's default LR
            (otherwise log-uniform over ``INITIAL_LR_RANGE``).
        divergence_factor: As in :class:`~lrgym.core.env.LRControlEnv`.
        divergence_penalty: As in :class:`~lrgym.core.env.LRControlEnv`.
        batched: ``None`` batches when the task allows it; ``False`` forces the loop.
        val_every: Validation cadences (see :class:`~lrgym.core.env.LRControlEnv`), one drawn
            per run.
        compile: Compile the stacked steps with ``torch.compile`` (see
            :class:`~lrgym.vector.batched_runs.BatchedRuns`; None, the default, compiles
            where a C++ compiler is present); ignored for the fallback.
        action_map: How actions move the LR (default: :class:`~lrgym.core.actions.LogLRAction`).

    ``reset(options=...)`` takes ``initial_lr``, ``run_seed`` and ``val_every`` as one
    value per slot (sequences of length K) to fix the first runs.
    """

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(
        self,
        task: str | Task,
        num_envs: int,
        decision_interval: int | None = None,
        total_steps: int | None = None,
        hparams: Sequence[str] = (LR,),
        seed_range: tuple[int, int] = RUN_SEEDS,
        default_lr_share: float = 0.0,
        divergence_factor: float = DIVERGENCE_FACTOR,
        divergence_penalty: float = 3.0,
        batched: bool | None = None,
        val_every: Sequence[int] = (1,),
        compile: bool | None = None,
        action_map: LogLRAction | None = None,
    ) -> None:
        if int(num_envs) < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.task = make_task(task) if isinstance(task, str) else task
        self.task_id = task if isinstance(task, str) else type(task).__name__
        self.num_envs = int(num_envs)
        self.seed_range = seed_range
        self.default_lr_share = float(default_lr_share)
        self.val_every = [whole_number("val_every", n, 0) for n in val_every] or [1]

        def single() -> LRControlEnv:
            env = LRControlEnv(
                self.task,
                decision_interval,
                total_steps,
                action_map,
                divergence_factor,
                divergence_penalty,
                hparams,
            )
            env.task_id = self.task_id
            return env

        template = single()
        self.decision_interval = template.decision_interval
        self.total_steps = template.total_steps
        self.divergence_factor = divergence_factor
        self.divergence_penalty = divergence_penalty
        self.hparams = HyperParamSet(hparams)
        self.action_map = template.action_map
        self.single_observation_space = template.observation_space
        self.single_action_space = template.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.runs: BatchedRuns | None = None
        self.fallback: list[LRControlEnv] = []
        if batched is not False:
            try:
                self.runs = BatchedRuns(self.task, self.num_envs, compile)  # checks batchability
            except NotBatchable as exc:
                if batched:
                    raise
                self.not_batched_because = str(exc)
        if self.runs is None:
            self.fallback = [template] + [single() for _ in range(self.num_envs - 1)]
        else:
            template.close()
        k = self.num_envs
        self.paths = [DecisionPath(self.hparams, self.action_map) for _ in range(k)]
        self.optimizers: list[Any] = [None] * k
        self.initial_lr = np.zeros(k)
        self.run_seed = np.zeros(k, dtype=np.int64)
        self.initial_val_loss = np.zeros(k)
        self.val_loss = np.zeros(k)
        self.val_metric = np.zeros(k)
        self.steps_done = np.zeros(k, dtype=np.int64)

    @property
    def batched(self) -> bool:
        """True if the runs train as one stacked computation."""
        return self.runs is not None

    # --- reset ---------------------------------------------------------------------------

    def _draw(self) -> tuple[float, int, int]:
        """A new run's initial LR, run seed and validation cadence."""
        low, high = np.log(INITIAL_LR_RANGE)
        lr = float(np.exp(self.np_random.uniform(low, high)))
        if self.default_lr_share and self.np_random.uniform() < self.default_lr_share:
            lr = self.task.info.default_lr
        seed = int(self.np_random.integers(*self.seed_range))
        val_every = self.val_every[0]
        if len(self.val_every) > 1:  # no draw for one cadence: seeded streams stay as they were
            val_every = self.val_every[int(self.np_random.integers(len(self.val_every)))]
        return lr, seed, val_every

    def _start(self, starts: dict[int, tuple[float, int, int]]) -> dict[int, np.ndarray]:
        """Start a new run in each slot of ``starts`` (slot → initial LR, run seed and
        validation cadence); their first observations. Stacked slots are validated in
        one call."""
        for slot, (lr, seed, _) in starts.items():
            self.initial_lr[slot] = check_initial_lr(lr)
            self.run_seed[slot] = int(seed)
            self.steps_done[slot] = 0
        if self.runs is None:
            return {slot: self._start_fallback(slot, *start) for slot, start in starts.items()}
        for slot, (lr, seed, _) in starts.items():
            self.optimizers[slot] = self.runs.load(slot, int(seed), float(lr))
            if self.hparams.extras:
                self.hparams.check_optimizer(self.optimizers[slot])
        evals = self.runs.evaluate("val", list(starts))
        first = {}
        for (slot, (_, _, val_every)), ev in zip(starts.items(), evals, strict=True):
            self.initial_val_loss[slot] = ev.loss
            self.val_loss[slot], self.val_metric[slot] = ev.loss, ev.metric
            first[slot] = self.paths[slot].start(
                self.optimizers[slot], ev.loss, ev.metric, val_every=val_every
            )
        return first

    def _start_fallback(self, slot: int, lr: float, seed: int, val_every: int) -> np.ndarray:
        """Start a new run in the per-run env of ``slot``; its first observation."""
        env = self.fallback[slot]
        options = {"initial_lr": float(lr), "run_seed": int(seed), "val_every": val_every}
        obs, info = env.reset(options=options)
        self.optimizers[slot] = env.trainee.optimizer
        self.paths[slot] = env.path
        self.val_loss[slot], self.val_metric[slot] = info["val_loss"], info["val_metric"]
        return obs

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new run in every slot (``options``: per-slot ``initial_lr``/``run_seed``)."""
        super().reset(seed=seed)
        options = options or {}
        obs = np.zeros(self.observation_space.shape, dtype=np.float32)
        infos: dict[str, Any] = {}
        starts = {}
        for slot in range(self.num_envs):
            lr, run_seed, val_every = self._draw()
            if "initial_lr" in options:
                lr = options["initial_lr"][slot]
            if "run_seed" in options:
                run_seed = options["run_seed"][slot]
            if "val_every" in options:
                val_every = options["val_every"][slot]
            starts[slot] = (lr, run_seed, val_every)
        for slot, first in self._start(starts).items():
            obs[slot] = first
            infos = self._add_info(infos, self._info(slot, math.nan, False), slot)
        return obs, infos

    # --- step ----------------------------------------------------------------------------

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Apply one action per slot, train every slot one chunk, observe; ended slots reset."""
        actions = np.asarray(actions, dtype=np.float64).reshape(self.num_envs, -1)
        k = self.num_envs
        obs = np.zeros(self.observation_space.shape, dtype=np.float32)
        rewards = np.zeros(k)
        terminated = np.zeros(k, dtype=bool)
        infos: dict[str, Any] = {}
        if self.runs is None:
            results = [
                env.step(actions[i].astype(np.float32)) for i, env in enumerate(self.fallback)
            ]
            for slot, (o, r, done, _, info) in enumerate(results):
                obs[slot], rewards[slot], terminated[slot] = o, r, done
                self.val_loss[slot], self.val_metric[slot] = info["val_loss"], info["val_metric"]
                infos = self._add_info(infos, info, slot)
        else:
            for slot in range(k):
                self.paths[slot].apply(actions[slot], self.optimizers[slot])
            budget = np.minimum(self.decision_interval, self.total_steps - self.steps_done)
            reports = self.runs.train(budget)
            evals = self.runs.evaluate("val")
            for slot, report in enumerate(reports):
                steps = int(budget[slot])
                self.steps_done[slot] += report.steps
                prev_val = self.val_loss[slot]
                ev = None if report.steps < steps else evals[slot]
                if ev is not None:
                    self.val_loss[slot], self.val_metric[slot] = ev.loss, ev.metric
                diverged = is_diverged(
                    report,
                    steps,
                    ev.loss if ev else None,
                    self.initial_val_loss[slot],
                    self.divergence_factor,
                )
                if diverged:
                    rewards[slot] = -self.divergence_penalty
                else:
                    rewards[slot] = math.log(max(prev_val, 1e-8)) - math.log(
                        max(self.val_loss[slot], 1e-8)
                    )
                obs[slot] = self.paths[slot].observe(
                    self.optimizers[slot],
                    report.losses,
                    grad_norm=report.grad_norm,
                    update_ratio=report.update_ratio,
                    update_cosine=report.update_cosine,
                    val_loss=float(self.val_loss[slot]),
                    val_metric=float(self.val_metric[slot]),
                    progress=self.steps_done[slot] / self.total_steps,
                )
                terminated[slot] = diverged or self.steps_done[slot] >= self.total_steps
                infos = self._add_info(infos, self._info(slot, report.mean_loss, diverged), slot)
        truncated = np.zeros(k, dtype=bool)
        ended = np.flatnonzero(terminated)
        if len(ended):
            final_obs = np.full(k, None, dtype=object)
            final_info: dict[str, Any] = {}
            for slot in ended:
                final_obs[slot] = obs[slot].copy()
                final_info = self._add_info(final_info, _slot_info(infos, slot), slot)
            for slot, first in self._start({int(s): self._draw() for s in ended}).items():
                obs[slot] = first
            infos["final_obs"], infos["_final_obs"] = final_obs, terminated.copy()
            infos["final_info"], infos["_final_info"] = final_info, terminated.copy()
        return obs, rewards, terminated, truncated, infos

    def _info(self, slot: int, train_loss: float, diverged: bool) -> dict[str, Any]:
        """The info dict of one slot, as :class:`~lrgym.core.env.LRControlEnv` gives it."""
        optimizer = self.optimizers[slot]
        return {
            "task": self.task_id,
            "lr": DecisionPath.lr(optimizer),
            "initial_lr": float(self.initial_lr[slot]),
            "run_seed": int(self.run_seed[slot]),
            "train_loss": train_loss,
            "val_loss": float(self.val_loss[slot]),
            "val_metric": float(self.val_metric[slot]),
            "steps": int(self.steps_done[slot]),
            "diverged": diverged,
            **self.hparams.values(optimizer),
        }

    def resume_state(self) -> dict[str, Any]:
        """What ``lrgym train --resume`` records of this env: nothing to replay.

        Batched runs are not replayed on resume: the agent, its normalisation and the
        RNG states continue exactly, but every slot starts a fresh run (so a resumed
        batched training is close to, not identical with, an uninterrupted one).
        """
        return {"batched": True}

    def restore_resume_state(self, state: dict[str, Any]) -> None:
        """Nothing to restore (see :meth:`resume_state`)."""

    def close_extras(self, **kwargs: Any) -> None:
        """Close the fallback envs, if any."""
        for env in self.fallback:
            env.close()


def _slot_info(infos: dict[str, Any], slot: int) -> dict[str, Any]:
    """Slot ``slot``'s entries of a vector info dict."""
    return {k: v[slot] for k, v in infos.items() if not k.startswith("_") and f"_{k}" in infos}


__all__ = ["BatchedLRControlEnv"]
