"""Agents side by side on the validation slice, the only numbers selection may use.

The validation slice is what ``lrgym train`` selects on: every meta-train task at its
default LR and at ``val_lrs``, on run seeds training never draws, validation cadences in
turn (:func:`lrgym.agents.train.validation_episodes`). Agents trained with different
action maps (a constant or a cosine base, with or without the harm guard) cannot be
compared through their cards' "constant LR" columns, which hold under each agent's own
map; here every agent and two yardsticks run the same episodes:

* ``constant``: the LR never moves (the default action map, holding);
* ``cosine``: the LR follows a cosine decay to 1% (the cosine base, holding).

Prints, per task and overall, each one's mean return (log L0/LT of the validation
loss, the reward agents are trained on) and mean final validation metric.

    python benchmarks/validation_slice.py --agents default runs/gen-seed0 \\
        [--config agents/recipes/broad.yaml] [--tasks meta-train procedural]

Drawn procedural tasks are scored as training scores them
(:func:`lrgym.agents.train.validation_tasks`): drawn tasks of the validation family,
which no training run sees, one row per family.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable

import numpy as np

from lrgym.agents.config import load_config
from lrgym.agents.meta_env import VALIDATION_SEEDS
from lrgym.agents.train import meta_env, run_episode, validation_episodes, validation_tasks
from lrgym.core.actions import LogLRAction
from lrgym.core.registration import select_tasks, spec
from lrgym.deploy.agent import load_agent
from lrgym.harness.report import md_table

Act = Callable[[np.ndarray], np.ndarray]


def run_slice(act: Act, action: LogLRAction, tasks: list[str], config, episodes) -> dict:
    """Per task: mean return and mean final validation metric of ``act`` under ``action``."""
    env = meta_env(tasks, dataclasses.replace(config, action=dict(vars(action))), VALIDATION_SEEDS)
    per_task: dict[str, list[tuple[float, float]]] = {}
    for options in episodes:
        total, info = run_episode(act, env, options)
        per_task.setdefault(options["task"], []).append((total, info["val_metric"]))
    env.close()
    return {t: np.array(v).mean(0) for t, v in per_task.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", nargs="+", required=True, help="agent names or folders")
    parser.add_argument("--config", default="agents/recipes/broad.yaml")
    parser.add_argument("--tasks", nargs="+", default=None, help="default: the config's")
    args = parser.parse_args()
    config = load_config(args.config, tasks=args.tasks)
    tasks = validation_tasks(select_tasks(config.tasks))
    episodes = validation_episodes(tasks, config)
    hold = np.zeros(1, np.float32)
    runs: dict[str, tuple[Act, LogLRAction]] = {
        "constant": (lambda obs: hold, LogLRAction()),
        "cosine": (lambda obs: hold, LogLRAction(base="cosine")),
    }
    for name in args.agents:
        agent = load_agent(name)
        if len(agent.hparams) != 1:
            raise SystemExit(f"{name}: only LR-only agents are compared here")
        runs[name] = (lambda obs, a=agent: np.array([a.act(obs)], np.float32), agent.action_map)
    print(f"{len(episodes)} episodes on {len(tasks)} tasks ({args.config}) …", flush=True)
    scores = {
        name: run_slice(act, amap, tasks, config, episodes) for name, (act, amap) in runs.items()
    }
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
    for column, label in ((0, "mean return"), (1, "final validation metric")):
        rows = []
        for name, members in [*groups.items(), *((n, m) for n, m in summary if m)]:
            means = [np.mean([scores[n][t][column] for t in members]) for n in runs]
            rows.append([name, *(f"{m:.3f}" for m in means)])
        print(f"\n{label}\n")
        print(md_table(["task", *runs], rows, align="l" + "r" * len(runs)))


if __name__ == "__main__":
    main()
