"""Real-world tasks on local data copies: static baselines and the learned agent side by side.

Registers a ``shared/<Name>-v0`` variant of every real task that has a local copy in the
folder ``LRGYM_BENCH_DATA`` names (the README lists the files: CIFAR-10 10k with the
small CNN and ResNet-18, SST-2 with MiniLM when ``lrgym.tasks.text`` exists, Titanic
with XGBoost and an MLP, ETTh1 with an LSTM), times
each task's training (wall seconds per 100 optimizer steps, alone on the machine), then
runs ``compare``'s harness for every static baseline and ``learned:<agent>`` at each
task's default LR, and writes

* ``results/real_tasks/runs.csv`` and ``curves.csv`` (every run; not committed),
* ``docs/results/real_tasks/summary.md`` with plots, timing table and README table,
* the table between ``<!-- real:start -->`` and ``<!-- real:end -->`` in
  ``docs/results/real-tasks.md`` when those markers exist (else it prints the table).

    python benchmarks/real_tasks.py --seeds 2 --workers 2
    python benchmarks/real_tasks.py --calibrate --tasks shared/TitanicMLP-v0

Heavy tasks (ResNet-18, MiniLM) run a shortened budget with three schedulers and one
seed, so the whole benchmark stays near 20 minutes on 2 CPU cores. ``--calibrate`` runs
the target protocol of ``lrgym calibrate`` (every static baseline,
seeds 100-104, default budget) on the chosen variants and prints the proposed targets.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from lrgym.controllers import BASELINES, LEARNED_PREFIX
from lrgym.core.registration import make_task, register_task
from lrgym.harness.compare import grid, run_grid, write_frames
from lrgym.harness.measures import mean_ci, summary_table
from lrgym.harness.report import fmt_mean_ci, md_table, write_report
from lrgym.io._atomic import write_text_atomic

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LRGYM_BENCH_DATA") or ROOT.parent / "shared" / "data")
"""The folder of local data copies (the README lists the files); ``LRGYM_BENCH_DATA``."""
START, END = "<!-- real:start -->", "<!-- real:end -->"
HEAVY_SCHEDULERS = ("constant", "cosine")
SHARE = 0.97


@dataclass(frozen=True)
class Bench:
    """One real task on its shared-data copy.

    Attributes:
        name: Task name, as registered under ``lrgym/`` (``"TitanicMLP-v0"``).
        entry_point: The task factory.
        data: Path of the data under :data:`SHARED`.
        kwargs: Factory arguments besides ``source`` (budget overrides included).
        heavy: Run the reduced grid (one seed, :data:`HEAVY_SCHEDULERS` + learned).
        timing_steps: Optimizer steps timed for the per-100-steps figure.
    """

    name: str
    entry_point: str
    data: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    heavy: bool = False
    timing_steps: int = 100

    @property
    def id(self) -> str:
        """The variant's registered id."""
        return f"shared/{self.name}"


BENCHES = (
    Bench("CIFAR10SmallCNN-v0", "lrgym.tasks.vision:cifar10_small_cnn", "cifar10/cifar10_10k.npz"),
    Bench(
        "CIFAR10ResNet18-v0",
        "lrgym.tasks.vision:cifar10_resnet18",
        "cifar10/cifar10_10k.npz",
        kwargs={"total_steps": 40, "decision_interval": 10, "eval_size": 512, "val_size": 128},
        heavy=True,
        timing_steps=5,
    ),
    Bench(
        "SST2MiniLM-v0",
        "lrgym.tasks.text:text_task",
        "sst2",
        kwargs={
            "preset": "SST2MiniLM-v0",
            "read_kwargs": {"column_names": ["label", "sentence"]},
            "total_steps": 40,
            "decision_interval": 10,
        },
        heavy=True,
        timing_steps=5,
    ),
    Bench("TitanicMLP-v0", "lrgym.tasks.tabular:titanic_mlp", "titanic/titanic.csv"),
    Bench("TitanicXGB-v0", "lrgym.tasks.tabular:titanic_xgb", "titanic/titanic.csv"),
    Bench("ETTh1LSTM-v0", "lrgym.tasks.timeseries:etth1_lstm", "ett/ETTh1.csv"),
)
"""Every benchmarked task; a task whose data or module is missing is skipped."""


