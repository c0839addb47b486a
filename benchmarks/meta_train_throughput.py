"""Meta-training throughput, batched vs not: env steps/s, optimizer steps/s, PPO's share.

Runs the loop `lrgym train` runs (its ``make_vec_env``, ``VecNormalize`` and SB3 PPO,
without validation and checkpoints) for ``--seconds`` of wall time per variant, side by
side in one run on the same cores, and prints env steps (decisions) per second,
optimizer steps per second (env steps × ``--decision-interval``), the share of wall time
spent in PPO's updates, and the hours 1M env steps would take at that rate.

    python benchmarks/meta_train_throughput.py --seconds 300 --n-envs 2 --batched 0 32 [--compile]

With ``--compile`` the batched variants run ``lrgym train --batched K --compile``; the
workers' compiling (tens of seconds) happens inside the timed window, as in a real run.
"""

from __future__ import annotations

import argparse
import time

import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecNormalize

from lrgym.agents.config import load_config
from lrgym.agents.sb3_files import make_ppo
from lrgym.agents.train import meta_train_tasks
from lrgym.agents.workers import make_vec_env


class Clock(BaseCallback):
    """Times rollouts and the PPO updates between them; stops after ``seconds``."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.start = time.perf_counter()
        self.update_seconds = 0.0
        self._rollout_end: float | None = None

    def _on_rollout_start(self) -> None:
        if self._rollout_end is not None:
            self.update_seconds += time.perf_counter() - self._rollout_end

    def _on_rollout_end(self) -> None:
        self._rollout_end = time.perf_counter()

    def _on_step(self) -> bool:
        return time.perf_counter() - self.start < self.seconds


def measure(batched: int, args: argparse.Namespace) -> dict[str, float]:
    """Train for ``args.seconds`` with ``batched`` runs per task and worker (0: plain)."""
    config = load_config(
        None,
        tasks=args.tasks,
        n_envs=args.n_envs,
        batched=batched,
        compile=bool(batched) and args.compile,
        decision_interval=args.decision_interval,
        episode_steps=args.episode_steps,
        total_timesteps=10**9,
        ppo={"n_steps": args.n_steps, "batch_size": args.batch_size},
    )
    tasks = meta_train_tasks(config)
    # as `lrgym train` does: the workers keep the cores busy, and a parent with torch's
    # default threads oversubscribes them (PPO's update then runs many times slower)
    torch.set_num_threads(1)
    venv = VecNormalize(make_vec_env(tasks, config), gamma=config.ppo.gamma)
    model = make_ppo(venv, config)
    clock = Clock(args.seconds)
    model.learn(10**9, callback=clock)
    wall = time.perf_counter() - clock.start
    venv.close()
    rate = model.num_timesteps / wall
    return {
        "envs": venv.num_envs,
        "env_steps": model.num_timesteps,
        "env_steps_per_s": rate,
        "opt_steps_per_s": rate * args.decision_interval,
        "ppo_share": clock.update_seconds / wall,
        "hours_per_1m": 1e6 / rate / 3600,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["meta-train"])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--n-envs", type=int, default=2)
    parser.add_argument("--batched", nargs="+", type=int, default=[0, 32])
    parser.add_argument("--decision-interval", type=int, default=25)
    parser.add_argument("--episode-steps", type=int, default=500)
    parser.add_argument("--n-steps", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--compile", action="store_true", help="batched variants with --compile (timed)"
    )
    args = parser.parse_args()
    rows = {b: measure(b, args) for b in args.batched}
    base = rows[args.batched[0]]["env_steps_per_s"]
    print(
        "| batched | envs | env steps | env steps/s | optimizer steps/s | PPO share | "
        "hours per 1M env steps | × first |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for b, r in rows.items():
        print(
            f"| {b} | {r['envs']} | {r['env_steps']:,} | {r['env_steps_per_s']:.1f} | "
            f"{r['opt_steps_per_s']:,.0f} | {r['ppo_share']:.1%} | {r['hours_per_1m']:.2f} | "
            f"{r['env_steps_per_s'] / base:.2f} |"
        )


if __name__ == "__main__":
    main()
