"""What the comparison harness measures, as pure functions of its ``runs`` frame.

Measures:

* **target**: each task's validation metric threshold (``TaskInfo.target``), fixed
  before any learned agent is evaluated. A run reaches it at the first evaluation whose
  validation metric is ``>= target``; ``steps_to_target`` is that evaluation's step
  (``inf`` if never reached), so its resolution is the task's evaluation interval.
* **profile score** (:func:`performance_profile`): AlgoPerf-style; 1 = fastest to the
  target on every task, 0 = never within ``tau_max`` × the fastest.
* **LR robustness** (:func:`lr_robustness`): share of runs reaching the target per
  initial LR.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

RUN_KEYS = ("task", "scheduler", "seed", "initial_lr")
"""Columns that identify one run in both ``runs`` and ``curves``."""

REQUIRED_RUN_COLUMNS = (
    "task", "scheduler", "seed", "initial_lr", "default_lr", "metric", "target",
    "final_val_metric", "final_test_metric", "reached_target", "steps_to_target", "diverged",
)  # fmt: skip
REQUIRED_CURVE_COLUMNS = ("task", "scheduler", "seed", "initial_lr", "step", "lr", "val_metric")


def mean_ci(values: Iterable[float], confidence: float = 0.95) -> tuple[float, float]:
    """Mean and confidence-interval half-width (Student's t), ignoring NaN.

    Args:
        values: Sample values; NaN entries are dropped.
        confidence: Two-sided confidence level.

    Returns:
        ``(mean, half_width)``: ``(nan, nan)`` for no values, half-width 0 for one value.
    """
    x = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, float)
    x = x[~np.isnan(x)]
    n = x.size
    if n == 0:
        return math.nan, math.nan
    mean = float(x.mean())
    if n == 1:
        return mean, 0.0
    sem = float(x.std(ddof=1)) / math.sqrt(n)
    return mean, float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sem


def performance_profile(
    runs: pd.DataFrame, tau_max: float = 4.0, measure: str = "steps_to_target"
) -> pd.Series:
    """AlgoPerf-style performance-profile score per scheduler, in ``[0, 1]``.

    Only runs at each task's default LR count. Per (task, scheduler) the time is the
    median of ``measure`` over seeds (``inf`` when most seeds missed the target, or when
    the scheduler has no run on the task). Per task the ratio is time / fastest time
    (``inf`` if missed, or if every scheduler missed; 1 where the time equals the
    fastest, including a target met at step 0). ``rho(tau)`` is the share of tasks with
    ratio ``<= tau``, and the score is the mean of ``rho`` over ``tau`` in
    ``[1, tau_max]``. ``rho`` is a step function, so the integral is computed exactly
    (it is the limit of a fine ``np.trapezoid`` grid).

    Args:
        runs: The harness's runs frame.
        tau_max: Largest ratio to the fastest that still earns credit (> 1).
        measure: ``"steps_to_target"`` or ``"seconds_to_target"``.

    Returns:
        Scores indexed by scheduler, sorted descending (ties by name).
    """
    if not tau_max > 1:
        raise ValueError(f"tau_max must be > 1, got {tau_max}")
    ratios = _time_ratios(runs, measure)
    # integral over [1, tau_max] of 1[r <= tau] dtau = tau_max - max(r, 1) when r <= tau_max
    credit = (tau_max - ratios.clip(lower=1.0)).clip(lower=0.0) / (tau_max - 1)
    score = credit.mean(axis=0).rename("score")
    score.index.name = "scheduler"
    return score.sort_index().sort_values(ascending=False, kind="stable")


def _time_ratios(runs: pd.DataFrame, measure: str) -> pd.DataFrame:
    """Ratio of each scheduler's median time to the fastest, tasks × schedulers."""
    check_columns(runs, (*REQUIRED_RUN_COLUMNS, measure), "runs")
    default = runs[runs["default_lr"].astype(bool)]
    if default.empty:
        raise ValueError("no runs at the default LR (default_lr True); nothing to profile")
    times = default[measure].astype(float).fillna(math.inf)
    median = times.groupby([default["task"], default["scheduler"]]).median()
    table = median.unstack("scheduler").reindex(
        columns=sorted(runs["scheduler"].unique()), fill_value=math.inf
    )
    table = table.fillna(math.inf)
    best = table.min(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = table.div(best, axis=0)
    ratios = ratios.where(table.ne(best, axis=0), 1.0)  # 0/0 when the best is step 0
    ratios.loc[~np.isfinite(best)] = math.inf  # every scheduler missed this task
    return ratios.fillna(math.inf)


def lr_robustness(runs: pd.DataFrame) -> pd.DataFrame:
    """Share of runs that reached the target, per scheduler and initial LR.

    Args:
        runs: The harness's runs frame (all tasks pooled).

    Returns:
        Rows: schedulers; columns: initial LRs (ascending), then ``"all"`` (share over
        every run of the scheduler).
    """
    check_columns(runs, ("scheduler", "initial_lr", "reached_target"), "runs")
    reached = runs["reached_target"].astype(float)
    table = reached.groupby([runs["scheduler"], runs["initial_lr"].astype(float)]).mean()
    table = table.unstack("initial_lr").sort_index(axis=1)
    table.columns = pd.Index(list(table.columns), dtype=object, name="initial_lr")
    table["all"] = reached.groupby(runs["scheduler"]).mean()
    table.index.name = "scheduler"
    return table.sort_index()


SUMMARY_COLUMNS = (
    "metric", "test_mean", "test_ci", "val_mean", "val_ci", "median_steps_to_target",
    "reach_rate", "touch_rate", "diverged_share", "n_runs",
)  # fmt: skip
"""Columns of :func:`summary_table`."""


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per task and scheduler, over seeds at the task's default LR.

    Args:
        runs: The harness's runs frame.

    Returns:
        Indexed by (task, scheduler) with :data:`SUMMARY_COLUMNS`: the final test and
        validation metric mean and 95% CI half-width (NaN runs, e.g. diverged, are
        left out), median steps to target (``inf`` when most seeds missed), reach rate
        (ended at or above the target without diverging), touch rate (any evaluation at
        or above it; the same as reach in files written before touches were recorded),
        share of diverged runs and number of runs.
    """
    check_columns(runs, REQUIRED_RUN_COLUMNS, "runs")
    default = runs[runs["default_lr"].astype(bool)]
    rows = []
    for (task, scheduler), g in default.groupby(["task", "scheduler"], sort=True):
        test_mean, test_ci = mean_ci(g["final_test_metric"].astype(float))
        val_mean, val_ci = mean_ci(g["final_val_metric"].astype(float))
        rows.append(
            {
                "task": task,
                "scheduler": scheduler,
                "metric": g["metric"].iloc[0],
                "test_mean": test_mean,
                "test_ci": test_ci,
                "val_mean": val_mean,
                "val_ci": val_ci,
                "median_steps_to_target": float(
                    np.median(g["steps_to_target"].astype(float).fillna(math.inf))
                ),
                "reach_rate": float(g["reached_target"].astype(float).mean()),
                "touch_rate": float(
                    g.get("touched_target", g["reached_target"]).astype(float).mean()
                ),
                "diverged_share": float(g["diverged"].astype(float).mean()),
                "n_runs": len(g),
            }
        )
    columns = ["task", "scheduler", *SUMMARY_COLUMNS]
    return pd.DataFrame(rows, columns=columns).set_index(["task", "scheduler"])


def check_columns(frame: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    """Raise a ``ValueError`` naming the columns ``frame`` lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} frame is missing columns: {', '.join(missing)}")
