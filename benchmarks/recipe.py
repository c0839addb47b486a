"""The learned-scheduler recipe against every controller, for each of its training seeds.

One command regenerates the issue-13 evidence (bars 1-5) for agents trained with the same
recipe and different training seeds (``lrgym train --config agents/recipes/broad.yaml
--seed S``):

1. Peers: every other controller (the seven static schedules, feedback rule,
   hypergradient, schedule-free AdamW, Prodigy and the LR predictor, retrained here on
   meta-train logs only; with ``--pbt-seeds N`` also Ray Tune's PBT, at the default LR
   only, as each of its runs trains a population) on the held-out tasks (``--seeds``
   seeds, at each task's default LR and over the initial-LR sweep 1e-5 … 1e-1) and on
   the real tasks with a local data copy (``--real-seeds`` seeds, default LR). Run
   once, reused by every agent.
2. Each agent on the same grids, and in the README's plain loop (``user_loop.py``), fed
   validation at every decision, every fourth decision and never.
3. Per agent, issue 24's bar: (a) held-out profile score (steps to target at the
   default LR) at least every other controller's; (b) on every held-out task a final
   test metric no lower than the best static schedule's minus its 95% CI; (c) a mean
   final test metric over the held-out tasks above constant LR's; (d) real-task profile
   at least every other controller's; (e) no real task where it is below any
   controller beyond the 95% CI; (f) reach (ended at or above the target without
   diverging) over the sweep >= 0.90 and >= Prodigy's on the tasks Prodigy runs; (g) in
   the plain loop, at least as good as constant LR (mean final validation loss <= and
   metric >=) in 18 of 21 cells, kept as that share of however many cells there are
   (three cadences per torch task). Printed as one row per agent, with how many agents
   meet every bar (issue 24: 3 of 4 training seeds, or the shipped ensemble); the rows
   and the first agent's full tables go to ``docs/results/recipe/summary.md``.

    python benchmarks/recipe.py --agents runs/recipe/seed0 runs/recipe/seed1 \\
        runs/recipe/seed2 runs/recipe/seed3 --seeds 5 --real-seeds 3 --workers 2 \\
        --pbt-seeds 1 --readme docs/results/index.md --card trained_agents/default

Which agent ships is fixed before this runs (on the validation slice,
``benchmarks/validation_slice.py``); this script only measures. With ``--slice`` it
measures the same bar parts on the validation slice instead: the named meta-train tasks
on run seeds training never draws (``VALIDATION_SEEDS``), with the sweep and the plain
loop, every controller alongside (no real tasks, so no d and e; written to
``DOCS/slice.md``, never to the README or a card). These are numbers selection may use,
and unlike ``validation_slice.py``'s mean return they are the bar's own measures (speed
to target, final metric against the static schedules, reach):

    python benchmarks/recipe.py --slice --agents trained_agents/default runs/v3-seed0 \\
        --seeds 5 --workers 2

Results land in ``results/recipe/`` (not committed; a stage whose files exist is reused,
so an interrupted run continues). The two heavy real tasks (ResNet-18, MiniLM: about
90-120 s per 100 steps on 2 CPU cores) are left out of the grids here.
"""

from __future__ import annotations

import argparse
import functools
import math
import re
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import user_loop  # noqa: E402
from controllers import log_meta_train  # noqa: E402
from heldout import SWEEP, worse_beyond_ci  # noqa: E402
from real_tasks import BENCHMARKED  # noqa: E402  (registers shared/<Name>-v0)

import lrgym  # noqa: E402
from lrgym.agents.meta_env import VALIDATION_SEEDS  # noqa: E402
from lrgym.controllers import ADAPTIVE, BASELINES, LEARNED_PREFIX, PREDICTOR_PREFIX  # noqa: E402
from lrgym.controllers.learned import LearnedController
from lrgym.controllers.lr_predictor import (  # noqa: E402
    PredictorTraining,
    train_predictor,
    training_data,
)
from lrgym.core.registration import make_task, task_ids  # noqa: E402
from lrgym.deploy.agent import load_agent, resolve_agent  # noqa: E402
from lrgym.harness.compare import grid, write_frames  # noqa: E402
from lrgym.harness.measures import lr_robustness, performance_profile, summary_table  # noqa: E402
from lrgym.harness.report import fmt_mean_ci, md_table  # noqa: E402
from lrgym.harness.results_store import folder_fingerprint, run_recorded  # noqa: E402
from lrgym.io._atomic import write_text_atomic  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PREDICTOR = "lr-predictor"
REACH_BAR = 0.90
LOOP_SHARE = 18 / 21
START, END = "<!-- recipe:start -->", "<!-- recipe:end -->"
LOOP_COLUMNS = [
    "task", "validation", "agent_loss", "constant_loss", "agent_metric", "constant_metric"
]  # fmt: skip
REAL_TASKS = [b.id for b in BENCHMARKED if not b.heavy]


