"""Training-setup experiments and feature ablations, measured on the held-out tasks.

Trains one agent per variant (the same config except what the variant changes), then
runs each beside every static baseline on the held-out tasks, exactly as
``benchmarks/heldout.py`` does, and prints one row per variant: the three measures of the
issue-#4 bar and the final test metric per task.

A variant is ``no-<group>`` (drop one observation group of ``lrgym.core.signals.FEATURE_GROUPS``),
``full``, or ``NAME:KEY=VALUE,KEY=VALUE`` with TrainConfig keys (``ppo.gamma=0.999``).

    python benchmarks/ablations.py --variants full no-lr no-train_loss no-gradient \\
        no-validation no-time --timesteps 30000 --n-envs 4 --parallel 4 --workers 16

Trainings run ``--parallel`` at a time, each with ``--n-envs`` worker processes; size
both to the machine (about 7 minutes per 30k-step agent on 2 cores).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml
from heldout import SWEEP, bar_measures

from lrgym.controllers import BASELINES, LEARNED_PREFIX
from lrgym.core.registration import select_tasks
from lrgym.core.signals import FEATURE_GROUPS
from lrgym.deploy.agent import load_agent
from lrgym.harness.compare import grid, run_grid, write_frames
from lrgym.harness.measures import summary_table
from lrgym.io._atomic import write_text_atomic

ROOT = Path(__file__).resolve().parents[1]


def variant_overrides(spec: str) -> tuple[str, dict]:
    """``(name, TrainConfig overrides)`` of a variant spec (see the module docstring)."""
    if spec == "full":
        return spec, {}
    if spec.startswith("no-") and spec[3:] in FEATURE_GROUPS:
        return spec, {"drop_features": [spec[3:]]}
    name, sep, rest = spec.partition(":")
    if not sep:
        raise SystemExit(f"unknown variant {spec!r}: use full, no-<group> or NAME:KEY=VALUE")
    overrides: dict = {}
    for item in rest.split(","):
        key, _, value = item.partition("=")
        section, _, sub = key.partition(".")
        target = overrides.setdefault(section, {}) if sub else overrides
        target[sub or key] = yaml.safe_load(value)
    return name, overrides


def train_variants(specs: list[str], base: dict, out: Path, parallel: int) -> dict[str, Path]:
    """Train every variant (``parallel`` at a time, one ``lrgym train`` process each)."""
    dirs, pending, running = {}, [], []
    for spec in specs:
        name, overrides = variant_overrides(spec)
        config = {**base, "name": name, "out": str(out / name), **overrides}
        config["ppo"] = {**base.get("ppo", {}), **overrides.get("ppo", {})}
        path = out / f"{name}.yaml"
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, yaml.safe_dump(config))
        dirs[name] = out / name
        command = [sys.executable, "-m", "lrgym", "train", "--config", str(path), "--no-progress"]
        pending.append((command, out / f"{name}.log"))
    while pending or running:
        while pending and len(running) < parallel:
            command, log = pending.pop(0)
            log_file = log.open("w")
            running.append(subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT))
        running[0].wait()
        if running[0].returncode:
            raise SystemExit(f"training failed: {' '.join(running[0].args)} (see its .log)")
        running.pop(0)
    return dirs


def variant_row(runs: pd.DataFrame, name: str, learned: str, agent_dir: Path) -> dict:
    """One table row: the bar's measures for ``learned`` against the static baselines."""
    mine = runs[runs["scheduler"].isin([learned, *BASELINES])]
    m = bar_measures(mine, learned)
    card = load_agent(agent_dir).card
    summary = summary_table(mine)
    row = {
        "variant": name,
        "profile": f"{m['profile']:.3f} ({m['best_profile']:.3f})",
        "reach": f"{m['reach']:.2f} ({m['best_reach']:.2f})",
        "worse beyond CI": ", ".join(t.split("/")[-1] for t in m["losses"]) or "none",
        "selected at": card.selected_timesteps,
    }
    for task in sorted(mine["task"].unique()):
        row[task.split("/")[-1]] = f"{summary.loc[(task, learned), 'test_mean']:.3f}"
    return row


def markdown_table(frame: pd.DataFrame) -> str:
    """``frame`` as a Markdown table (pandas' ``to_markdown`` needs ``tabulate``)."""
    rows = [list(frame.columns), ["---"] * frame.shape[1], *frame.astype(str).values.tolist()]
    return "\n".join("| " + " | ".join(map(str, r)) + " |" for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ablations = [f"no-{group}" for group in FEATURE_GROUPS]
    parser.add_argument("--variants", nargs="+", default=["full", *ablations])
    parser.add_argument("--timesteps", type=int, default=30_000)
    parser.add_argument("--n-envs", type=int, default=2)
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--ent-coef", type=float, default=0.005)
    parser.add_argument("--tasks", nargs="+", default=["held-out"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "ablations")
    parser.add_argument(
        "--stage",
        choices=["all", "train", "evaluate"],
        default="all",
        help="evaluate: use the agents an earlier --stage train left in --out",
    )
    parser.add_argument(
        "--baselines-from",
        type=Path,
        help="runs.csv of an earlier run with the same tasks and seeds: reuse its static "
        "baseline runs instead of running them again",
    )
    args = parser.parse_args()

    base = {
        "total_timesteps": args.timesteps,
        "n_envs": args.n_envs,
        "eval_every": 5000,
        "checkpoint_every": args.timesteps,
        "ppo": {"ent_coef": args.ent_coef},
    }
    if args.stage == "evaluate":
        names = [variant_overrides(v)[0] for v in args.variants]
        dirs = {name: args.out / name for name in names}
    else:
        dirs = train_variants(args.variants, base, args.out, args.parallel)
    if args.stage == "train":
        return
    learned = {name: f"{LEARNED_PREFIX}{path}" for name, path in dirs.items()}
    reuse = pd.read_csv(args.baselines_from) if args.baselines_from else None
    schedulers = [*learned.values(), *([] if reuse is not None else BASELINES)]
    specs = grid(select_tasks(args.tasks), schedulers, range(args.seeds), [None, *SWEEP])
    print(f"{len(specs)} held-out runs ...", flush=True)
    runs, curves = run_grid(specs, workers=args.workers)
    if reuse is not None:  # the static baselines are deterministic: reuse an earlier run's
        runs = pd.concat([runs, reuse[reuse["scheduler"].isin(BASELINES)]], ignore_index=True)
    write_frames(args.out, runs, curves)
    table = pd.DataFrame([variant_row(runs, n, learned[n], dirs[n]) for n in dirs])
    text = (
        f"Held-out runs over {args.seeds} seeds; each variant's full training config is in "
        f"its card ({args.out}/VARIANT/card.json). Profile and reach: the variant "
        "(best static baseline in brackets).\n\n" + markdown_table(table)
    )
    write_text_atomic(args.out / "ablations.md", text + "\n")
    print(text)


if __name__ == "__main__":
    main()
