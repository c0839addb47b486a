"""Scaling on Ray: `compare` runs/s and meta-training env steps/s with 1, 2, … workers.

For each worker count W, a local Ray cluster of W CPUs is started (``ray.init(num_cpus=W)``)
and, ``--repeats`` times each, the same two workloads are timed:

* **compare**: a fixed grid of ``--runs`` runs of ``--task`` (seeds 0, 1, …, constant LR,
  ``--total-steps`` each) as Ray tasks (:func:`lrgym.harness.compare.run_grid`, ``backend="ray"``);
  runs per second of wall time;
* **meta-training**: ``lrgym train``'s loop (its ``make_vec_env`` with ``backend="ray"``:
  W environment actors, ``VecNormalize``, SB3 PPO updating in this process) for
  ``--seconds``; environment steps (decisions) per second.

After a warm-up of each (worker processes importing torch), it prints the median rates,
the speed-up over the first worker count and the scaling efficiency (speed-up / workers
ratio). On a 16-core machine: ``--workers 1 2 4 8 16 --runs 64``.

    python benchmarks/ray_scaling.py --workers 1 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import ray
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecNormalize

from lrgym.agents.config import load_config
from lrgym.agents.sb3_files import make_ppo
from lrgym.agents.train import meta_train_tasks
from lrgym.agents.workers import make_vec_env
from lrgym.harness.compare import RunSpec, run_grid
from lrgym.harness.report import md_table


class StopAfter(BaseCallback):
    """Stops training ``seconds`` after the first step; counts the steps in between."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.start = 0.0
        self.first = -1
        self.rate = 0.0

    def _on_step(self) -> bool:
        now = time.perf_counter()
        if self.first < 0:
            self.start, self.first = now, self.num_timesteps
        self.rate = (self.num_timesteps - self.first) / max(now - self.start, 1e-9)
        return now - self.start < self.seconds


def compare_rate(args: argparse.Namespace, runs: int) -> float:
    """Runs per second of a grid of ``runs`` runs as Ray tasks."""
    specs = [RunSpec(args.task, "constant", seed) for seed in range(runs)]
    started = time.perf_counter()
    run_grid(specs, total_steps=args.total_steps, backend="ray")
    return runs / (time.perf_counter() - started)


def train_rate(args: argparse.Namespace, workers: int, seconds: float) -> float:
    """Environment steps per second of meta-training with ``workers`` Ray actors."""
    config = load_config(
        None,
        tasks=args.train_tasks,
        n_envs=workers,
        backend="ray",
        decision_interval=args.decision_interval,
        episode_steps=args.episode_steps,
        total_timesteps=10**9,
        ppo={"n_steps": args.n_steps, "batch_size": args.batch_size},
    )
    venv = VecNormalize(make_vec_env(meta_train_tasks(config), config), gamma=config.ppo.gamma)
    model = make_ppo(venv, config)
    clock = StopAfter(seconds)
    model.learn(10**9, callback=clock)
    venv.close()
    return clock.rate


def measure(args: argparse.Namespace, workers: int) -> dict[str, float]:
    """Median rates with a local Ray cluster of ``workers`` CPUs."""
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        compare_rate(args, workers)  # warm-up: every worker imports torch and lrgym once
        compares = [compare_rate(args, args.runs) for _ in range(args.repeats)]
        train_rate(args, workers, 2.0)  # warm-up
        trains = [train_rate(args, workers, args.seconds) for _ in range(args.repeats)]
    finally:
        ray.shutdown()
    return {"compare": statistics.median(compares), "train": statistics.median(trains)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--task", default="lrgym/WineMLP-v0")
    parser.add_argument("--runs", type=int, default=8, help="runs in the compare grid")
    parser.add_argument("--total-steps", type=int, default=200)
    parser.add_argument("--train-tasks", nargs="+", default=["lrgym/DigitsMLP-v0"])
    parser.add_argument("--seconds", type=float, default=10.0, help="per meta-training timing")
    parser.add_argument("--decision-interval", type=int, default=25)
    parser.add_argument("--episode-steps", type=int, default=250)
    parser.add_argument("--n-steps", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    rows = {w: measure(args, w) for w in args.workers}
    first = args.workers[0]
    print(f"medians of {args.repeats}; speed-up over {first} worker(s); efficiency: speed-up")
    print(f"divided by the ratio of workers (workers / {first})\n")
    table = []
    for w, r in rows.items():
        cells = [str(w)]
        for key in ("compare", "train"):
            gain = r[key] / rows[first][key]
            cells += [f"{r[key]:.2f}", f"{gain:.2f}", f"{gain / (w / first):.0%}"]
        table.append(cells)
    headers = [
        "workers", "compare runs/s", "speed-up", "efficiency", "meta-train env steps/s",
        "speed-up", "efficiency",
    ]  # fmt: skip
    print(md_table(headers, table, align="rrrrrrr"))


if __name__ == "__main__":
    main()
