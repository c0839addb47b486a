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
        --ks 16 64 256 --workers 2 --seconds 20 [--eager]

The batched rows run the default settings: ``BatchedLRControlEnv``'s default compiles
where a C++ compiler is present (compiling happens in the untimed warm-up step); with
``--eager`` every K is also timed uncompiled. Each row gives wall model-steps/s and
model-steps per CPU-second of its worker processes (user + system, psutil), the figure
to read on a loaded machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import psutil
import torch
from stable_baselines3.common.vec_env import SubprocVecEnv

import lrgym
from lrgym.agents.vec_env import SubprocVecEnvGroup, VectorEnvAdapter
from lrgym.core.env import LRControlEnv
from lrgym.vector.env import BatchedLRControlEnv

INTERVAL, EPISODE = 25, 500


def _single_env(task: str, rank: int):
    def factory() -> LRControlEnv:
        torch.set_num_threads(1)
        env = LRControlEnv(task, INTERVAL, EPISODE)
        env.reset(seed=rank, options={"initial_lr": 1e-3})
        return env

    return factory


def _batched_env(task: str, k: int, compile: bool | None = None):
    def factory() -> VectorEnvAdapter:
        torch.set_num_threads(1)
        return VectorEnvAdapter(BatchedLRControlEnv(task, k, INTERVAL, EPISODE, compile=compile))

    return factory


def _cpu(processes) -> float:
    """User + system CPU seconds of worker processes so far."""
    times = [psutil.Process(p.pid).cpu_times() for p in processes]
    return sum(t.user + t.system for t in times)


def _rate(venv, seconds: float) -> tuple[float, float]:
    """Model-steps per second and per worker CPU-second of a VecEnv stepped with zero
    actions for ``seconds``."""
    venv.seed(0)
    venv.reset()
    actions = np.zeros((venv.num_envs, 1), dtype=np.float32)
    venv.step(actions)  # warm-up: first batches, lazy imports, compiling
    cpu0, steps, start = _cpu(venv.processes), 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        venv.step(actions)
        steps += venv.num_envs * INTERVAL
    wall, cpu = time.perf_counter() - start, _cpu(venv.processes) - cpu0
    return steps / wall, steps / max(cpu, 1e-9)


def plain_loop(task: str, seconds: float) -> tuple[float, float]:
    """Model-steps per second and per CPU-second of ``TorchTrainee.train`` in this
    process, one thread."""
    torch.set_num_threads(1)
    trainee = lrgym.make_task(task).build(0, 1e-3)
    trainee.train(INTERVAL)
    steps, start, cpu0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        trainee.train(INTERVAL)
        steps += INTERVAL
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
    return steps / wall, steps / max(cpu, 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["lrgym/DigitsMLP-v0", "lrgym/DigitsCNN-v0"])
    parser.add_argument("--ks", nargs="+", type=int, default=[16, 64, 256])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--eager", action="store_true", help="also time each K uncompiled (compile=False)"
    )
    args = parser.parse_args()
    print(f"load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"| task | path | model-steps/s (median of {args.repeats}) | × SubprocVecEnv | "
        "model-steps per CPU-s | × SubprocVecEnv |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    subproc = f"SubprocVecEnv ({args.workers} workers)"
    for task in args.tasks:
        rates: dict[str, list[tuple[float, float]]] = {}
        for _ in range(args.repeats):
            rates.setdefault("plain loop (1 process)", []).append(plain_loop(task, args.seconds))
            venv = SubprocVecEnv([_single_env(task, r) for r in range(args.workers)], "spawn")
            rates.setdefault(subproc, []).append(_rate(venv, args.seconds))
            venv.close()
            for k in args.ks:
                for compile in (None, False) if args.eager else (None,):
                    factories = [_batched_env(task, k, compile) for _ in range(args.workers)]
                    venv = SubprocVecEnvGroup(factories)
                    name = f"batched K={k}{', eager' if compile is False else ', default'}"
                    rates.setdefault(f"{name} ({args.workers} workers)", []).append(
                        _rate(venv, args.seconds)
                    )
                    venv.close()
        wall = {name: statistics.median(r[0] for r in v) for name, v in rates.items()}
        cpu = {name: statistics.median(r[1] for r in v) for name, v in rates.items()}
        for name in rates:
            print(
                f"| {task} | {name} | {wall[name]:,.0f} | {wall[name] / wall[subproc]:.2f} | "
                f"{cpu[name]:,.0f} | {cpu[name] / cpu[subproc]:.2f} |"
            )
    print(f"load average at end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
