"""Running one configuration, and the short probe runs that describe a task.

:func:`run_config` trains one configuration for a number of optimizer steps and
reports its final validation and test metric. :func:`probe_task` runs a few short probes
(the space's defaults at LRs spread over the LR range) and turns what they report into
the task's feature vector: loss-curve shape, gradient statistics, and data and model
descriptors. The same function computes the features for the logs the suggester is
trained on and for a new task it is asked about.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from lrgym.suggester.knobs import TunableTask
from lrgym.suggester.space import STEPS_KNOB, Config
from lrgym.trainee import is_diverged

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
        n_probes: Probe runs; probe ``i`` uses the space's defaults with the LR at the
            ``(i + 1) / (n_probes + 1)`` point of the LR range (log scale).
        steps: Optimizer steps of each probe.
    """

    n_probes: int = 3
    steps: int = 30

    def __post_init__(self) -> None:
        if self.n_probes < 1 or self.steps < 10:
            raise ValueError(
                f"need n_probes >= 1 and steps >= 10, got n_probes={self.n_probes}, "
                f"steps={self.steps}"
            )

    @property
    def cost(self) -> int:
        """Optimizer steps all probes take together."""
        return self.n_probes * self.steps


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


def feature_names(settings: ProbeSettings) -> tuple[str, ...]:
    """Names of :func:`probe_task`'s features for ``settings``."""
    per = tuple(f"p{i}_{name}" for i in range(settings.n_probes) for name in PER_PROBE)
    return (*per, *DESCRIPTORS)


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
    return ProbeResult(np.asarray(features + descriptors), float(anchor), settings.cost)
