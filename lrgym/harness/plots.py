"""The comparison report's plots: validation metric and LR per task, LR robustness."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lrgym.harness.measures import RUN_KEYS, mean_ci
from lrgym.io._atomic import atomic_path

# Plots are drawn on ``matplotlib.figure.Figure`` objects, never through pyplot: saving
# such a figure renders with the Agg canvas (no display needed), there is no global
# figure registry to leak into (nothing to close), and importing this module does not
# call ``matplotlib.use("Agg")``, which would switch the backend of a user's notebook.


def safe_name(task: str) -> str:
    """A file-name stem for a task id: ``/`` (and other unsafe characters) become ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", task)


def styles_for(schedulers: Sequence[str]) -> dict[str, dict[str, object]]:
    """Colour and line style per scheduler, the same in every plot; the line styles
    keep schedulers with identical curves (e.g. constant and plateau early on) visible."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(schedulers) <= 10 else "tab20"]
    dashes = ("-", "--", "-.", ":")
    return {
        s: {"color": cmap(i % cmap.N), "linestyle": dashes[i % len(dashes)]}
        for i, s in enumerate(schedulers)
    }


def default_lr_curves(runs: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
    """The curve rows of runs at their task's default LR."""
    keys = list(RUN_KEYS)
    default = runs.loc[runs["default_lr"].astype(bool), keys].drop_duplicates()
    return curves.merge(default, on=keys, how="inner")


def _save(fig: Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")


METRIC_RANGES: dict[str, tuple[float, float]] = {
    "accuracy": (0.0, 1.0),
    "macro_f1": (0.0, 1.0),
    "r2": (-np.inf, 1.0),
}
"""The values a validation metric can take; CI bands are clipped to them (a t-interval
over two seeds easily runs past 100% accuracy)."""

SMALL_MULTIPLES_FROM = 4
"""With this many schedulers or more, the validation plot has one panel per scheduler."""


def _metric_stats(g: pd.DataFrame, lo: float, hi: float) -> tuple[np.ndarray, ...]:
    """Steps, mean, and the 95% CI band clipped to ``[lo, hi]``, of one scheduler's curves."""
    stat = g.groupby("step")["val_metric"].apply(lambda v: pd.Series(mean_ci(v))).unstack()
    mean, ci = stat[0].to_numpy(float), stat[1].fillna(0.0).to_numpy(float)
    return (
        stat.index.to_numpy(float),
        mean,
        np.clip(mean - ci, lo, hi),
        np.clip(mean + ci, lo, hi),
    )


def _y_limits(values: pd.Series, lo: float, hi: float, target: float | None) -> tuple[float, float]:
    """Axis limits that show every seed's curve (and the target), not the widest band."""
    v = values.replace([np.inf, -np.inf], np.nan).dropna().to_numpy(float)
    if v.size == 0:
        return (0.0, 1.0)
    low, high = float(np.percentile(v, 1)), float(v.max())  # a diverged seed's -1e6: off
    if target is not None and math.isfinite(target):
        low, high = min(low, target), max(high, target)
    pad = 0.05 * max(high - low, 1e-3)
    return max(low - pad, lo - pad * (lo > -np.inf)), min(high + pad, hi + pad)


def _scheduler_label(scheduler: str, task_runs: pd.DataFrame) -> str:
    runs_s = task_runs[task_runs["scheduler"] == scheduler]
    n_div = int(runs_s["diverged"].astype(bool).sum())
    return f"{scheduler} (n={len(runs_s)}{f', {n_div} diverged' if n_div else ''})"


def plot_val_metric(
    path: Path,
    task: str,
    task_runs: pd.DataFrame,
    task_curves: pd.DataFrame,
    styles: dict[str, dict[str, object]],
) -> None:
    """Validation metric vs step at the default LR: mean and 95% CI band over seeds.

    Bands are clipped to the metric's range (:data:`METRIC_RANGES`) and the axis covers
    the seeds' values, not the widest band. Up to three schedulers share one panel;
    more get one panel each (small multiples, the others' means in grey behind), so
    bands never pile up into one block. The legend sits outside the data.
    """
    metric = task_runs["metric"].iloc[0] if len(task_runs) else "metric"
    lo, hi = METRIC_RANGES.get(str(metric), (-np.inf, np.inf))
    target = float(task_runs["target"].iloc[0]) if len(task_runs) else None
    groups = {s: g for s, g in task_curves.groupby("scheduler", sort=True)}
    stats = {s: _metric_stats(g, lo, hi) for s, g in groups.items()}
    ylim = _y_limits(task_curves["val_metric"], lo, hi, target)
    title = f"{task}: validation {metric} at the default LR"
    note = "mean and 95% CI over seeds (CI clipped to the metric's range)"
    if len(stats) < SMALL_MULTIPLES_FROM:
        fig = Figure(figsize=(8.5, 4.5))
        ax = fig.subplots()
        for s, (steps, mean, low, high) in stats.items():
            marker = "o" if len(steps) < 3 else None
            ax.plot(
                steps,
                mean,
                **styles[s],
                lw=1.8,
                marker=marker,
                label=_scheduler_label(s, task_runs),
            )
            ax.fill_between(steps, low, high, color=styles[s]["color"], alpha=0.15, lw=0)
        if target is not None:
            ax.axhline(target, color="black", ls="--", lw=1, label=f"target {target:g}")
        ax.set_ylim(*ylim)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(f"validation {metric}")
        ax.set_title(f"{title}\n{note}", fontsize="medium")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
        _save(fig, path)
        return
    ncols = min(4, len(stats))
    nrows = math.ceil(len(stats) / ncols)
    fig = Figure(figsize=(3.1 * ncols + 0.4, 2.5 * nrows + 0.9))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharex=True, sharey=True)).ravel()
    for ax, (s, (steps, mean, low, high)) in zip(axes, stats.items(), strict=False):
        for other, (o_steps, o_mean, _, _) in stats.items():
            if other != s:
                ax.plot(o_steps, o_mean, color="0.75", lw=0.8, zorder=1)
        color = styles[s]["color"]
        ax.fill_between(steps, low, high, color=color, alpha=0.25, lw=0, zorder=2)
        ax.plot(steps, mean, color=color, lw=2, zorder=3, marker="o" if len(steps) < 3 else None)
        if target is not None:
            ax.axhline(target, color="black", ls="--", lw=0.9, zorder=2)
        ax.set_title(_scheduler_label(s, task_runs), fontsize="small", color=color)
        ax.grid(alpha=0.3)
        ax.set_ylim(*ylim)
    for ax in axes[len(stats) :]:
        ax.set_visible(False)
    for ax in axes[::ncols]:
        ax.set_ylabel(f"val {metric}", fontsize="small")
    for ax in axes[(nrows - 1) * ncols :]:
        ax.set_xlabel("optimizer step", fontsize="small")
    target_note = f"; dashed: target {target:g}" if target is not None else ""
    fig.suptitle(f"{title}\n{note}; grey: the other schedulers{target_note}", fontsize="medium")
    fig.tight_layout()
    _save(fig, path)


