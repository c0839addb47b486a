"""The Gymnasium environment: one episode is one real training run."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from lrgym.core.actions import LogLRAction
from lrgym.core.decision import DecisionPath
from lrgym.core.hyperparams import LR, HyperParamSet
from lrgym.core.registration import make_task
from lrgym.core.signals import OBS_BOUND
from lrgym.core.task import Task
from lrgym.core.trainee import DIVERGENCE_FACTOR, Trainee, is_diverged
from lrgym.io.validate import (
    check_initial_lr,
    options_mapping,
    real_number,
    whole_number,
)

RESET_OPTIONS = ("initial_lr", "run_seed", "initial_hparams", "val_every")
"""The keys ``reset(options=...)`` takes; any other key is refused (a typo would
otherwise silently draw a random value)."""

INITIAL_LR_RANGE = (1e-5, 1e-1)
"""Initial LRs are drawn log-uniformly from this range unless ``options`` fixes one."""


class LRControlEnv(gym.Env):
    """Control the learning rate (and optionally more hyperparameters) of a real run.

    ## Description
    Each episode builds a fresh run of the task (model, optimizer and data split drawn
    from the episode's seed) and trains it for ``total_steps`` optimizer steps. Every
    ``decision_interval`` steps the agent observes scale-free feedback from the run and
    multiplies the learning rate by a power of two; with ``hparams`` it also moves
    momentum and weight decay (torch) or ``max_depth`` and ``subsample`` (XGBoost).

    ## Action Space
    ``Box(-1, 1, (n,), float32)``, one dimension per name in ``hparams`` (default
    ``["lr"]``, n = 1). Dimension 0 is a log2 LR multiplier,
    ``lr *= 2 ** (a * max_log2_step)`` (default ``max_log2_step=1``: ×0.5 … ×2), clipped
    to ``[min_lr, max_lr]``. Values are clipped to [-1, 1]; a non-finite value (NaN,
    inf) counts as 0, i.e. holds that hyperparameter (never an error). Further dimensions
    move the hyperparameters of :data:`lrgym.core.hyperparams.HYPERPARAMS` in every param
    group, each on its scale and
    within its bounds: ``momentum`` (SGD momentum or Adam β1; logit, [0.1, 0.99], ±1
    nat), ``weight_decay`` (log2, [1e-6, 0.1], ×0.5 … ×2; 0 starts from 1e-6),
    ``max_depth`` (integer, [2, 10], ±1) and ``subsample`` (logit, [0.5, 0.99], ±1 nat).

    ## Observation Space
    ``Box(-10, 10, (14 + n - 1,), float32)`` with the features of
    :data:`lrgym.core.signals.FEATURES`: log LR, LR relative to the initial LR, train loss
    ratio, slope and noise, gradient norm ratio, update size, update cosine, validation
    loss ratio and slope, validation metric and its gap to the best so far, progress,
    previous LR action; then, for each extra hyperparameter, its current value mapped to
    [-1, 1] over its bounds on its scale (``hp_<name>``).

    ## Rewards
    The drop in log validation loss over the chunk, ``log L_{t-1} - log L_t`` (losses
    floored at 1e-8), so an episode's return is ``log(L_0 / L_T)`` whatever the task's
    loss scale. A diverged run gets ``-divergence_penalty`` instead.

    With ``val_every=n`` (or ``options["val_every"]``) the validation features show a
    fresh validation only at every n-th decision and the latest shown one in between, as
    in a loop that validates every n decisions (0: never); rewards always use the
    fresh validation loss. Meta-training draws n per episode (``lrgym train
    --val-every``) so that an agent does not depend on its user's validation cadence.

    ## Starting State
    Initial LR from ``options["initial_lr"]`` or log-uniform over ``[1e-5, 1e-1]``; the
    run's seed from ``options["run_seed"]`` or drawn from the env's ``np_random``. Extra
    hyperparameters start at the task's own values, or at ``options["initial_hparams"]``
    (a dict such as ``{"momentum": 0.5}``, within bounds). ``options`` must be a dict
    (``TypeError`` otherwise) whose keys are :data:`RESET_OPTIONS`: any other key, e.g. the
    typo ``intial_lr``, raises a ``ValueError`` naming the known ones.

    ## Episode End
    Terminated when the step budget is spent, or when the run diverges (non-finite
    training loss, or validation loss above ``divergence_factor`` × its initial value);
    then ``info["diverged"]`` is True. Divergence never raises.

    ## Arguments
    ``gymnasium.make("lrgym/DigitsMLP-v0", decision_interval=25, total_steps=1000)``;
    unset arguments (``None``) come from the task's :class:`~lrgym.core.task.TaskInfo`; both
    must be whole numbers >= 1 (0, negative or fractional values are refused), and
    ``divergence_factor`` (> 0) and ``divergence_penalty`` (>= 0) finite numbers.
    ``gymnasium.make("lrgym/DigitsMLP-v0", hparams=["lr", "momentum", "weight_decay"])``
    controls more hyperparameters; ``lrgym/<Task>-MultiHP-v0`` ids fix that set.

    ## Version History
    * v0: Initial version (observation layout 1); ``hparams`` and the ``-MultiHP-v0``
      variants added without changing the single-LR behaviour. XGBoost tasks: a run's
      rounds now grow on one booster, as one ``xgb.train`` call would; before, every
      decision continued from a copy, so a run depended slightly on the decision
      interval (losses differed by up to ~0.03 after a few decisions).
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        task: str | Task,
        decision_interval: int | None = None,
        total_steps: int | None = None,
        action_map: LogLRAction | None = None,
        divergence_factor: float = DIVERGENCE_FACTOR,
        divergence_penalty: float = 3.0,
        hparams: Sequence[str] = (LR,),
        val_every: int = 1,
    ) -> None:
        self.task = make_task(task) if isinstance(task, str) else task
        self.task_id = task if isinstance(task, str) else type(task).__name__
        self.hparams = HyperParamSet(hparams)
        self.hparams.check_backend(self.task.backend, self.task_id)
        info = self.task.info
        # None means the task's own value; anything else must be a whole number >= 1
        self.decision_interval = whole_number(
            "decision_interval",
            info.decision_interval if decision_interval is None else decision_interval,
            1,
        )
        self.total_steps = whole_number(
            "total_steps", info.total_steps if total_steps is None else total_steps, 1
        )
        if not 1 <= self.decision_interval <= self.total_steps:
            raise ValueError(
                f"need 1 <= decision_interval <= total_steps, got {self.decision_interval} "
                f"and {self.total_steps}"
            )
        self.action_map = action_map or LogLRAction()
        self.divergence_factor = real_number("divergence_factor", divergence_factor, above=0)
        self.divergence_penalty = real_number("divergence_penalty", divergence_penalty, 0)
        self.val_every = whole_number("val_every", val_every, 0)
        self.path = DecisionPath(self.hparams, self.action_map)
        n = len(self.hparams)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(n,), dtype=np.float32)
        self.observation_space = spaces.Box(
            -OBS_BOUND, OBS_BOUND, shape=(self.path.size,), dtype=np.float32
        )
        self.trainee: Trainee | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        options = options_mapping("reset options", options, RESET_OPTIONS)
        extras = tuple(h.name for h in self.hparams.extras) or ("(none: LR only)",)
        initial = options_mapping("initial_hparams", options.get("initial_hparams"), extras)
        low, high = np.log(INITIAL_LR_RANGE)
        drawn_lr = float(np.exp(self.np_random.uniform(low, high)))
        drawn_seed = int(self.np_random.integers(2**31 - 1))
        self.initial_lr = check_initial_lr(options.get("initial_lr", drawn_lr))
        self.run_seed = whole_number("run_seed", options.get("run_seed", drawn_seed), 0)
        if self.trainee is not None:
            self.trainee.close()
        self.trainee = self.task.build(self.run_seed, self.initial_lr)
        if self.hparams.extras:
            self.hparams.check_optimizer(self.trainee.optimizer)
            self.hparams.set_initial(self.trainee.optimizer, initial)
        ev = self.trainee.evaluate("val")
        self.initial_val_loss = ev.loss
        self.val_loss, self.val_metric = ev.loss, ev.metric
        self.steps_done = 0
        val_every = whole_number("val_every", options.get("val_every", self.val_every), 0)
        obs = self.path.start(self.trainee.optimizer, ev.loss, ev.metric, val_every=val_every)
        return obs, self._info(train_loss=math.nan, diverged=False)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.trainee is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        self.path.apply(action, self.trainee.optimizer)
        steps = min(self.decision_interval, self.total_steps - self.steps_done)
        report = self.trainee.train(steps)
        self.steps_done += report.steps
        prev_val = self.val_loss
        ev = None if report.steps < steps else self.trainee.evaluate("val")
        if ev is not None:
            self.val_loss, self.val_metric = ev.loss, ev.metric
        diverged = is_diverged(
            report, steps, ev.loss if ev else None, self.initial_val_loss, self.divergence_factor
        )
        if diverged:
            reward = -self.divergence_penalty
        else:
            reward = math.log(max(prev_val, 1e-8)) - math.log(max(self.val_loss, 1e-8))
        obs = self.path.observe(
            self.trainee.optimizer,
            report.losses,
            grad_norm=report.grad_norm,
            update_ratio=report.update_ratio,
            update_cosine=report.update_cosine,
            val_loss=self.val_loss,
            val_metric=self.val_metric,
            progress=self.steps_done / self.total_steps,
        )
        terminated = diverged or self.steps_done >= self.total_steps
        info = self._info(train_loss=report.mean_loss, diverged=diverged)
        return obs, float(reward), terminated, False, info

    def _info(self, train_loss: float, diverged: bool) -> dict[str, Any]:
        extras = self.hparams.values(self.trainee.optimizer) if self.hparams.extras else {}
        return {
            "task": self.task_id,
            "lr": self.path.lr(self.trainee.optimizer),
            "initial_lr": self.initial_lr,
            "run_seed": self.run_seed,
            "train_loss": train_loss,
            "val_loss": self.val_loss,
            "val_metric": self.val_metric,
            "steps": self.steps_done,
            "diverged": diverged,
            **extras,
        }

    def close(self) -> None:
        if self.trainee is not None:
            self.trainee.close()
            self.trainee = None
