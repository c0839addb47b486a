"""Running one configuration, and the short probe runs that describe a task.

:func:`run_config` trains one configuration for a number of optimizer steps and
reports its final validation and test metric. :func:`probe_task` runs a few short probes
and turns what they report into the task's feature vector:

* fixed-LR probes (the space's defaults at LRs spread over the LR range): loss-curve
  shape, gradient statistics, validation metric;
* LR range tests (Smith, "Cyclical Learning Rates", 2017), one per optimizer the space
  offers (two at most): the LR grows geometrically from a decade below the LR range to
  a decade above it while the smoothed training loss is watched; the LRs where it falls
  fastest, where it is lowest and where it blows up locate the task's usable LRs;
* data and model descriptors.

The same function computes the features for the logs the suggester is trained on and for
a new task it is asked about.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from lrgym.core.trainee import is_diverged
from lrgym.suggester.knobs import TunableTask
from lrgym.suggester.space import STEPS_KNOB, Config

METRIC_FLOOR = -1.0
"""Metrics are floored here (a diverged regression's R² is -inf), so medians stay finite."""


@dataclass(frozen=True)
class RunOutcome:
    """One finished run of a configuration.

    Attributes:
        val_metric: Final validation metric (floored at :data:`METRIC_FLOOR`).
        test_metric: Final test metric (floored likewise).
        steps: Optimizer steps trained (the run's compute).
        diverged: True if the loss became non-finite.
        wall_seconds: Wall-clock time of the run.
    """

    val_metric: float
    test_metric: float
    steps: int
    diverged: bool
    wall_seconds: float


def _floor(value: float) -> float:
    return max(float(value), METRIC_FLOOR) if math.isfinite(value) else METRIC_FLOOR


@contextmanager
def seeded_run(seed: int) -> Iterator[None]:
    """Seed torch's global RNG from ``seed`` for one run and restore it afterwards.

    Dropout draws its masks from the global RNG while training; without this, two runs
    of the same configuration and seed would differ.
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(np.random.SeedSequence([int(seed), 5]).generate_state(1)[0]))
        yield


def run_config(tt: TunableTask, config: Config, seed: int, steps: int) -> RunOutcome:
    """Train ``config`` on ``tt`` for ``steps`` steps (its ``rounds`` if it has that knob).

    Args:
        tt: The task and its knobs.
        config: The configuration (missing knobs at their defaults).
        seed: Seeds data split, initialisation and minibatch order.
        steps: Optimizer steps of a run whose space has no ``rounds`` knob.
    """
    start = time.perf_counter()
    n = tt.steps(config, steps)
    with seeded_run(seed):
        trainee = tt.build(seed, config)
        try:
            report = trainee.train(n)
            diverged = is_diverged(report, n, None, math.nan)  # stopped early, or NaN losses
            val, test = trainee.evaluate("val").metric, trainee.evaluate("test").metric
        finally:
            trainee.close()
    return RunOutcome(_floor(val), _floor(test), n, bool(diverged), time.perf_counter() - start)


@dataclass(frozen=True)
class ProbeSettings:
    """How a task is probed.

    Attributes:
        n_probes: Fixed-LR probe runs; probe ``i`` uses the space's defaults with the LR
            at the ``(i + 1) / (n_probes + 1)`` point of the LR range (log scale).
        steps: Optimizer steps of each fixed-LR probe.
        range_steps: Optimizer steps of each LR range test (0: none). One test per
            optimizer the space offers, two at most (:data:`RANGE_SLOTS`).
    """

    n_probes: int = 3
    steps: int = 30
    range_steps: int = 0

    def __post_init__(self) -> None:
        if self.n_probes < 1 or self.steps < 10:
            raise ValueError(
                f"need n_probes >= 1 and steps >= 10, got n_probes={self.n_probes}, "
                f"steps={self.steps}"
            )
        if self.range_steps and self.range_steps < 20:
            raise ValueError(
                f"an LR range test needs range_steps >= 20 (or 0), got {self.range_steps}"
            )

    @property
    def cost(self) -> int:
        """Optimizer steps all probes take together, at most (two range tests)."""
        return self.n_probes * self.steps + len(RANGE_SLOTS) * self.range_steps

    def cost_for(self, tt: TunableTask) -> int:
        """Optimizer steps the probes take on ``tt`` (one range test per optimizer)."""
        return self.n_probes * self.steps + len(range_configs(tt)) * self.range_steps


PER_PROBE = (
    "log_loss_ratio",
    "loss_noise",
    "diverged",
    "val_metric",
    "log_grad_norm",
    "log_val_ratio",
)
"""Features of one probe, in order."""
DESCRIPTORS = (
    "log_n_train",
    "log_n_inputs",
    "log_classes",
    "regression",
    "xgboost",
    "conv",
    "recurrent",
    "log_params",
)
"""Data and model descriptors, in order."""


RANGE_SLOTS = ("default", "other")
"""Range-test slots: the space's default optimizer, and its first other one (a space with
one optimizer fills both slots from one test)."""
PER_RANGE = ("lr_steepest", "lr_min", "lr_blowup", "log_loss_drop")
"""Features of one LR range test, in order: log10 of the LR where the smoothed loss falls
fastest, where it is lowest and where it first exceeds :data:`BLOWUP` × its minimum
(or the end LR + 1 decade if it never does), and the log of the lowest over the first
smoothed loss."""
RANGE_DECADES = 1.0
"""The range test runs from this many decades below the LR range to as many above."""
BLOWUP = 4.0
SMOOTHING = 0.8
"""EMA factor of the range test's loss (with bias correction, as in fastai's LR finder)."""


def feature_names(settings: ProbeSettings) -> tuple[str, ...]:
    """Names of :func:`probe_task`'s features for ``settings``."""
    per = tuple(f"p{i}_{name}" for i in range(settings.n_probes) for name in PER_PROBE)
    ranges = tuple(
        f"rt_{slot}_{name}"
        for slot in (RANGE_SLOTS if settings.range_steps else ())
        for name in PER_RANGE
    )
    return (*per, *ranges, *DESCRIPTORS)


