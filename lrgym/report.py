"""Reports over the comparison harness's frames: tables, a profile score and plots.

Input is what :func:`lrgym.compare.run_grid` returns: ``runs`` (one row per run) and
``curves`` (one row per validation evaluation). Everything here is a pure function of
those two frames, so a report can be rebuilt from ``runs.csv``/``curves.csv`` alone.

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
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from lrgym._atomic import atomic_path, write_text_atomic

# Plots are drawn on ``matplotlib.figure.Figure`` objects, never through pyplot: saving
# such a figure renders with the Agg canvas (no display needed), there is no global
# figure registry to leak into (nothing to close), and importing this module does not
# call ``matplotlib.use("Agg")``, which would switch the backend of a user's notebook.

RUN_KEYS = ("task", "scheduler", "seed", "initial_lr")
"""Columns that identify one run in both ``runs`` and ``curves``."""

_REQUIRED_RUN_COLUMNS = (
    "task", "scheduler", "seed", "initial_lr", "default_lr", "metric", "target",
    "final_val_metric", "final_test_metric", "reached_target", "steps_to_target", "diverged",
)  # fmt: skip
_REQUIRED_CURVE_COLUMNS = ("task", "scheduler", "seed", "initial_lr", "step", "lr", "val_metric")


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
    _check_columns(runs, (*_REQUIRED_RUN_COLUMNS, measure), "runs")
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
    _check_columns(runs, ("scheduler", "initial_lr", "reached_target"), "runs")
    reached = runs["reached_target"].astype(float)
    table = reached.groupby([runs["scheduler"], runs["initial_lr"].astype(float)]).mean()
    table = table.unstack("initial_lr").sort_index(axis=1)
    table.columns = pd.Index(list(table.columns), dtype=object, name="initial_lr")
    table["all"] = reached.groupby(runs["scheduler"]).mean()
    table.index.name = "scheduler"
    return table.sort_index()


SUMMARY_COLUMNS = (
    "metric", "test_mean", "test_ci", "val_mean", "val_ci", "median_steps_to_target",
    "reach_rate", "diverged_share", "n_runs",
)  # fmt: skip
"""Columns of :func:`summary_table`."""


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per task and scheduler, over seeds at the task's default LR.

    Args:
        runs: The harness's runs frame.

    Returns:
        Indexed by (task, scheduler) with :data:`SUMMARY_COLUMNS`: the final test and
        validation metric mean and 95% CI half-width (NaN runs, e.g. diverged, are
        left out), median steps to target (``inf`` when most seeds missed), reach rate,
        share of diverged runs and number of runs.
    """
    _check_columns(runs, _REQUIRED_RUN_COLUMNS, "runs")
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
                "diverged_share": float(g["diverged"].astype(float).mean()),
                "n_runs": len(g),
            }
        )
    columns = ["task", "scheduler", *SUMMARY_COLUMNS]
    return pd.DataFrame(rows, columns=columns).set_index(["task", "scheduler"])


def write_report(out_dir: str | Path, runs: pd.DataFrame, curves: pd.DataFrame) -> Path:
    """Write ``summary.md`` and PNG plots under ``out_dir``, each file atomically.

    Plots (under ``out_dir/plots``): per task ``<task>_val_metric.png`` (validation
    metric vs step, mean over seeds at the default LR with a 95% CI band) and
    ``<task>_lr.png`` (LR vs step, log scale), with ``/`` in task ids replaced by ``_``;
    ``robustness.png`` when the runs use more than one initial LR.

    Args:
        out_dir: Directory to write into (created if missing).
        runs: The harness's runs frame.
        curves: The harness's curves frame.

    Returns:
        Path of ``summary.md``.
    """
    _check_columns(runs, _REQUIRED_RUN_COLUMNS, "runs")
    _check_columns(curves, _REQUIRED_CURVE_COLUMNS, "curves")
    if runs.empty:
        raise ValueError("runs is empty; nothing to report")
    out = Path(out_dir)
    plots = out / "plots"
    default_curves = _default_lr_curves(runs, curves)
    schedulers = sorted(runs["scheduler"].unique())
    styles = _styles(schedulers)
    plot_names: dict[str, tuple[str, str]] = {}
    for task in sorted(runs["task"].unique()):
        stem = _safe_name(task)
        val_png, lr_png = f"{stem}_val_metric.png", f"{stem}_lr.png"
        task_runs = runs[(runs["task"] == task) & runs["default_lr"].astype(bool)]
        task_curves = default_curves[default_curves["task"] == task]
        _plot_val_metric(plots / val_png, task, task_runs, task_curves, styles)
        _plot_lr(plots / lr_png, task, task_runs, task_curves, styles)
        plot_names[task] = (val_png, lr_png)
    robustness = lr_robustness(runs)
    # per task: pooled absolute LRs differ between tasks even with one LR each
    has_robustness_plot = bool(runs.groupby("task")["initial_lr"].nunique().max() > 1)
    if has_robustness_plot:
        _plot_robustness(plots / "robustness.png", robustness)
    summary = out / "summary.md"
    text = _summary_markdown(runs, robustness, plot_names, has_robustness_plot)
    write_text_atomic(summary, text)
    return summary


