"""Agents side by side on the validation slice, the only numbers selection may use.

The validation slice is what ``lrgym train`` selects on: every meta-train task at its
default LR and at ``val_lrs``, on run seeds training never draws, validation cadences in
turn (:func:`lrgym.agents.validation.validation_episodes`). Agents trained with different
action maps (a constant or a cosine base, with or without the harm guard) cannot be
compared through their cards' "constant LR" columns, which hold under each agent's own
map; here every agent and two yardsticks run the same episodes:

* ``constant``: the LR never moves (the default action map, holding);
* ``cosine``: the LR follows a cosine decay to 1% (the cosine base, holding).

Prints, per task and overall, each one's mean return (log L0/LT of the validation
loss, the reward agents are trained on) and mean final validation metric.

    python benchmarks/validation_slice.py --agents default runs/gen-seed0 \\
        [--config agents/recipes/broad.yaml] [--tasks meta-train procedural] \\
        [--draws 32] [--repeats 1] [--workers 2]

The last table gives each run's mean return minus the first agent's over the same
episodes, with its standard error: differences inside about two standard errors are
noise. ``--draws`` (drawn validation tasks, up to the family's 1,000, where the config
draws procedural tasks) and ``--repeats`` (run seeds per task and LR) make a larger slice
than training's (as many draws as training has, at most 32; one seed), for offline
comparisons. Episodes run on one torch thread, as in training; ``--workers`` scores that
many runs at once, in processes of their own, with the same numbers. ``--cache DIR``
keeps each run's scores, keyed by the agent folder's fingerprint (or the yardstick) and
the slice (config and episodes): a later comparison on the same slice, or one cut short,
scores only what it has not scored yet. The key does not cover lrgym's own code: clear the
folder after changing what an episode does.

Drawn procedural tasks are scored as training scores them
(:func:`lrgym.agents.validation.validation_tasks`): drawn tasks of the validation family,
which no training run sees, one row per family.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from lrgym.agents.config import load_config
from lrgym.agents.meta_env import VALIDATION_SEEDS
from lrgym.agents.validation import (
    VALIDATION_DRAWS,
    run_episode,
    validation_episodes,
    validation_tasks,
)
from lrgym.agents.workers import meta_env
from lrgym.core.actions import LogLRAction
from lrgym.core.registration import select_tasks, spec
from lrgym.deploy.agent import load_agent
from lrgym.harness.report import md_table
from lrgym.harness.results_store import folder_fingerprint
from lrgym.io._atomic import atomic_path

Act = Callable[[np.ndarray], np.ndarray]


def run_slice(act: Act, action: LogLRAction, tasks: list[str], config, episodes) -> np.ndarray:
    """Return and final validation metric of ``act`` under ``action``, one row per episode."""
    env = meta_env(tasks, dataclasses.replace(config, action=dict(vars(action))), VALIDATION_SEEDS)
    rows = []
    for options in episodes:
        total, info = run_episode(act, env, options)
        rows.append((total, info["val_metric"]))
    env.close()
    return np.array(rows)


def paired_differences(scores: dict[str, np.ndarray], reference: str) -> list[list[str]]:
    """Each run's mean return minus ``reference``'s over the same episodes, with the
    standard error of that mean difference (episodes as the units)."""
    rows = []
    for name, values in scores.items():
        if name == reference:
            continue
        diff = values[:, 0] - scores[reference][:, 0]
        se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
        rows.append([name, f"{diff.mean():+.3f}", f"{se:.3f}"])
    return rows


YARDSTICKS: dict[str, LogLRAction] = {
    "constant": LogLRAction(),
    "cosine": LogLRAction(base="cosine"),
}


def slice_of(args: argparse.Namespace):
    """The config, validation tasks and episodes that ``args`` name (the same in every process)."""
    config = load_config(args.config, tasks=args.tasks)
    tasks = validation_tasks(select_tasks(config.tasks), args.draws)
    return config, tasks, validation_episodes(tasks, config, args.repeats)


def cache_file(cache: Path, run: str, config, episodes) -> Path:
    """Where a run's scores on this slice are kept under ``cache`` (``run``: a yardstick's
    name or an agent folder's fingerprint)."""
    key = json.dumps([run, dataclasses.asdict(config), episodes], sort_keys=True, default=str)
    return cache / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.npy"