def range_configs(tt: TunableTask) -> list[dict]:
    """The range tests' configurations: the defaults, and the defaults with the first
    other optimizer if the space has an ``optimizer`` knob with choices."""
    base = tt.space.defaults()
    configs = [base]
    if "optimizer" in tt.space and not tt.space["optimizer"].is_range:
        others = [c for c in tt.space["optimizer"].choices if c != base["optimizer"]]
        if others:
            configs.append({**base, "optimizer": others[0]})
    return configs


def range_slot(tt: TunableTask, config: Config) -> int:
    """Index into :data:`RANGE_SLOTS` of the range test that matches ``config``'s optimizer."""
    if "optimizer" not in tt.space:
        return 0
    default = tt.space["optimizer"].default
    return 0 if config.get("optimizer", default) == default else 1


def _lr_bounds(tt: TunableTask) -> tuple[float, float]:
    if "lr" in tt.space and tt.space["lr"].is_range:
        knob = tt.space["lr"]
        return float(knob.low), float(knob.high)
    lr = float(tt.space.defaults().get("lr", 1e-3))
    return lr / 100, lr * 10


def range_test(tt: TunableTask, config: dict, seed: int, steps: int) -> list[float]:
    """One LR range test of ``config``; returns :data:`PER_RANGE`'s features.

    The LR follows ``torch.optim.lr_scheduler.ExponentialLR`` from a decade below the
    LR range to a decade above it; the loss is smoothed by an exponential moving average
    (the LR finder's rule; no library offers it on top of a Trainee, so it is computed
    here). A run that stops on a non-finite loss has blown up at that LR.
    """
    import torch

    low, high = _lr_bounds(tt)
    start = low / 10**RANGE_DECADES
    end = high * 10**RANGE_DECADES
    gamma = (end / start) ** (1.0 / max(steps - 1, 1))
    if STEPS_KNOB in tt.space:
        config = {**config, STEPS_KNOB: tt.space[STEPS_KNOB].default}
    with seeded_run(seed):
        ranged = "lr" in tt.space and tt.space["lr"].is_range  # else the knob's default
        trainee = tt.build(seed, {**config, "lr": low} if ranged else config)
        try:
            trainee.set_lr(start)
            sched = torch.optim.lr_scheduler.ExponentialLR(trainee.optimizer, gamma)
            with warnings.catch_warnings():  # proxy optimizers (XGBoost) never step
                warnings.simplefilter("ignore", UserWarning)
                report = trainee.train(steps, on_step=lambda _loss: sched.step())
        finally:
            trainee.close()
    lrs = start * gamma ** np.arange(len(report.losses))
    losses = np.asarray(report.losses, dtype=float)
    finite = np.isfinite(losses)
    n = int(np.argmin(finite)) if not finite.all() else len(losses)
    log_lrs = np.log10(lrs)
    if n < 3:
        lr0 = math.log10(start)
        return [lr0, lr0, lr0, 0.0]
    smooth, avg = np.empty(n), 0.0
    for i in range(n):
        avg = SMOOTHING * avg + (1 - SMOOTHING) * losses[i]
        smooth[i] = avg / (1 - SMOOTHING ** (i + 1))
    i_min = int(np.argmin(smooth))
    slope = np.diff(smooth[: i_min + 1]) if i_min > 0 else np.zeros(1)
    i_steep = int(np.argmin(slope)) if i_min > 0 else 0
    above = np.flatnonzero(smooth[i_min:] > BLOWUP * max(smooth[i_min], 1e-8))
    if above.size:
        blowup = float(log_lrs[i_min + above[0]])
    elif n < len(losses):  # stopped on a non-finite loss
        blowup = float(log_lrs[n])
    else:
        blowup = math.log10(end) + 1.0
    drop = math.log(max(smooth[i_min], 1e-8) / max(smooth[0], 1e-8))
    return [float(log_lrs[i_steep]), float(log_lrs[i_min]), blowup, _clip(drop, -10, 0)]


