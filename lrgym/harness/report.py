"""Reports over the comparison harness's frames: tables, a profile score and plots.

Input is what :func:`lrgym.harness.compare.run_grid` returns: ``runs`` (one row per run) and
``curves`` (one row per validation evaluation). Everything here is a pure function of
those two frames, so a report can be rebuilt from ``runs.csv``/``curves.csv`` alone.

The measures are in :mod:`lrgym.harness.measures`, the plots in :mod:`lrgym.harness.plots`.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from lrgym.harness.measures import (
    REQUIRED_CURVE_COLUMNS,
    REQUIRED_RUN_COLUMNS,
    check_columns,
    lr_robustness,
    mean_ci,
    performance_profile,
    summary_table,
)
from lrgym.harness.plots import (
    METRIC_RANGES,
    default_lr_curves,
    plot_lr,
    plot_robustness,
    plot_val_metric,
    safe_name,
    styles_for,
)
from lrgym.io._atomic import write_text_atomic


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
    check_columns(runs, REQUIRED_RUN_COLUMNS, "runs")
    check_columns(curves, REQUIRED_CURVE_COLUMNS, "curves")
    if runs.empty:
        raise ValueError("runs is empty; nothing to report")
    out = Path(out_dir)
    plots = out / "plots"
    default_curves = default_lr_curves(runs, curves)
    schedulers = sorted(runs["scheduler"].unique())
    styles = styles_for(schedulers)
    plot_names: dict[str, tuple[str, str]] = {}
    for task in sorted(runs["task"].unique()):
        stem = safe_name(task)
        val_png, lr_png = f"{stem}_val_metric.png", f"{stem}_lr.png"
        task_runs = runs[(runs["task"] == task) & runs["default_lr"].astype(bool)]
        task_curves = default_curves[default_curves["task"] == task]
        plot_val_metric(plots / val_png, task, task_runs, task_curves, styles)
        plot_lr(plots / lr_png, task, task_runs, task_curves, styles)
        plot_names[task] = (val_png, lr_png)
    robustness = lr_robustness(runs)
    # per task: pooled absolute LRs differ between tasks even with one LR each
    has_robustness_plot = bool(runs.groupby("task")["initial_lr"].nunique().max() > 1)
    if has_robustness_plot:
        plot_robustness(plots / "robustness.png", robustness)
    summary = out / "summary.md"
    text = _summary_markdown(runs, robustness, plot_names, has_robustness_plot)
    write_text_atomic(summary, text)
    return summary


# --- markdown -------------------------------------------------------------------------


ALIGNMENTS = {"left": ":---", "right": "---:", "center": ":---:", "l": ":---", "r": "---:",
              "c": ":---:"}  # fmt: skip
"""Column alignments :func:`md_table` takes, and their delimiter-row cells."""

_NUMBER = re.compile(r"^[-+]?(\d|\.\d)")
_NOT_A_VALUE = {"", "n/a", "nan", "-", "—", "not reached", "inf", "∞"}


def md_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    align: str | Sequence[str] | None = None,
) -> str:
    """A GitHub-flavoured markdown table.

    ``DataFrame.to_markdown`` needs ``tabulate``, which is not a dependency of lrgym;
    this helper keeps reports working in a plain install.

    Args:
        headers: Column names.
        rows: Rows of cells (anything with a ``str``; ``|`` is escaped).
        align: Per column ``"left"``, ``"right"`` or ``"center"`` (or ``"l"``, ``"r"``,
            ``"c"``), a string of those letters (``"lrr"``), or None: a column whose
            cells are all numbers (numbers, or text starting with one such as
            ``"0.97 ± 0.01"`` or ``"56%"``; ``"n/a"`` and ``"not reached"`` cells aside) is
            right-aligned, any other left-aligned.

    Raises:
        ValueError: ``align`` names an unknown alignment or has the wrong length.
    """

    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    if align is None:
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in headers]
        align = ["right" if _numeric(column) else "left" for column in columns]
    elif isinstance(align, str):
        align = list(align)
    if len(align) != len(headers) or any(a not in ALIGNMENTS for a in align):
        raise ValueError(
            f"align must give one of {sorted(ALIGNMENTS)} for each of the {len(headers)} "
            f"columns, got {align!r}"
        )
    lines = [
        "| " + " | ".join(cell(h) for h in headers) + " |",
        "| " + " | ".join(ALIGNMENTS[a] for a in align) + " |",
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _numeric(column: Sequence[object]) -> bool:
    """True if every cell of ``column`` is a number or starts with one, apart from cells
    that say there is no value, and at least one is."""
    found = False
    for value in column:
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            found = True
            continue
        text = str(value).strip()
        if text.lower() in _NOT_A_VALUE:
            continue
        if not _NUMBER.match(text):
            return False
        found = True
    return found


def _count(n: int, noun: str) -> str:
    """``1 task``, ``3 tasks``."""
    return f"{n} {noun}{'s' * (n != 1)}"


TABLE_RANGES: dict[str, tuple[float, float]] = {
    **METRIC_RANGES,
    "mae": (0.0, math.inf),
    "rmse": (0.0, math.inf),
}
"""The values a metric in the tables can take (the plots' :data:`~lrgym.harness.plots.METRIC_RANGES`
plus the error metrics reported beside R²); other metrics are unbounded."""


def fmt_mean_ci(mean: float, ci: float, metric: str | None = None, digits: int = 4) -> str:
    """``mean ± ci`` with four decimals, kept within the metric's range.

    A Student's t interval over few seeds can run past the range a metric can take
    (accuracy 0.9730 ± 0.3434 would reach 1.31). Such an interval is clipped to the range
    (:data:`TABLE_RANGES`), as the plots clip their bands, and printed as its two ends,
    ``0.9730 [0.6296, 1.0000]``, since a clipped interval is no longer symmetric; one
    within the range keeps the ``±`` form. ``n/a`` for no value.

    Args:
        mean: The mean.
        ci: The interval's half-width (NaN: no interval).
        metric: The metric's name, e.g. ``"accuracy"`` (None or unknown: unbounded).
        digits: Decimals shown.
    """
    if not math.isfinite(mean):
        return "n/a"
    if not math.isfinite(ci):
        return f"{mean:.{digits}f}"
    low, high = TABLE_RANGES.get(str(metric), (-math.inf, math.inf))
    if low <= mean - ci and mean + ci <= high:
        return f"{mean:.{digits}f} ± {ci:.{digits}f}"
    return (
        f"{mean:.{digits}f} [{max(mean - ci, low):.{digits}f}, {min(mean + ci, high):.{digits}f}]"
    )


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
        f"{_count(len(runs), 'run')}: {_count(len(tasks), 'task')} × "
        f"{_count(len(schedulers), 'scheduler')} × {_count(len(seeds), 'seed')} × "
        f"{_count(n_lrs, 'initial LR')} per task "
        f"(total steps per run: {_fmt_values(runs.get('total_steps'))}).",
        "",
        "## Measures",
        "",
        "- **target**: a per-task validation-metric threshold fixed in advance "
        "(`TaskInfo.target`). A run *reaches* it if it ends at or above it without "
        "diverging; it *touched* it if any evaluation was at or above it (it may have "
        "fallen back or diverged after).",
        "- **steps to target**: for a run that reaches the target, optimizer steps at its "
        "first evaluation at or above it (resolution: the evaluation interval); the "
        "median over seeds is 'not reached' when most seeds missed.",
        "- **test metric**: the task's headline metric on the test split at the end of "
        "the run, mean ± 95% CI (Student's t) over seeds at the task's default LR; "
        "diverged runs without a finite metric are left out. An interval that runs past "
        "the metric's range (e.g. above accuracy 1 with few seeds) is clipped to it, as "
        "in the plots, and shown as [low, high].",
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
                        fmt_mean_ci(r["test_mean"], r["test_ci"], info["metric"]),
                        *[fmt_mean_ci(*mean_ci(mine[f"test_{m}"].astype(float)), m) for m in extra],
                        fmt_mean_ci(r["val_mean"], r["val_ci"], info["metric"]),
                        _fmt_steps(r["median_steps_to_target"]),
                        _fmt_share(r["reach_rate"]),
                        _fmt_share(r["touch_rate"]),
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
                "touched",
                "diverged",
                "n",
            ]
            lines += [md_table(headers, rows), ""]
        else:
            lines += ["No runs at the default LR.", ""]
        val_png, lr_png = plot_names[task]
        lines += [f"![{task} validation metric](plots/{val_png})", ""]
        lines += [f"![{task} learning rate](plots/{lr_png})", ""]
    lines += ["## Profile score (steps to target, default LR)", ""]
    if runs["default_lr"].astype(bool).any():
        score = performance_profile(runs, tau_max=tau_max)
        lines += [md_table(["scheduler", "score"], [[s, f"{v:.3f}"] for s, v in score.items()])]
    else:
        lines += ["No runs at the default LR."]
    lines += ["", "## LR robustness (share of runs reaching the target)", ""]
    lr_columns = [c for c in robustness.columns if c != "all"]
    headers = ["scheduler", *[f"LR {c:g}" for c in lr_columns], "all"]
    rows = [
        [s, *[_fmt_share(robustness.loc[s, c]) for c in lr_columns], _fmt_share(r["all"])]
        for s, r in robustness.iterrows()
    ]
    lines += [md_table(headers, rows), ""]
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
        f"scheduler: {parts}. A diverged run stops early and never counts as reaching "
        f"the target (it may have touched it); its curve ends at its last healthy "
        f"evaluation."
    )


def _fmt_values(values: pd.Series | None) -> str:
    if values is None:
        return "n/a"
    unique = sorted(pd.unique(values.dropna()))
    return ", ".join(f"{v:g}" for v in unique) if unique else "n/a"


# --- plots ----------------------------------------------------------------------------


__all__ = ["ALIGNMENTS", "TABLE_RANGES", "fmt_mean_ci", "md_table", "write_report"]