@dataclass(frozen=True)
class Grid:
    """One suite's tasks and run seeds; ``sweep``: also over the initial-LR sweep."""

    tasks: list[str]
    seeds: list[int]
    sweep: bool


def suites_of(args: argparse.Namespace) -> dict[str, Grid]:
    """The suites measured: held-out (with the sweep) and real, or with ``--slice`` the
    validation slice, the named meta-train tasks on run seeds training never draws."""
    if args.slice:
        first = VALIDATION_SEEDS[0]
        return {"slice": Grid(task_ids("meta-train"), list(range(first, first + args.seeds)), True)}
    return {
        "held-out": Grid(task_ids("held-out"), list(range(args.seeds)), True),
        "real": Grid(REAL_TASKS, list(range(args.real_seeds)), False),
    }


def _lrs(g: Grid) -> list[float | None]:
    return [None, *SWEEP] if g.sweep else [None]


def _frames(path: Path) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    if (path / "runs.csv").exists() and (path / "curves.csv").exists():
        return pd.read_csv(path / "runs.csv"), pd.read_csv(path / "curves.csv")
    return None


def _run(path: Path, specs: list, workers: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``specs`` run on ``workers`` processes, or the frames an earlier call left in ``path``.

    Each finished run is journaled in ``path`` as it ends (``lrgym.harness.results_store``),
    so a stage stopped midway (a session's end) resumes from the runs it has."""
    cached = _frames(path)
    if cached is not None:
        print(f"reusing {path}", flush=True)
        return cached
    start = time.perf_counter()
    print(f"{len(specs)} runs -> {path} ...", flush=True)
    runs, curves = run_recorded(path, specs, workers=workers)
    for frame in (runs, curves):  # one name for the predictor, whatever its file
        frame.loc[frame["scheduler"].str.startswith(PREDICTOR_PREFIX), "scheduler"] = PREDICTOR
    write_frames(path, runs, curves)
    print(f"  {time.perf_counter() - start:.0f} s", flush=True)
    return runs, curves


def peers(args: argparse.Namespace) -> dict[str, pd.DataFrame]:
    """Every non-learned controller's runs: held-out (default LR + sweep) and real."""
    predictor = args.out / "lr_predictor.pt"
    if not predictor.exists():
        meta_runs, meta_curves = log_meta_train(args.train_seeds, args.workers, args.out / "meta")
        model = train_predictor(training_data(meta_runs, meta_curves), PredictorTraining())
        model.save(predictor)
        print(f"predictor: {model.info}", flush=True)
    names = [*BASELINES, *ADAPTIVE, f"{PREDICTOR_PREFIX}{predictor}"]
    frames = {}
    for suite, g in suites_of(args).items():
        specs = grid(g.tasks, names, g.seeds, _lrs(g))
        frames[suite] = _run(args.out / f"peers-{suite}", specs, args.workers)[0]
        if args.pbt_seeds and g.sweep:  # PBT runs a population per run: default LR only
            pbt = grid(g.tasks, ["pbt"], g.seeds[: args.pbt_seeds])
            pbt_runs = _run(args.out / f"peers-pbt-{suite}", pbt, args.workers)[0]
            frames[suite] = pd.concat([frames[suite], pbt_runs], ignore_index=True)
    return frames


def _sweep(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs of the initial-LR sweep, of the controllers that ran all of it."""
    sweep = runs[~runs["default_lr"] | runs["initial_lr"].isin(SWEEP)]
    lrs = sweep.groupby("scheduler")["initial_lr"].nunique()
    return sweep[sweep["scheduler"].isin(lrs[lrs >= len(SWEEP)].index)]


def agent_runs(args: argparse.Namespace, agent: str) -> dict[str, pd.DataFrame]:
    """The agent's runs on the same grids as :func:`peers`."""
    name = [f"{LEARNED_PREFIX}{agent}"]
    return {
        suite: _run(
            args.out / f"{_tag(agent)}-{suite}", grid(g.tasks, name, g.seeds, _lrs(g)), args.workers
        )[0]
        for suite, g in suites_of(args).items()
    }


def _tag(agent: str) -> str:
    """The name an agent's cached runs go under in ``--out``: its directory's name and its
    card and weights' fingerprint, so that another agent at the same path (a newly shipped
    ``trained_agents/default``) is run, never read from the old one's files."""
    path = resolve_agent(agent)
    return f"{path.name}-{folder_fingerprint(path)[:10]}"


@functools.cache
def _agent(path: str) -> lrgym.Agent:
    return load_agent(path)


def _loop_run(task: str, seed: int, agent: str | None, every: int) -> tuple[float, float]:
    """One :func:`user_loop.run` in a worker process (one torch thread)."""
    torch.set_num_threads(1)
    return user_loop.run(task, seed, None if agent is None else _agent(agent), every)


def plain_loop(args: argparse.Namespace, agent: str) -> pd.DataFrame:
    """Bar 4: the README's plain loop at three validation cadences, against constant LR."""
    path = args.out / f"{_tag(agent)}-user-loop{'-slice' if args.slice else ''}.csv"
    if path.exists():
        return pd.read_csv(path)
    controller = LearnedController(agent)  # a multi-hp agent runs only on its backend
    seeds = {t: g.seeds for g in suites_of(args).values() for t in g.tasks}
    torch_tasks = [
        t for t in seeds if make_task(t).has_gradients and controller.applies_to(make_task(t))
    ]
    jobs = {}
    with ProcessPoolExecutor(args.workers) as pool:
        for task in torch_tasks:
            for seed in seeds[task]:
                jobs[task, "constant", seed] = pool.submit(_loop_run, task, seed, None, 0)
                for mode, every in user_loop.CADENCES.items():
                    jobs[task, mode, seed] = pool.submit(_loop_run, task, seed, agent, every)
        done = {key: job.result() for key, job in jobs.items()}
    rows = []
    for task in torch_tasks:
        constant = [v for (t, m, _), v in done.items() if t == task and m == "constant"]
        for mode in user_loop.CADENCES:
            learned = [v for (t, m, _), v in done.items() if t == task and m == mode]
            rows.append(
                {
                    "task": task,
                    "validation": mode,
                    "agent_loss": statistics.mean(v[0] for v in learned),
                    "constant_loss": statistics.mean(v[0] for v in constant),
                    "agent_metric": statistics.mean(v[1] for v in learned),
                    "constant_metric": statistics.mean(v[1] for v in constant),
                }
            )
    frame = pd.DataFrame(rows, columns=LOOP_COLUMNS)
    frame["ok"] = (frame["agent_loss"] <= frame["constant_loss"]) & (
        frame["agent_metric"] >= frame["constant_metric"]
    )
    args.out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return frame


def _markdown(frame: pd.DataFrame) -> str:
    """``frame`` as a markdown table, floats to 3 decimals."""
    rows = [[f"{v:.3f}" if isinstance(v, float) else v for v in r] for r in frame.to_numpy()]
    return md_table(list(frame.columns), rows)


@dataclass
class Suite:
    """One suite's runs (every other controller and the agent) and their measures."""

    runs: pd.DataFrame
    summary: pd.DataFrame
    profile: pd.Series
    robust: pd.DataFrame | None  # reach over the sweep (the suite with the sweep only)


def measure(mine: dict, others: dict, grids: dict[str, Grid]) -> dict[str, Suite]:
    """Each suite's runs and measures, computed once for the row and the tables."""
    suites = {}
    for suite, g in grids.items():
        runs = pd.concat([others[suite], mine[suite]], ignore_index=True)
        robust = lr_robustness(_sweep(runs)) if g.sweep else None
        suites[suite] = Suite(runs, summary_table(runs), performance_profile(runs), robust)
    return suites


def _below_best_static(summary: pd.DataFrame, task: str, learned: str) -> bool:
    """Whether ``learned``'s final test metric on ``task`` is below the best static
    schedule's minus that schedule's 95% CI half-width."""
    s = summary.loc[task]
    static = s[s.index.isin(BASELINES)]
    best = static.loc[static["test_mean"].idxmax()]
    return bool(s.loc[learned, "test_mean"] < best["test_mean"] - best["test_ci"])


def _reach_against_prodigy(runs: pd.DataFrame, learned: str) -> tuple[float, float]:
    """Reach over the sweep of the agent and of Prodigy, on the tasks Prodigy runs (it
    needs gradients)."""
    sweep = _sweep(runs)
    prodigy_tasks = sweep.loc[sweep["scheduler"] == "prodigy", "task"].unique()
    both = lr_robustness(sweep[sweep["task"].isin(prodigy_tasks)])
    return float(both.loc[learned, "all"]), float(both.loc["prodigy", "all"])


BARS = ("a", "b", "c", "d", "e", "f", "g")


def bar_row(
    agent: str, mine: dict[str, pd.DataFrame], suites: dict[str, Suite], loop: pd.DataFrame
) -> dict[str, object]:
    """Issue 24's bar (see the module docstring) for one agent against every other
    controller; with ``--slice`` its parts on the slice (no real tasks: no d and e)."""
    learned = f"{LEARNED_PREFIX}{agent}"
    swept = next(s for s, m in suites.items() if m.robust is not None)
    row: dict[str, object] = {"agent": agent}
    for suite, bar in ((swept, "a"), ("real", "d")):
        if suite not in suites:
            continue
        profile = suites[suite].profile
        rivals = profile.drop(index=learned)
        row[f"profile {suite}"] = float(profile[learned])
        row[f"best other {suite}"] = f"{rivals.max():.3f} ({rivals.idxmax()})"
        row[bar] = bool(profile[learned] >= rivals.max())
    summary = suites[swept].summary
    tasks = sorted(mine[swept]["task"].unique())  # a multi-hp agent skips some
    below = [t for t in tasks if _below_best_static(summary, t, learned)]
    row["below best static - CI"] = ", ".join(t.split("/")[-1] for t in below) or "none"
    row["b"] = not below
    test = summary["test_mean"].unstack("task")[tasks]
    row["mean test (constant)"] = (
        f"{test.loc[learned].mean():.3f} ({test.loc['constant'].mean():.3f})"
    )
    row["c"] = bool(test.loc[learned].mean() > test.loc["constant"].mean())
    if "real" in suites:
        real = suites["real"].summary
        worse = [
            t for t in sorted(mine["real"]["task"].unique()) if worse_beyond_ci(real, t, learned)[0]
        ]
        row["real worse beyond CI"] = ", ".join(t.split("/")[-1] for t in worse) or "none"
        row["e"] = not worse
    reach = float(suites[swept].robust.loc[learned, "all"])
    reach_shared, prodigy = _reach_against_prodigy(suites[swept].runs, learned)
    row["reach (Prodigy's tasks: agent / Prodigy)"] = (
        f"{reach:.3f} ({reach_shared:.3f} / {prodigy:.3f})"
    )
    row["f"] = bool(reach >= REACH_BAR and reach_shared >= prodigy)
    needed = math.ceil(LOOP_SHARE * len(loop))
    row["plain loop ok (needed)"] = f"{int(loop['ok'].sum())}/{len(loop)} ({needed})"
    row["g"] = bool(len(loop) and loop["ok"].sum() >= needed)  # no torch task: not shown
    parts = [b for b in BARS if b in row]
    row["bars met"] = f"{sum(bool(row[b]) for b in parts)}/{len(parts)}"
    return row


def tables(agent: str, suites: dict[str, Suite], loop: pd.DataFrame) -> str:
    """Full tables for one agent: every controller per task (test metric, reach, steps)."""
    learned = f"{LEARNED_PREFIX}{agent}"
    parts = []
    for suite, measured in suites.items():
        summary, profile = measured.summary, measured.profile
        test = summary["test_mean"].unstack("task")
        ci = summary["test_ci"].unstack("task")
        steps = summary["median_steps_to_target"].unstack("task")
        metrics = summary["metric"].unstack("task")
        tasks = list(test.columns)
        head = [t.split("/")[-1].removesuffix("-v0") for t in tasks]
        parts += [
            f"**{suite}**: final test metric, mean ± 95% CI at the default LR (clipped to the "
            "metric's range, then shown as [low, high]; median steps to target in brackets; "
            "– missed); best per task in bold.",
            "",
        ]
        rows = []
        for sched in profile.index:
            cells = []
            for t in tasks:
                v = test.loc[sched, t] if sched in test.index else math.nan
                if not math.isfinite(v):
                    cells.append("n/a")
                    continue
                s = steps.loc[sched, t]
                reached = "–" if not math.isfinite(s) else f"{s:g}"
                interval = fmt_mean_ci(v, ci.loc[sched, t], metrics.loc[sched, t], digits=3)
                text = f"{interval} ({reached})"
                cells.append(f"**{text}**" if v >= test[t].max() else text)
            name = f"**{sched}**" if sched == learned else sched
            rows.append([name, f"{profile[sched]:.3f}", *cells])
        parts.append(
            md_table(["controller", "profile", *head], rows, align="l" + "r" * (1 + len(tasks)))
        )
        if measured.robust is not None:
            robust = measured.robust
            cols = [c for c in robust.columns if c != "all"]
            rows = [
                [
                    sched,
                    *[f"{robust.loc[sched, c]:.2f}" for c in cols],
                    f"{robust.loc[sched, 'all']:.2f}",
                ]
                for sched in robust.sort_values("all", ascending=False).index
            ]
            parts += [
                "",
                "Reach over the initial-LR sweep (ended at or above the target, not diverged):",
                "",
                md_table(["controller", *[f"{c:g}" for c in cols], "all"], rows),
            ]
        parts.append("")
    parts += [
        "**Plain loop** (`benchmarks/user_loop.py`'s loop; means over seeds, final validation):",
        "",
        _markdown(loop),
    ]
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", nargs="+", required=True, help="agent folders or names")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--real-seeds", type=int, default=3)
    parser.add_argument("--train-seeds", type=int, default=2, help="LR predictor's log seeds")
    parser.add_argument(
        "--pbt-seeds", type=int, default=0, help="seeds of pbt on held-out tasks (default LR)"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "recipe")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "results" / "recipe")
    parser.add_argument("--peers-only", action="store_true", help="stage 1 only")
    parser.add_argument(
        "--slice",
        action="store_true",
        help="measure the bar's parts on the validation slice (meta-train tasks, unseen run "
        "seeds), the only numbers selection may use; writes DOCS/slice.md",
    )
    parser.add_argument(
        "--readme",
        type=Path,
        help="write the seed rows and the first agent's tables between the README's recipe markers",
    )
    parser.add_argument(
        "--card", type=Path, help="an agent folder whose card gets the same text (evaluation)"
    )
    args = parser.parse_args()
    if args.slice and (args.readme or args.card):
        parser.error("--slice measures selection evidence: it writes no README or card")
    for agent in args.agents:
        load_agent(agent)  # fail fast on a bad agent
    torch.set_num_threads(1)
    others = peers(args)
    if args.peers_only:
        return
    rows, details = [], []
    for agent in args.agents:
        mine = agent_runs(args, agent)
        loop = plain_loop(args, agent)
        suites = measure(mine, others, suites_of(args))
        rows.append(bar_row(agent, mine, suites, loop))
        details.append(f"## {agent}\n\n{tables(agent, suites, loop)}\n")
    table = _markdown(pd.DataFrame(rows))
    every = sum(all(bool(r[b]) for b in BARS if b in r) for r in rows)
    table += f"\n\nAgents meeting every bar part measured: {every} of {len(rows)}."
    command = " ".join(["python benchmarks/recipe.py", *sys.argv[1:]])
    title = "on the validation slice" if args.slice else "every training seed"
    text = f"# The recipe, {title}\n\nMeasured with `{command}`.\n\n{table}\n\n"
    print(text, flush=True)
    args.docs.mkdir(parents=True, exist_ok=True)
    written = args.docs / ("slice.md" if args.slice else "summary.md")
    write_text_atomic(written, text + "\n".join(details))
    print(f"wrote {written}")
    # one heading level down: the shipped agent's tables sit inside the README's section
    shipped = f"Measured with `{command}`.\n\n{table}\n\n#{details[0]}"
    if args.readme:
        readme = args.readme.read_text(encoding="utf-8")
        if START not in readme or END not in readme:
            raise SystemExit(f"{args.readme} has no {START} ... {END} markers")
        section = f"{START}\n{shipped}\n{END}"
        readme = re.sub(f"{START}.*?{END}", lambda _: section, readme, flags=re.S)
        write_text_atomic(args.readme, readme)
    if args.card:
        agent = load_agent(args.card)
        agent.card.evaluation["recipe"] = shipped
        agent.card.save(agent.path)


if __name__ == "__main__":
    main()