def probe_configs(tt: TunableTask, settings: ProbeSettings) -> list[dict]:
    """The probes' configurations: defaults, LR spread over its range, short rounds."""
    base = tt.space.defaults()
    configs = []
    for i in range(settings.n_probes):
        config = dict(base)
        if "lr" in tt.space and tt.space["lr"].is_range:
            knob = tt.space["lr"]
            frac = (i + 1) / (settings.n_probes + 1)
            config["lr"] = float(knob.low * (knob.high / knob.low) ** frac)
        configs.append(config)
    return configs


@dataclass(frozen=True)
class ProbeResult:
    """What the probes measured.

    Attributes:
        features: The task's feature vector (see :func:`feature_names`).
        anchor: Best validation metric among the probes (the level predictions start from).
        steps: Optimizer steps the probes took.
    """

    features: np.ndarray
    anchor: float
    steps: int


def _clip(value: float, low: float, high: float, missing: float = 0.0) -> float:
    return float(np.clip(value, low, high)) if math.isfinite(value) else missing


def _descriptors(trainee: object, tt: TunableTask) -> list[float]:
    n_train = n_inputs = params = 0.0
    classes, regression = 0.0, 0.0
    tensors = getattr(trainee, "tensors", None)
    if isinstance(tensors, dict) and "train" in tensors:
        x, y = tensors["train"]
        n_train, n_inputs = float(x.shape[0]), float(np.prod(tuple(x.shape[1:])))
        if getattr(trainee, "loss_name", "") == "cross_entropy":
            classes = float(int(y.max()) + 1)
        else:
            regression = 1.0
        model = getattr(trainee, "model", None)
        if model is not None:
            params = float(sum(p.numel() for p in model.parameters()))
    dmatrix = getattr(trainee, "_dmatrix", None)
    if isinstance(dmatrix, dict) and "train" in dmatrix:
        n_train, n_inputs = float(dmatrix["train"].num_row()), float(dmatrix["train"].num_col())
        classes = float(getattr(trainee, "n_classes", 0))
        regression = 0.0 if getattr(trainee, "classification", True) else 1.0
    return [
        math.log10(n_train + 1),
        math.log10(n_inputs + 1),
        math.log2(classes) if classes > 1 else 0.0,
        regression,
        1.0 if tt.kind == "xgboost" else 0.0,
        1.0 if tt.kind == "cnn" else 0.0,
        1.0 if tt.kind == "lstm" else 0.0,
        math.log10(params + 1),
    ]


def probe_task(tt: TunableTask, seed: int, settings: ProbeSettings) -> ProbeResult:
    """Run the probes on ``tt`` and return the task's features.

    Args:
        tt: The task and its knobs.
        seed: Seeds every probe (probe ``i`` uses ``seed``; runs differ by LR only).
        settings: Number and length of the probes.
    """
    features: list[float] = []
    descriptors: list[float] = []
    anchor = -math.inf
    for config in probe_configs(tt, settings):
        if STEPS_KNOB in tt.space:
            config[STEPS_KNOB] = tt.space[STEPS_KNOB].default
        with seeded_run(seed):
            trainee = tt.build(seed, config)
            try:
                before = trainee.evaluate("val")
                report = trainee.train(settings.steps)
                after = trainee.evaluate("val")
                if not descriptors:
                    descriptors = _descriptors(trainee, tt)
            finally:
                trainee.close()
        losses = np.asarray(report.losses, dtype=float)
        diverged = is_diverged(report, settings.steps, None, math.nan)
        k = max(1, min(5, len(losses) // 4))
        with np.errstate(all="ignore"):
            logs = np.log(np.maximum(losses, 1e-8))
            ratio = float(np.mean(logs[-k:]) - np.mean(logs[:k])) if len(losses) else math.nan
            half = logs[len(logs) // 2 :]
            noise = float(np.std(np.diff(half))) if len(half) > 2 else math.nan
            val_ratio = math.log(max(after.loss, 1e-8) / max(before.loss, 1e-8))
        metric = _floor(after.metric)
        anchor = max(anchor, metric)
        features += [
            _clip(ratio, -5, 5, missing=5.0),
            _clip(noise, 0, 3, missing=3.0),
            1.0 if diverged else 0.0,
            metric,
            _clip(math.log10(report.grad_norm) if report.grad_norm > 0 else math.nan, -5, 5),
            _clip(val_ratio, -5, 5, missing=5.0),
        ]
    ranges: list[float] = []
    if settings.range_steps:
        tests = [range_test(tt, c, seed, settings.range_steps) for c in range_configs(tt)]
        ranges = [v for i in range(len(RANGE_SLOTS)) for v in tests[min(i, len(tests) - 1)]]
    return ProbeResult(
        np.asarray(features + ranges + descriptors), float(anchor), settings.cost_for(tt)
    )
