"""The plan's adaptive controllers beside the static baselines and the learned agent.

1. Logs runs of every static baseline on the *meta-train* tasks (seeds 100.., the default
   LR and :data:`META_LRS`) and trains the LR predictor on them (never on held-out tasks);
   the predictor goes to ``results/controllers/lr_predictor.pt`` (a model file, kept
   out of docs/).
2. Runs each held-out task × (static baselines + learned agent + feedback rule,
   hypergradient descent, LR predictor, schedule-free AdamW, Prodigy) × seeds at the
   task's default LR.
3. Writes ``results/controllers/{meta-train,held-out}/`` (runs and curves; not
   committed), ``docs/results/controllers/summary.md`` with plots, and the README section
   between the ``controllers`` markers (printed if the markers are absent).

    python benchmarks/controllers.py --seeds 5 --train-seeds 2 --workers 2
"""

from __future__ import annotations

import argparse
import math
import re
import time
from pathlib import Path

import pandas as pd

from lrgym.controllers import ADAPTIVE, BASELINES, LEARNED_PREFIX, PREDICTOR_PREFIX
from lrgym.controllers.lr_predictor import (
    PredictorTraining,
    load_predictor,
    lr_stability,
    train_predictor,
    training_data,
)
from lrgym.core.registration import make_task, task_ids
from lrgym.harness.compare import grid, run_grid, write_frames
from lrgym.harness.measures import performance_profile, summary_table
from lrgym.harness.report import md_table, write_report
from lrgym.harness.results_store import run_recorded
from lrgym.io._atomic import write_text_atomic

META_LRS = (1e-4, 1e-3, 1e-2, 1e-1)
"""Initial LRs of the logged meta-train runs (targets are clipped to one decade per
decision, so 1e-4 already teaches raising a tiny LR as well as 1e-5 would)."""
ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- controllers:start -->", "<!-- controllers:end -->"
PREDICTOR = "lr-predictor"


def log_meta_train(seeds: int, workers: int, out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Static baselines on every meta-train task, seed and initial LR of the sweep (each
    run journaled in ``out`` as it ends, so a stopped call resumes)."""
    specs = grid(task_ids("meta-train"), BASELINES, range(100, 100 + seeds), [None, *META_LRS])
    print(f"logging {len(specs)} meta-train runs for the LR predictor ...", flush=True)
    runs, curves = run_recorded(out, specs, workers=workers)
    write_frames(out, runs, curves)
    return runs, curves


def _short(task: str) -> str:
    return task.removeprefix("lrgym/").removesuffix("-v0")


def results_markdown(
    runs: pd.DataFrame, curves: pd.DataFrame, learned: str, command: str, predictor_info: dict
) -> str:
    """The README section: one row per controller, best test metric per task in bold."""
    summary = summary_table(runs)
    tasks = sorted(runs["task"].unique())
    torch_tasks = [t for t in tasks if make_task(t).has_gradients]
    profile = performance_profile(runs)
    profile_torch = performance_profile(runs[runs["task"].isin(torch_tasks)])
    stability = lr_stability(curves).groupby(level="scheduler").mean()
    reach = runs.groupby("scheduler")["reached_target"].mean()
    test = summary["test_mean"].unstack("task")
    best = test.max(axis=0)
    adaptive = [*ADAPTIVE, PREDICTOR]
    kind = {**dict.fromkeys(BASELINES, "static"), learned: "learned (PPO)"}
    kind.update(dict.fromkeys(adaptive, "adaptive"))
    kind.update({"schedulefree-adamw": "optimizer", "prodigy": "optimizer"})
    lines = [
        f"Measured with `{command}` ({runs['seed'].nunique()} seeds; {len(runs)} runs at "
        f"each task's default LR). LR predictor trained on {predictor_info['rows']} "
        f"decisions from {len(predictor_info['tasks'])} meta-train tasks (validation MSE "
        f"{predictor_info['validation_mse']:.3f} vs {predictor_info['validation_mse_keep_lr']:.3f}"
        " for keeping the LR).",
        "",
    ]
    rows = []
    for sched in profile.index:
        cells = []
        for t in tasks:
            value = test.loc[sched, t] if t in test.columns and sched in test.index else math.nan
            text = "n/a" if not math.isfinite(value) else f"{value:.3f}"
            cells.append(f"**{text}**" if math.isfinite(value) and value >= best[t] else text)
        rows.append(
            [
                sched,
                kind.get(sched, ""),
                f"{profile[sched]:.3f}",
                f"{profile_torch.get(sched, math.nan):.3f}",
                f"{reach[sched]:.2f}",
                f"{stability.get(sched, math.nan):.3f}",
                *cells,
            ]
        )
    headers = [
        "controller", "kind", "profile", "profile (torch)", "reach", "LR variation",
        *[_short(t) for t in tasks],
    ]  # fmt: skip
    lines.append(md_table(headers, rows, align="ll" + "r" * (4 + len(tasks))))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", default="default")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--train-seeds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "controllers")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "results" / "controllers")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument(
        "--predictor", type=Path, help="Use this trained predictor instead of training one"
    )
    parser.add_argument(
        "--from-runs",
        type=Path,
        help="Rebuild the report from an earlier held-out run's runs.csv/curves.csv",
    )
    args = parser.parse_args()
    start = time.perf_counter()

    predictor_path = args.predictor or args.out / "lr_predictor.pt"
    if args.predictor is None and args.from_runs is None:
        meta_runs, meta_curves = log_meta_train(
            args.train_seeds, args.workers, args.out / "meta-train"
        )
        predictor = train_predictor(training_data(meta_runs, meta_curves), PredictorTraining())
        predictor.save(predictor_path)
        print(f"predictor: {predictor.info}", flush=True)
    info = load_predictor(predictor_path).info

    learned = f"{LEARNED_PREFIX}{args.agent}"
    if args.from_runs:
        runs, curves = (pd.read_csv(args.from_runs / f) for f in ("runs.csv", "curves.csv"))
    else:
        names = [*BASELINES, learned, *ADAPTIVE, f"{PREDICTOR_PREFIX}{predictor_path}"]
        specs = grid(task_ids("held-out"), names, range(args.seeds))
        print(f"{len(specs)} held-out runs ...", flush=True)
        runs, curves = run_grid(specs, workers=args.workers)
        for frame in (runs, curves):
            is_predictor = frame["scheduler"].str.startswith(PREDICTOR_PREFIX)
            frame.loc[is_predictor, "scheduler"] = PREDICTOR
        write_frames(args.out / "held-out", runs, curves)
    write_report(args.docs, runs, curves)
    command = (
        f"python benchmarks/controllers.py --seeds {args.seeds} "
        f"--train-seeds {args.train_seeds} --workers {args.workers}"
    )
    table = results_markdown(runs, curves, learned, command, info)
    print(table)
    print(f"total {time.perf_counter() - start:.0f} s", flush=True)
    readme = args.readme.read_text(encoding="utf-8")
    if START in readme and END in readme:
        section = f"{START}\n{table}\n{END}"
        readme = re.sub(f"{START}.*?{END}", lambda _: section, readme, flags=re.S)
        write_text_atomic(args.readme, readme)
        print(f"updated {args.readme}")


if __name__ == "__main__":
    main()