# --- markdown -------------------------------------------------------------------------


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table.

    ``DataFrame.to_markdown`` needs ``tabulate``, which is not a dependency of lrgym;
    this helper keeps reports working in a plain install.
    """

    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(cell(h) for h in headers) + " |",
        "|" + "|".join(" --- " for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _fmt_mean_ci(mean: float, ci: float) -> str:
    if not math.isfinite(mean):
        return "n/a"
    if not math.isfinite(ci):
        return f"{mean:.4f}"
    return f"{mean:.4f} ± {ci:.4f}"


def _fmt_steps(value: float) -> str:
    if not math.isfinite(value):
        return "not reached"
    return f"{value:g}"


def _fmt_share(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{100 * value:.0f}%"


def _summary_markdown(
    runs: pd.DataFrame,
    robustness: pd.DataFrame,
    plot_names: dict[str, tuple[str, str]],
    has_robustness_plot: bool,
) -> str:
    tasks = sorted(runs["task"].unique())
    schedulers = sorted(runs["scheduler"].unique())
    seeds = sorted(runs["seed"].unique())
    summary = summary_table(runs)
    tau_max = 4.0
    n_lrs = int(runs.groupby("task")["initial_lr"].nunique().max())
    lines = [
        "# LR scheduler comparison",
        "",
        f"{len(runs)} runs: {len(tasks)} tasks × {len(schedulers)} schedulers × "
        f"{len(seeds)} seeds × {n_lrs} initial LR{'s' * (n_lrs > 1)} per task "
        f"(total steps per run: {_fmt_values(runs.get('total_steps'))}).",
        "",
        "## Measures",
        "",
        "- **target**: a per-task validation-metric threshold fixed in advance "
        "(`TaskInfo.target`); a run reaches it at the first evaluation with validation "
        "metric >= target.",
        "- **steps to target**: optimizer steps at that evaluation (resolution: the "
        "evaluation interval); the median over seeds is 'not reached' when most seeds "
        "missed.",
        "- **test metric**: the task's headline metric on the test split at the end of "
        "the run, mean ± 95% CI (Student's t) over seeds at the task's default LR; "
        "diverged runs without a finite metric are left out.",
        f"- **profile score**: AlgoPerf-style; per task, a scheduler's median steps to "
        f"target divided by the fastest scheduler's; score = share of tasks within "
        f"ratio tau, averaged over tau in [1, {tau_max:g}]. 1 = fastest on every task, "
        f"0 = never within {tau_max:g}× the fastest.",
        "- **LR robustness**: share of runs (all tasks, all seeds) that reached the "
        "target, per initial LR.",
        "",
        "## Per task (default LR)",
        "",
    ]
    for task in tasks:
        info = runs[runs["task"] == task].iloc[0]
        default_lrs = runs.loc[
            (runs["task"] == task) & runs["default_lr"].astype(bool), "initial_lr"
        ]
        lr_text = _fmt_values(default_lrs) if len(default_lrs) else "none run"
        lines += [
            f"### {task}",
            "",
            f"Metric: {info['metric']}, target: {info['target']:g}, default LR: {lr_text}.",
            "",
        ]
        if task in summary.index.get_level_values("task"):
            at_default = runs[(runs["task"] == task) & runs["default_lr"].astype(bool)]
            extra = _extra_test_metrics(at_default, info["metric"])
            rows = []
            for scheduler, r in summary.loc[task].iterrows():
                mine = at_default[at_default["scheduler"] == scheduler]
                rows.append(
                    [
                        scheduler,
                        _fmt_mean_ci(r["test_mean"], r["test_ci"]),
                        *[_fmt_mean_ci(*mean_ci(mine[f"test_{m}"].astype(float))) for m in extra],
                        _fmt_mean_ci(r["val_mean"], r["val_ci"]),
                        _fmt_steps(r["median_steps_to_target"]),
                        _fmt_share(r["reach_rate"]),
                        _fmt_share(r["diverged_share"]),
                        int(r["n_runs"]),
                    ]
                )
            headers = [
                "scheduler",
                f"test {info['metric']}",
                *[f"test {m}" for m in extra],
                f"final val {info['metric']}",
                "median steps to target",
                "reached",
                "diverged",
                "n",
            ]
            lines += [_md_table(headers, rows), ""]
        else:
            lines += ["No runs at the default LR.", ""]
        val_png, lr_png = plot_names[task]
        lines += [f"![{task} validation metric](plots/{val_png})", ""]
        lines += [f"![{task} learning rate](plots/{lr_png})", ""]
    lines += ["## Profile score (steps to target, default LR)", ""]
    if runs["default_lr"].astype(bool).any():
        score = performance_profile(runs, tau_max=tau_max)
        lines += [_md_table(["scheduler", "score"], [[s, f"{v:.3f}"] for s, v in score.items()])]
    else:
        lines += ["No runs at the default LR."]
    lines += ["", "## LR robustness (share of runs reaching the target)", ""]
    lr_columns = [c for c in robustness.columns if c != "all"]
    headers = ["scheduler", *[f"LR {c:g}" for c in lr_columns], "all"]
    rows = [
        [s, *[_fmt_share(robustness.loc[s, c]) for c in lr_columns], _fmt_share(r["all"])]
        for s, r in robustness.iterrows()
    ]
    lines += [_md_table(headers, rows), ""]
    defaults = runs[runs["default_lr"].astype(bool)].groupby("task")["initial_lr"].first()
    if len(defaults):
        listed = ", ".join(f"{t} {lr:g}" for t, lr in defaults.items())
        lines += [f"An LR column pools tasks; default LRs: {listed}.", ""]
    if has_robustness_plot:
        lines += ["![LR robustness](plots/robustness.png)", ""]
    lines += ["## Divergence", "", _divergence_note(runs), ""]
    return "\n".join(lines)


def _extra_test_metrics(runs: pd.DataFrame, headline: str) -> list[str]:
    """Names of the other test metrics in ``runs`` (``test_<name>`` columns with values),
    e.g. macro-F1 beside accuracy, MAE and RMSE beside R²."""
    return [
        c.removeprefix("test_")
        for c in runs.columns
        if c.startswith("test_") and c != f"test_{headline}" and runs[c].notna().any()
    ]


def _divergence_note(runs: pd.DataFrame) -> str:
    diverged = runs["diverged"].astype(bool)
    n = int(diverged.sum())
    if n == 0:
        return f"No run diverged (of {len(runs)})."
    by = runs[diverged].groupby("scheduler").size()
    total = runs.groupby("scheduler").size()
    parts = ", ".join(f"{s} {by[s]}/{total[s]}" for s in by.index)
    at_default = int((diverged & runs["default_lr"].astype(bool)).sum())
    return (
        f"{n} of {len(runs)} runs diverged ({at_default} at the default LR); by "
        f"scheduler: {parts}. A diverged run stops early and counts as not reaching "
        f"the target; its curve ends at its last healthy evaluation."
    )


def _fmt_values(values: pd.Series | None) -> str:
    if values is None:
        return "n/a"
    unique = sorted(pd.unique(values.dropna()))
    return ", ".join(f"{v:g}" for v in unique) if unique else "n/a"


# --- plots ----------------------------------------------------------------------------


def _safe_name(task: str) -> str:
    """A file-name stem for a task id: ``/`` (and other unsafe characters) become ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", task)