def score(name: str, args: argparse.Namespace, the_slice=None) -> np.ndarray:
    """:func:`run_slice` for a yardstick or an agent, on one torch thread (one process's job).

    One thread, as training scores the slice: an episode can turn on rounding, and the
    thread count changes it. ``the_slice`` is :func:`slice_of`'s result where the caller
    has it (a worker process computes its own).
    """
    torch.set_num_threads(1)
    config, tasks, episodes = the_slice or slice_of(args)
    agent = None if name in YARDSTICKS else load_agent(name)
    run = name if agent is None else folder_fingerprint(agent.path)
    path = args.cache and cache_file(Path(args.cache), run, config, episodes)
    if path and path.exists():
        return np.load(path)
    if agent is None:
        hold = np.zeros(1, np.float32)
        scores = run_slice(lambda obs: hold, YARDSTICKS[name], tasks, config, episodes)
    else:
        act = lambda obs: np.array([agent.act(obs)], np.float32)  # noqa: E731
        scores = run_slice(act, agent.action_map, tasks, config, episodes)
    if path:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a run cut short: no half file
            np.save(f, scores)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", nargs="+", required=True, help="agent names or folders")
    parser.add_argument("--config", default="agents/recipes/broad.yaml")
    parser.add_argument("--tasks", nargs="+", default=None, help="default: the config's")
    parser.add_argument(
        "--draws",
        type=int,
        default=None,
        help=f"drawn validation tasks (training's: up to {VALIDATION_DRAWS})",
    )
    parser.add_argument("--repeats", type=int, default=1, help="run seeds per task and LR")
    parser.add_argument("--workers", type=int, default=1, help="runs scored at once")
    parser.add_argument("--cache", default=None, help="folder that keeps each run's scores")
    args = parser.parse_args()
    for name in args.agents:
        if len(load_agent(name).hparams) != 1:
            raise SystemExit(f"{name}: only LR-only agents are compared here")
    config, tasks, episodes = slice_of(args)
    runs = [*YARDSTICKS, *args.agents]
    print(f"{len(episodes)} episodes on {len(tasks)} tasks ({args.config}) …", flush=True)
    if args.workers <= 1:
        scores = {name: score(name, args, (config, tasks, episodes)) for name in runs}
    else:
        spawn = multiprocessing.get_context("spawn")  # fork after torch threads is unsafe
        with ProcessPoolExecutor(args.workers, mp_context=spawn) as pool:
            scores = dict(zip(runs, pool.map(score, runs, [args] * len(runs)), strict=True))
    groups: dict[str, list[str]] = {}  # a row per named task, one per procedural family
    for t in tasks:
        family = spec(t).family
        groups.setdefault(
            f"{family} ({sum(spec(u).family == family for u in tasks)} draws)" if family else t, []
        ).append(t)
    named = [t for t in tasks if not spec(t).family]
    drawn = [t for t in tasks if spec(t).family]
    summary = [
        ("**mean, named tasks**", named),
        ("**mean, drawn tasks**", drawn),
        ("**mean**", tasks),
    ]
    task_of = np.array([e["task"] for e in episodes])
    per_task = {  # run → task → (mean return, mean final validation metric)
        n: {t: values[task_of == t].mean(0) for t in tasks} for n, values in scores.items()
    }
    for column, label in ((0, "mean return"), (1, "final validation metric")):
        rows = []
        for name, members in [*groups.items(), *((n, m) for n, m in summary if m)]:
            means = [np.mean([per_task[n][t][column] for t in members]) for n in runs]
            rows.append([name, *(f"{m:.3f}" for m in means)])
        print(f"\n{label}\n")
        print(md_table(["task", *runs], rows, align="l" + "r" * len(runs)))
    reference = args.agents[0]
    print(f"\nmean return minus {reference}'s, over the same {len(episodes)} episodes\n")
    print(md_table(["run", "difference", "standard error"], paired_differences(scores, reference)))


if __name__ == "__main__":
    main()