def available() -> list[Bench]:
    """The benches whose shared data and task module exist here."""
    found = []
    for bench in BENCHES:
        module = bench.entry_point.partition(":")[0]
        if (SHARED / bench.data).exists() and importlib.util.find_spec(module) is not None:
            found.append(bench)
    return found


def register_shared() -> list[Bench]:
    """Register ``shared/<Name>-v0`` for every available bench (quietly, idempotently)."""
    benches = available()
    for bench in benches:
        register_task(
            bench.id, bench.entry_point, {"source": str(SHARED / bench.data), **bench.kwargs}
        )
    return benches


# At import, so that the harness's spawned workers (which re-import this script) know them.
BENCHMARKED = register_shared()


@dataclass(frozen=True)
class Timing:
    """Cost of one task: training wall and CPU seconds per 100 steps, one validation pass."""

    wall_per_100: float
    cpu_per_100: float
    val_pass: float


def time_task(task_id: str, steps: int, threads: int = 1) -> Timing:
    """Time ``steps`` training steps and one validation pass of ``task_id``.

    Measured in this process with ``threads`` torch threads (1, as in each of the
    harness's workers), after the first data load (cached per process) and two warm-up
    steps, at the task's default LR. CPU seconds are reported beside wall seconds
    because other jobs may share the cores: wall time then grows, CPU time much less.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        task = make_task(task_id)
        trainee = task.build(0, task.info.default_lr)
        trainee.train(2)
        wall, cpu = time.perf_counter(), time.process_time()
        trainee.train(steps)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        start = time.perf_counter()
        trainee.evaluate("val")
        val_pass = time.perf_counter() - start
        trainee.close()
    finally:
        torch.set_num_threads(before)
    return Timing(wall / steps * 100, cpu / steps * 100, val_pass)


def _fmt(mean: float, ci: float, n: int, metric: str) -> str:
    if not math.isfinite(mean):
        return "n/a"  # the interval is clipped to the metric's range (report.fmt_mean_ci)
    return f"{mean:.3f} (1 seed)" if n < 2 else fmt_mean_ci(mean, ci, metric, digits=3)


def _secs(value: float) -> str:
    """Seconds with two significant decimals below 1 s, one above."""
    return f"{value:.2f}" if value < 1 else f"{value:.1f}"


def _steps(value: float) -> str:
    return "–" if not math.isfinite(value) else f"{value:g}"


def _extra_metrics(runs: pd.DataFrame, task: str, scheduler: str, headline: str) -> str:
    """The non-headline test metrics of one task and scheduler, as ``name mean``."""
    g = runs[(runs["task"] == task) & (runs["scheduler"] == scheduler)]
    cells = []
    for column in sorted(c for c in g.columns if c.startswith("test_")):
        name = column.removeprefix("test_")
        if name != headline and g[column].notna().any():
            cells.append(f"{name} {mean_ci(g[column].astype(float))[0]:.3f}")
    return ", ".join(cells) or "–"


def results_markdown(
    runs: pd.DataFrame,
    learned: str,
    timing: dict[str, Timing],
    command: str,
    load: float = math.nan,
) -> str:
    """The README table: learned vs best static baseline per task, with wall times."""
    summary = summary_table(runs)
    lines = [
        f"Measured with `{command}` on 2 shared CPU cores ({len(runs)} runs on the local "
        f"copies listed above). Learned = `{learned}`; ResNet-18 and MiniLM ran a "
        "short budget with constant, cosine and the agent only.",
        "",
    ]
    rows = []
    for task in sorted(runs["task"].unique()):
        s = summary.loc[task]
        info = runs[runs["task"] == task].iloc[0]
        statics = s.drop(index=learned, errors="ignore")
        best = statics["test_mean"].idxmax()
        fastest = statics["median_steps_to_target"].idxmin()
        fast = statics.loc[fastest, "median_steps_to_target"]
        fast_text = f"{_steps(fast)} ({fastest})" if math.isfinite(fast) else "–"
        cost = timing.get(task, Timing(math.nan, math.nan, math.nan))
        if learned in s.index:
            ln = s.loc[learned]
            learned_test = _fmt(ln["test_mean"], ln["test_ci"], int(ln["n_runs"]), ln["metric"])
            learned_steps = _steps(ln["median_steps_to_target"])
        else:
            learned_test = learned_steps = "n/a"
        best_test = _fmt(
            statics.loc[best, "test_mean"],
            statics.loc[best, "test_ci"],
            int(statics.loc[best, "n_runs"]),
            info["metric"],
        )
        rows.append(
            [
                task.removeprefix("shared/"),
                f"{info['metric']} ({info['target']:g})",
                f"{int(info['total_steps'])} × {runs.loc[runs['task'] == task, 'seed'].nunique()}",
                learned_test,
                f"{best_test} ({best})",
                _extra_metrics(runs, task, learned, info["metric"]),
                f"{learned_steps} / {fast_text}",
                f"{_secs(cost.wall_per_100)} ({_secs(cost.cpu_per_100)})",
            ]
        )
    headers = [
        "task", "metric (target)", "steps × seeds", "learned: test", "best static: test",
        "learned: other test metrics", "steps to target: learned / fastest static",
        "s per 100 steps: wall (CPU)",
    ]  # fmt: skip
    lines.append(md_table(headers, rows, align="llrrrlrr"))
    lines += [
        "",
        "Test metrics: mean ± 95% CI over seeds at the default LR. Seconds per 100 optimizer "
        "steps of training (one torch thread, as in each of the two workers; validation "
        "excluded): wall clock, CPU time in brackets. Other jobs shared the 2 cores (load "
        f"average {load:.1f} at the end), so wall times are upper bounds.",
    ]
    return "\n".join(lines)


def write_readme(table: str) -> bool:
    """Replace the results page's section between the markers; False if they are absent."""
    readme = ROOT / "docs" / "results" / "real-tasks.md"
    text = readme.read_text(encoding="utf-8")
    if START not in text or END not in text:
        return False
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    write_text_atomic(readme, pattern.sub(lambda _: f"{START}\n{table}\n{END}", text))
    return True