def plot_lr(
    path: Path,
    task: str,
    task_runs: pd.DataFrame,
    task_curves: pd.DataFrame,
    styles: dict[str, dict[str, object]],
) -> None:
    """LR vs step at the default LR (mean over seeds, log scale); markers keep schedules
    that coincide (constant and plateau early on) apart; the legend sits outside."""
    fig = Figure(figsize=(8.5, 4.5))
    ax = fig.subplots()
    plotted = False
    markers = ("o", "s", "^", "v", "D", "P", "X", "*")
    for i, (scheduler, g) in enumerate(task_curves.groupby("scheduler", sort=True)):
        mean = g.groupby("step")["lr"].mean()
        values = mean.to_numpy(float)
        values = np.where(values > 0, values, np.nan)  # a log axis cannot show LR 0
        if np.isfinite(values).any():
            ax.plot(
                mean.index.to_numpy(float),
                values,
                **styles[scheduler],
                lw=1.6,
                marker=markers[i % len(markers)],
                markersize=4,
                markevery=(i % 4, 4) if len(values) > 8 else 1,  # staggered: all visible
                label=scheduler,
            )
            plotted = True
    if plotted:
        ax.set_yscale("log")
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("learning rate (log scale)")
    ax.set_title(f"{task}: learning rate at the default LR (mean over seeds)", fontsize="medium")
    ax.grid(alpha=0.3, which="both")
    _save(fig, path)


def plot_robustness(path: Path, robustness: pd.DataFrame) -> None:
    lr_columns = [c for c in robustness.columns if c != "all"]
    fig = Figure(figsize=(max(6.0, 1.2 * len(robustness) + 3), 4.5))
    ax = fig.subplots()
    x = np.arange(len(robustness))
    width = 0.8 / max(len(lr_columns), 1)
    for i, lr in enumerate(lr_columns):
        heights = robustness[lr].to_numpy(float)
        where = x + (i - (len(lr_columns) - 1) / 2) * width
        ax.bar(where, np.nan_to_num(heights), width, label=f"{lr:g}")
        for xi, h in zip(where, heights, strict=True):  # a bar of height 0 is invisible
            if not h > 0:
                ax.text(xi, 0.01, "0" if h == 0 else "n/a", ha="center", va="bottom",
                        fontsize="x-small", color="0.3")  # fmt: skip
    ax.set_xticks(x, list(robustness.index), rotation=30 if len(robustness) > 5 else 0)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("scheduler")
    ax.set_ylabel("share of runs reaching the target")
    ax.set_title("LR robustness: reach share per initial LR (all tasks and seeds)")
    ax.legend(title="initial LR", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.grid(alpha=0.3, axis="y")
    _save(fig, path)
