"""Held-out evidence: the learned agent beside every static baseline, on tasks it never saw.

Runs each held-out task × (learned agent + every static baseline) × seeds at the task's
default LR and at every initial LR of the robustness sweep, then writes

* ``results/heldout/runs.csv`` and ``curves.csv`` (every run; not committed),
* ``docs/results/heldout/summary.md`` and its plots (validation curves, the LR traces
  the agent chose, robustness), and
* the README's results section (between the ``heldout`` markers) and, with
  ``--update-card``, the agent card's ``evaluation["held-out"]``.

    python benchmarks/heldout.py --agent default --seeds 5 --workers 2 --update-card

The bar (the project's success criteria): (1) profile score >= the best static
baseline's; (2) reach share over the LR sweep >= 0.8 and >= the best static baseline's
+ 0.30; (3) on no task a final test
metric worse than the best baseline's by more than the 95% CI. Each is printed as met or
not met, from the measured numbers.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

import pandas as pd

from lrgym.controllers import BASELINES, LEARNED_PREFIX
from lrgym.core.registration import task_ids
from lrgym.deploy.agent import load_agent
from lrgym.harness.compare import grid, run_grid, write_frames
from lrgym.harness.measures import lr_robustness, performance_profile, summary_table
from lrgym.harness.report import fmt_mean_ci, md_table, write_report
from lrgym.io._atomic import write_text_atomic

SWEEP = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- heldout:start -->", "<!-- heldout:end -->"


def _fmt(mean: float, ci: float, metric: str) -> str:
    return fmt_mean_ci(mean, ci, metric, digits=3)  # clipped to the metric's range


def _steps(value: float) -> str:
    return "–" if not math.isfinite(value) else f"{value:g}"


def worse_beyond_ci(summary: pd.DataFrame, task: str, learned: str) -> tuple[bool, str]:
    """Whether ``learned``'s final test metric on ``task`` is below the best other
    scheduler's by more than the larger 95% CI half-width, and that scheduler."""
    s = summary.loc[task]
    best = s.drop(index=learned)["test_mean"].idxmax()
    ln, bb = s.loc[learned], s.loc[best]
    return bool(ln["test_mean"] < bb["test_mean"] - max(bb["test_ci"], ln["test_ci"])), best


def bar_measures(runs: pd.DataFrame, learned: str) -> dict[str, float | list[str]]:
    """The three measures of the bar for ``learned`` against every other scheduler in ``runs``."""
    profile = performance_profile(runs)
    robust = lr_robustness(runs[~runs["default_lr"] | runs["initial_lr"].isin(SWEEP)])
    baselines = [s for s in profile.index if s != learned]
    summary = summary_table(runs)
    return {
        "profile": float(profile[learned]),
        "best_profile": float(profile[baselines].max()),
        "reach": float(robust.loc[learned, "all"]),
        "best_reach": float(robust.loc[baselines, "all"].max()),
        "losses": [
            t for t in sorted(runs["task"].unique()) if worse_beyond_ci(summary, t, learned)[0]
        ],
    }


def results_markdown(runs: pd.DataFrame, learned: str, command: str) -> str:
    """The README/card section: per-task table, profile scores, robustness, the bar."""
    summary = summary_table(runs)
    profile = performance_profile(runs)
    robust = lr_robustness(runs[~runs["default_lr"] | runs["initial_lr"].isin(SWEEP)])
    lines = [
        f"Measured with `{command}` ({runs['seed'].nunique()} seeds; "
        f"{len(runs)} runs). Learned = `{learned}`.",
        "",
    ]
    rows = []
    for task in sorted(runs["task"].unique()):
        s = summary.loc[task]
        worse, best = worse_beyond_ci(summary, task, learned)
        fastest = s.drop(index=learned)["median_steps_to_target"].idxmin()
        ln, bb = s.loc[learned], s.loc[best]
        rows.append(
            [
                task,
                ln["metric"],
                _fmt(ln["test_mean"], ln["test_ci"], ln["metric"]),
                f"{_fmt(bb['test_mean'], bb['test_ci'], bb['metric'])} ({best})",
                _steps(ln["median_steps_to_target"]),
                f"{_steps(s.loc[fastest, 'median_steps_to_target'])} ({fastest})",
                "**yes**" if worse else "no",
            ]
        )
    headers = [
        "task", "metric", "learned: test", "best baseline: test", "learned: steps to target",
        "best baseline: steps to target", "learned worse beyond CI?",
    ]  # fmt: skip
    lines.append(md_table(headers, rows, align="llrrrrl"))
    lr_cols = [c for c in robust.columns if c != "all"]
    rows = [
        [
            sched,
            f"{profile[sched]:.3f}",
            *[f"{robust.loc[sched, c]:.2f}" for c in lr_cols],
            f"{robust.loc[sched, 'all']:.2f}",
        ]
        for sched in profile.index
    ]
    headers = ["scheduler", "profile score", *[f"reach @ {c:g}" for c in lr_cols], "reach (sweep)"]
    lines += ["", md_table(headers, rows)]
    m = bar_measures(runs, learned)
    bar = [
        ("profile score >= best static baseline's", m["profile"] >= m["best_profile"],
         f"{m['profile']:.3f} vs {m['best_profile']:.3f}"),
        ("reach share >= 0.80 and >= best static + 0.30",
         m["reach"] >= 0.8 and m["reach"] >= m["best_reach"] + 0.3,
         f"{m['reach']:.2f} vs {m['best_reach']:.2f}"),
        ("no task worse than the best baseline beyond the 95% CI",
         not m["losses"], ", ".join(m["losses"]) or "none"),
    ]  # fmt: skip
    rows = [[name, "yes" if ok else "**no**", text] for name, ok, text in bar]
    lines += ["", md_table(["bar", "met?", "measured"], rows, align="lll")]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", default="default")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "heldout")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "results" / "heldout")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--update-card", action="store_true")
    parser.add_argument(
        "--from-runs",
        type=Path,
        help="Rebuild the report from an earlier run's runs.csv/curves.csv (no training); "
        "its learned scheduler is renamed to learned:AGENT",
    )
    args = parser.parse_args()

    agent = load_agent(args.agent)  # fail fast on a bad agent
    learned = f"{LEARNED_PREFIX}{args.agent}"
    if args.from_runs:
        runs, curves = (pd.read_csv(args.from_runs / f) for f in ("runs.csv", "curves.csv"))
        for frame in (runs, curves):
            is_learned = frame["scheduler"].str.startswith(LEARNED_PREFIX)
            frame.loc[is_learned, "scheduler"] = learned
    else:
        tasks = task_ids("held-out")
        specs = grid(tasks, [learned, *BASELINES], range(args.seeds), [None, *SWEEP])
        print(f"{len(specs)} runs on {len(tasks)} held-out tasks ...", flush=True)
        runs, curves = run_grid(specs, workers=args.workers)
        write_frames(args.out, runs, curves)
    write_report(args.docs, runs, curves)
    command = (
        f"python benchmarks/heldout.py --agent {args.agent} --seeds {args.seeds}"
        f" --workers {args.workers}"
    )
    table = results_markdown(runs, learned, command)
    print(table)
    readme = args.readme.read_text(encoding="utf-8")
    if START in readme and END in readme:
        section = f"{START}\n{table}\n{END}"
        readme = re.sub(f"{START}.*?{END}", lambda _: section, readme, flags=re.S)
        write_text_atomic(args.readme, readme)
    if args.update_card:
        agent.card.evaluation["held-out"] = table
        agent.card.save(agent.path)


if __name__ == "__main__":
    main()
