"""Measure a task's validation-metric target, by the rule every built-in task's target
follows (what `lrgym calibrate` runs).

The rule: run the seven static baselines (:data:`lrgym.controllers.BASELINES`) at the
task's default LR on seeds 100-104, take each schedule's median final validation metric,
and set the target to 0.97 × the best of these medians, floored to two decimals. The
seeds are ones `lrgym compare` and `lrgym evaluate` do not use by default (they start at
0), so a target is never fitted to the runs it later judges. Calibrate once per task
version, before any learned agent is evaluated on it.

Runs that diverged, or ended with a NaN or infinite metric, are left out of the medians
(a diverged run's last metric is often its untrained model's first evaluation); a task
on which no run is left is refused with a ``ValueError``.

The target is written to ``lrgym_targets.json`` beside the module that defines the task
(:mod:`lrgym.core.targets`); a task whose ``TaskInfo.target`` is ``math.inf`` reads it from
there. A finite target in the task's code takes precedence.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lrgym.controllers import BASELINES
from lrgym.core.registration import spec
from lrgym.core.targets import targets_path, write_target
from lrgym.harness.compare import RunResult, grid, run_grid

SHARE = 0.97
"""The target is this share of the best static schedule's median final validation metric."""

CALIBRATION_SEEDS: tuple[int, ...] = (100, 101, 102, 103, 104)
"""Run seeds of a calibration: outside the 0…N-1 that evaluations use by default."""


def target_rule(best_median: float) -> float:
    """``SHARE × best_median``, floored to two decimals."""
    return math.floor(SHARE * best_median * 100) / 100


@dataclass
class Calibration:
    """The measured target of one task, and what it rests on.

    Attributes:
        task: Task id.
        metric: The task's headline validation metric.
        target: The proposed target (:func:`target_rule` of ``best_median``).
        best_scheduler: The static schedule with the highest median.
        best_median: Its median final validation metric.
        medians: Median final validation metric of every static schedule.
        seeds: The run seeds used.
        code_target: The target the task's own code states (``inf``: none).
    """

    task: str
    metric: str
    target: float
    best_scheduler: str
    best_median: float
    medians: dict[str, float] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=list)
    code_target: float = math.inf

    def record(self) -> dict[str, Any]:
        """The JSON record written to the targets file."""
        from lrgym._version import __version__

        data = asdict(self)
        data.pop("task")
        data.pop("code_target")
        data["rule"] = (
            f"{SHARE} x the best static schedule's median final validation {self.metric} at "
            "the default LR, floored to 2 decimals"
        )
        data["lrgym_version"] = __version__
        return data


def calibrate(
    tasks: Sequence[str],
    seeds: Iterable[int] = CALIBRATION_SEEDS,
    workers: int = 1,
    total_steps: int | None = None,
    on_done: Callable[[RunResult], None] | None = None,
) -> list[Calibration]:
    """Run the static baselines on ``tasks`` and propose each task's target.

    Args:
        tasks: Registered task ids.
        seeds: Run seeds (default 100-104).
        workers: Worker processes.
        total_steps: Override every task's step budget (only for quick checks: a target
            belongs to the task's own budget).
        on_done: Called after each run (progress).
    """
    seeds = list(seeds)
    specs = grid(tasks, BASELINES, seeds)
    runs, _ = run_grid(specs, total_steps=total_steps, workers=workers, on_done=on_done)
    found = []
    for task in tasks:
        mine = runs[runs["task"] == task]
        medians = _healthy_medians(mine)
        if medians.empty:
            raise ValueError(
                f"{task}: no run of any static schedule ended without diverging with a "
                f"finite validation {mine['metric'].iloc[0] if len(mine) else 'metric'}, so "
                "there is nothing to set a target from (a diverged run's metric is its "
                "untrained model's); check the task (its default LR, its loss), then "
                "calibrate again"
            )
        best = str(medians.idxmax())
        found.append(
            Calibration(
                task=task,
                metric=str(mine["metric"].iloc[0]),
                target=target_rule(float(medians[best])),
                best_scheduler=best,
                best_median=float(medians[best]),
                medians={k: round(float(v), 4) for k, v in medians.items()},
                seeds=seeds,
                code_target=_code_target(task),
            )
        )
    return found


def _healthy_medians(runs: pd.DataFrame) -> pd.Series:
    """Per schedule, the median final validation metric of its runs that did not diverge
    and ended with a finite metric; schedules with no such run are left out."""
    metric = pd.to_numeric(runs["final_val_metric"], errors="coerce")
    healthy = runs[~runs["diverged"].astype(bool) & np.isfinite(metric.to_numpy(float))]
    return healthy.groupby("scheduler")["final_val_metric"].median()


def _code_target(task: str) -> float:
    """The target the task's own code states (before any targets file is read)."""
    s = spec(task)
    factory = s.entry_point
    if isinstance(factory, str):
        module, _, attr = factory.partition(":")
        factory = getattr(importlib.import_module(module), attr)
    return float(factory(**s.kwargs).info.target)


def write_calibration(calibration: Calibration) -> Path | None:
    """Write the target into ``lrgym_targets.json`` beside the task's module.

    Returns:
        The file written, or None for lrgym's own tasks (their targets are fixed in
        lrgym) and for tasks whose module has no folder.
    """
    s = spec(calibration.task)
    path = targets_path(s.entry_point)
    if path is None or calibration.task.startswith("lrgym/"):
        return None
    write_target(path, calibration.task, calibration.record())
    return path


__all__ = [
    "CALIBRATION_SEEDS",
    "SHARE",
    "Calibration",
    "calibrate",
    "target_rule",
    "write_calibration",
]
