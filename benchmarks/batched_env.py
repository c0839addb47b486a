"""Model-steps per second: the batched env vs the SubprocVecEnv path vs a plain loop.

Measured side by side in one run, on the same cores, with one torch thread per process:

* **plain loop**: one process trains one run after another with ``TorchTrainee.train``
  (no env, no decisions): what one core does today, per run;
* **SubprocVecEnv path**: what ``lrgym train`` ran before batching: ``--workers``
  processes, each an ``LRControlEnv`` stepped through SB3's ``SubprocVecEnv``;
* **batched**: ``--workers`` processes, each a ``BatchedLRControlEnv`` of K runs, through
  :class:`lrgym.agents.vec_env.SubprocVecEnvGroup` (what ``lrgym train --batched K`` runs).

A model-step is one optimizer step of one run. Every env step of the two env paths is
one decision (``decision_interval`` model-steps per run), with actions 0 (hold the LR).
Prints the medians over ``--repeats`` and the ratios to the SubprocVecEnv path.

    python benchmarks/batched_env.py --tasks lrgym/DigitsMLP-v0 lrgym/DigitsCNN-v0 \\
        --ks 16 64 256 --workers 2 --seconds 20 [--compile]

With ``--compile`` every K is also timed with ``BatchedLRControlEnv(compile=True)``
(``lrgym train --batched K --compile``); compiling happens in the untimed warm-up step.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from stable_baselines3.common.vec_env import SubprocVecEnv

import lrgym
from lrgym.agents.vec_env import SubprocVecEnvGroup, VectorEnvAdapter
from lrgym.env import LRControlEnv
from lrgym.vector.env import BatchedLRControlEnv

INTERVAL, EPISODE = 25, 500


def _single_env(task: str, rank: int):
    def factory() -> LRControlEnv:
        torch.set_num_threads(1)
        env = LRControlEnv(task, INTERVAL, EPISODE)
        env.reset(seed=rank, options={"initial_lr": 1e-3})
        return env

    return factory


def _batched_env(task: str, k: int, compile: bool = False):
    def factory() -> VectorEnvAdapter:
        torch.set_num_threads(1)
        return VectorEnvAdapter(BatchedLRControlEnv(task, k, INTERVAL, EPISODE, compile=compile))

    return factory


def _rate(venv, seconds: float) -> float:
    """Model-steps per second of a VecEnv stepped with zero actions for ``seconds``."""
    venv.seed(0)
    venv.reset()
    actions = np.zeros((venv.num_envs, 1), dtype=np.float32)
    venv.step(actions)  # warm-up: first batches, lazy imports, compiling
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        venv.step(actions)
        steps += venv.num_envs * INTERVAL
    return steps / (time.perf_counter() - start)


def plain_loop(task: str, seconds: float) -> float:
    """Model-steps per second of ``TorchTrainee.train`` in this process, one thread."""
    torch.set_num_threads(1)
    trainee = lrgym.make_task(task).build(0, 1e-3)
    trainee.train(INTERVAL)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        trainee.train(INTERVAL)
        steps += INTERVAL
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["lrgym/DigitsMLP-v0", "lrgym/DigitsCNN-v0"])
    parser.add_argument("--ks", nargs="+", type=int, default=[16, 64, 256])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--compile", action="store_true", help="also time each K with torch.compile'd steps"
    )
    args = parser.parse_args()
    print(f"| task | path | model-steps/s (median of {args.repeats}) | × SubprocVecEnv |")
    print("| --- | --- | ---: | ---: |")
    for task in args.tasks:
        rates: dict[str, list[float]] = {}
        for _ in range(args.repeats):
            rates.setdefault("plain loop (1 process)", []).append(plain_loop(task, args.seconds))
            venv = SubprocVecEnv([_single_env(task, r) for r in range(args.workers)], "spawn")
            rates.setdefault(f"SubprocVecEnv ({args.workers} workers)", []).append(
                _rate(venv, args.seconds)
            )
            venv.close()
            for k in args.ks:
                for compile in (False, True) if args.compile else (False,):
                    factories = [_batched_env(task, k, compile) for _ in range(args.workers)]
                    venv = SubprocVecEnvGroup(factories)
                    name = f"batched K={k}{', compiled' if compile else ''}"
                    rates.setdefault(f"{name} ({args.workers} workers)", []).append(
                        _rate(venv, args.seconds)
                    )
                    venv.close()
        medians = {name: statistics.median(v) for name, v in rates.items()}
        base = medians[f"SubprocVecEnv ({args.workers} workers)"]
        for name, value in medians.items():
            print(f"| {task} | {name} | {value:,.0f} | {value / base:.2f} |")


if __name__ == "__main__":
    main()