def _styles(schedulers: Sequence[str]) -> dict[str, dict[str, object]]:
    """Colour and line style per scheduler, the same in every plot; the line styles
    keep schedulers with identical curves (e.g. constant and plateau early on) visible."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(schedulers) <= 10 else "tab20"]
    dashes = ("-", "--", "-.", ":")
    return {
        s: {"color": cmap(i % cmap.N), "linestyle": dashes[i % len(dashes)]}
        for i, s in enumerate(schedulers)
    }


def _default_lr_curves(runs: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
    """The curve rows of runs at their task's default LR."""
    keys = list(RUN_KEYS)
    default = runs.loc[runs["default_lr"].astype(bool), keys].drop_duplicates()
    return curves.merge(default, on=keys, how="inner")


def _save(fig: Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")


def _plot_val_metric(
    path: Path,
    task: str,
    task_runs: pd.DataFrame,
    task_curves: pd.DataFrame,
    styles: dict[str, dict[str, object]],
) -> None:
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    metric = task_runs["metric"].iloc[0] if len(task_runs) else "metric"
    for scheduler, g in task_curves.groupby("scheduler", sort=True):
        stat = g.groupby("step")["val_metric"].apply(lambda v: pd.Series(mean_ci(v)))
        stat = stat.unstack()
        mean, ci = stat[0].to_numpy(float), stat[1].fillna(0.0).to_numpy(float)
        steps = stat.index.to_numpy(float)
        runs_s = task_runs[task_runs["scheduler"] == scheduler]
        n_div = int(runs_s["diverged"].astype(bool).sum())
        label = f"{scheduler} (n={len(runs_s)})"
        if n_div:
            label = f"{scheduler} (n={len(runs_s)}, {n_div} diverged)"
        ax.plot(
            steps,
            mean,
            **styles[scheduler],
            label=label,
            marker="." if len(steps) < 3 else None,
        )
        ax.fill_between(steps, mean - ci, mean + ci, color=styles[scheduler]["color"], alpha=0.2)
    if len(task_runs):
        ax.axhline(float(task_runs["target"].iloc[0]), color="black", ls="--", lw=1, label="target")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(f"validation {metric}")
    ax.set_title(f"{task}: validation {metric} (default LR, mean ± 95% CI over seeds)")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
    _save(fig, path)


def _plot_lr(
    path: Path,
    task: str,
    task_runs: pd.DataFrame,
    task_curves: pd.DataFrame,
    styles: dict[str, dict[str, object]],
) -> None:
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    plotted = False
    for scheduler, g in task_curves.groupby("scheduler", sort=True):
        mean = g.groupby("step")["lr"].mean()
        values = mean.to_numpy(float)
        values = np.where(values > 0, values, np.nan)  # a log axis cannot show LR 0
        if np.isfinite(values).any():
            ax.plot(mean.index.to_numpy(float), values, **styles[scheduler], label=scheduler)
            plotted = True
    if plotted:
        ax.set_yscale("log")
        ax.legend(fontsize="small")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("learning rate (log scale)")
    ax.set_title(f"{task}: learning rate (default LR, mean over seeds)")
    ax.grid(alpha=0.3, which="both")
    _save(fig, path)


def _plot_robustness(path: Path, robustness: pd.DataFrame) -> None:
    lr_columns = [c for c in robustness.columns if c != "all"]
    fig = Figure(figsize=(max(6.0, 1.2 * len(robustness) + 3), 4.5))
    ax = fig.subplots()
    x = np.arange(len(robustness))
    width = 0.8 / max(len(lr_columns), 1)
    for i, lr in enumerate(lr_columns):
        heights = robustness[lr].to_numpy(float)
        ax.bar(x + (i - (len(lr_columns) - 1) / 2) * width, np.nan_to_num(heights), width,
               label=f"LR {lr:g}")  # fmt: skip
    ax.set_xticks(x, list(robustness.index), rotation=30 if len(robustness) > 5 else 0)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("scheduler")
    ax.set_ylabel("share of runs reaching the target")
    ax.set_title("LR robustness: reach share per initial LR (all tasks and seeds)")
    ax.legend(title="initial LR", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.grid(alpha=0.3, axis="y")
    _save(fig, path)


def _check_columns(frame: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} frame is missing columns: {', '.join(missing)}")


__all__ = [
    "SUMMARY_COLUMNS",
    "lr_robustness",
    "mean_ci",
    "performance_profile",
    "summary_table",
    "write_report",
]