def calibrate(ids: list[str], workers: int) -> None:
    """Print proposed targets: SHARE × the best static baseline's median final val metric."""
    runs, _ = run_grid(grid(ids, BASELINES, range(100, 105)), workers=workers)
    medians = runs.groupby(["task", "scheduler"])["final_val_metric"].median().unstack()
    print(medians.round(4).to_string())
    for task, row in medians.iterrows():
        best, scheduler = row.max(), row.idxmax()
        proposed = math.floor(SHARE * best * 100) / 100
        print(f"{task:35s} {proposed:.2f}  (best {scheduler} {best:.4f})")


def publish(out: Path, docs: Path) -> None:
    """Write the summary, plots and README table from the files a run left in ``out``."""
    runs = pd.read_csv(out / "runs.csv")
    curves = pd.read_csv(out / "curves.csv")
    frame = pd.read_csv(out / "timing.csv", index_col="task")
    timing = {
        t: Timing(*r[["wall_per_100", "cpu_per_100", "val_pass"]]) for t, r in frame.iterrows()
    }
    meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    summary = write_report(docs, runs, curves)
    table = results_markdown(runs, meta["learned"], timing, meta["command"], meta["load"])
    headers = ["task", "wall s per 100 steps", "CPU s per 100 steps", "s per validation pass"]
    rows = [
        [t, _secs(c.wall_per_100), _secs(c.cpu_per_100), f"{c.val_pass:.2f}"]
        for t, c in timing.items()
    ]
    timing_lines = [md_table(headers, rows, align="lrrr")]
    extra = [
        "",
        "## Wall time per 100 optimizer steps (one torch thread; other jobs shared the cores)",
        "",
        *timing_lines,
        "",
        f"The grid took {meta['minutes']:.1f} min with {meta['workers']} workers.",
        "",
        "## README table",
        "",
        table,
        "",
    ]
    write_text_atomic(summary, summary.read_text(encoding="utf-8") + "\n".join(extra))
    print(f"summary: {summary}")
    if write_readme(table):
        print("updated docs/results/real-tasks.md between the real markers")
    else:
        print(f"docs/results/real-tasks.md has no {START} markers; the table:\n\n{table}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", default="default")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tasks", nargs="+", help="shared/<Name>-v0 ids (default: all)")
    parser.add_argument("--out", default=str(ROOT / "results" / "real_tasks"))
    parser.add_argument("--docs", default=str(ROOT / "docs" / "results" / "real_tasks"))
    parser.add_argument("--calibrate", action="store_true", help="propose targets instead")
    parser.add_argument(
        "--publish-only", action="store_true", help="rewrite docs/README from --out's files"
    )
    args = parser.parse_args()
    out, docs = Path(args.out), Path(args.docs)
    if args.publish_only:
        publish(out, docs)
        return
    if not BENCHMARKED:
        raise SystemExit(f"no shared data found under {SHARED}; nothing to benchmark")
    benches = [b for b in BENCHMARKED if not args.tasks or b.id in args.tasks]
    unknown = set(args.tasks or ()) - {b.id for b in benches}
    if unknown:
        raise SystemExit(
            f"unknown or unavailable: {sorted(unknown)}; have {[b.id for b in BENCHMARKED]}"
        )
    if args.calibrate:
        calibrate([b.id for b in benches], args.workers)
        return

    learned = f"{LEARNED_PREFIX}{args.agent}"
    timing: dict[str, Timing] = {}
    for bench in benches:
        cost = timing[bench.id] = time_task(bench.id, bench.timing_steps)
        print(
            f"{bench.id}: {cost.wall_per_100:.1f} s wall ({cost.cpu_per_100:.1f} s CPU) per "
            f"100 steps, {cost.val_pass:.2f} s per validation pass",
            flush=True,
        )
    specs = []
    for bench in benches:
        if bench.heavy:
            specs += grid([bench.id], [*HEAVY_SCHEDULERS, learned], range(1))
        else:
            specs += grid([bench.id], [*BASELINES, learned], range(args.seeds))
    start = time.perf_counter()
    done = 0

    def progress(result) -> None:
        nonlocal done
        done += 1
        row = result.row
        print(
            f"[{done}/{len(specs)}] {row['task']} {row['scheduler']} seed {row['seed']}: "
            f"test {row['final_test_metric']:.3f} in {row['wall_seconds']:.0f} s",
            flush=True,
        )

    runs, curves = run_grid(specs, workers=args.workers, on_done=progress)
    write_frames(out, runs, curves)
    pd.DataFrame([{"task": t, **dataclasses.asdict(c)} for t, c in timing.items()]).to_csv(
        out / "timing.csv", index=False
    )
    meta = {
        "learned": learned,
        "command": f"python benchmarks/real_tasks.py --seeds {args.seeds} --workers {args.workers}",
        "minutes": (time.perf_counter() - start) / 60,
        "workers": args.workers,
        "load": os.getloadavg()[0],
    }
    write_text_atomic(out / "meta.json", json.dumps(meta, indent=2))
    print(f"\nwrote {len(runs)} runs to {out} ({meta['minutes']:.1f} min)")
    publish(out, docs)


if __name__ == "__main__":
    main()
