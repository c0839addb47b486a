"""Meta-training throughput: the task mix against the named tasks alone, in wall and CPU time.

Runs the loop `lrgym train` runs (its ``make_vec_env``, ``VecNormalize`` and SB3 PPO,
without validation and checkpoints) for ``--seconds`` of wall time per variant, side by
side in one run on the same cores, one torch thread per process: first the named
meta-train tasks alone, then ``--tasks`` (e.g. ``meta-train,procedural``). Each row
gives env steps (decisions) per second of wall time and per CPU-second (this process
and its workers, user + system: the figure to read on a shared machine), the share of
episodes from procedural tasks, PPO's share of the wall time, and the time 1M decisions
would take: from the wall rate, and on 2 quiet cores (2 CPU-seconds per second) from
the CPU rate. The steady rates leave out the first ``--warmup`` seconds (worker start,
data, compiling), which are reported as a one-off cost and added to the extrapolation.

    python benchmarks/meta_train_throughput.py --tasks meta-train,procedural \
        --seconds 600 --n-envs 2 --batched 32

Compiling follows `lrgym train`'s default (``--compile``/``--no-compile`` force it).
"""

from __future__ import annotations

import argparse
import os
import time

import psutil
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecNormalize

from lrgym.agents.config import load_config
from lrgym.agents.sb3_files import make_ppo
from lrgym.agents.train import meta_train_tasks
from lrgym.agents.workers import make_vec_env
from lrgym.vector.compile_policy import compile_pays_back


class Clock(BaseCallback):
    """Times rollouts and PPO's updates, records (wall, CPU, steps, episodes) at every
    rollout's end, counts episodes by kind; stops after ``seconds``."""

    def __init__(self, seconds: float, processes: list[psutil.Process]) -> None:
        super().__init__()
        self.seconds = seconds
        self.processes = processes
        self.start = time.perf_counter()
        self.cpu0 = self.cpu()
        self.update_seconds = 0.0
        self.episodes = {"named": 0, "procedural": 0}
        self.marks: list[tuple[float, float, int]] = []
        self._rollout_end: float | None = None

    def cpu(self) -> float:
        """User + system CPU seconds of this process and its workers so far."""
        total = 0.0
        for p in self.processes:
            try:
                t = p.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += t.user + t.system
        return total

    def _on_rollout_start(self) -> None:
        if self._rollout_end is not None:
            self.update_seconds += time.perf_counter() - self._rollout_end

    def _on_rollout_end(self) -> None:
        self._rollout_end = time.perf_counter()
        wall, cpu = self._rollout_end - self.start, self.cpu() - self.cpu0
        self.marks.append((wall, cpu, self.model.num_timesteps))

    def _on_step(self) -> bool:
        for done, info in zip(self.locals["dones"], self.locals["infos"], strict=True):
            if done:
                kind = "procedural" if "Procedural" in str(info.get("task")) else "named"
                self.episodes[kind] += 1
        return time.perf_counter() - self.start < self.seconds


def measure(tasks: list[str], args: argparse.Namespace) -> dict[str, float]:
    """Train on ``tasks`` for ``args.seconds``; rates overall and after the warm-up."""
    config = load_config(
        None,
        tasks=tasks,
        n_envs=args.n_envs,
        batched=args.batched,
        compile=args.compile,
        total_timesteps=args.total_timesteps,
        ppo={"n_steps": args.n_steps, "batch_size": args.batch_size},
    )
    tasks = meta_train_tasks(config)
    # as `lrgym train` does: the workers keep the cores busy, and a parent with torch's
    # default threads oversubscribes them (PPO's update then runs many times slower)
    torch.set_num_threads(1)
    load_start = os.getloadavg()[0]
    me = psutil.Process()
    start, cpu_start = time.perf_counter(), sum(me.cpu_times()[:2])
    venv = VecNormalize(make_vec_env(tasks, config), gamma=config.ppo.gamma)
    clock = Clock(args.seconds, [me, *me.children(recursive=True)])
    clock.start, clock.cpu0 = start, cpu_start  # worker start and task building count too
    model = make_ppo(venv, config)
    model.learn(10**9, callback=clock)
    wall, cpu = time.perf_counter() - clock.start, clock.cpu() - clock.cpu0
    venv.close()
    if not clock.marks:  # no rollout ended: all of it was warm-up
        clock.marks.append((wall, cpu, model.num_timesteps))
    marks = [m for m in clock.marks if m[0] >= args.warmup] or clock.marks[-1:]
    w0, c0, s0 = marks[0]
    w1, c1, s1 = clock.marks[-1]
    steady_rate = (s1 - s0) / max(w1 - w0, 1e-9)
    steady_cpu = (c1 - c0) / max(s1 - s0, 1)  # CPU-seconds per decision
    episodes = sum(clock.episodes.values())
    return {
        "tasks": len(tasks),
        "envs": venv.num_envs,
        "compile": compile_pays_back(config.total_timesteps / len(tasks))
        if config.compile is None
        else config.compile,
        "env_steps": model.num_timesteps,
        "wall": wall,
        "cpu": cpu,
        "rate": model.num_timesteps / wall,
        "cpu_rate": model.num_timesteps / max(cpu, 1e-9),
        "steady_rate": steady_rate,
        "steady_cpu_rate": 1 / max(steady_cpu, 1e-12),
        "warmup_wall": w0,
        "warmup_cpu": c0,
        "procedural_share": clock.episodes["procedural"] / max(episodes, 1),
        "episodes": episodes,
        "ppo_share": clock.update_seconds / wall,
        "minutes_per_1m_wall": (w0 + 1e6 / max(steady_rate, 1e-9)) / 60,
        "minutes_per_1m_2cores": (c0 + 1e6 * steady_cpu) / 2 / 60,
        "load": (load_start, os.getloadavg()[0]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="meta-train,procedural", help="comma-separated")
    parser.add_argument("--named", default="meta-train", help="the baseline (comma-separated)")
    parser.add_argument("--seconds", type=float, default=600.0, help="per variant")
    parser.add_argument("--warmup", type=float, default=120.0, help="left out of the steady rates")
    parser.add_argument("--n-envs", type=int, default=2)
    parser.add_argument("--batched", type=int, default=32)
    parser.add_argument("--n-steps", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument(
        "--total-timesteps",
        type=int,
        default=1_000_000,
        help="the run being extrapolated (decides whether compiling pays back by default)",
    )
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None)
    args = parser.parse_args()
    variants = {"named alone": args.named.split(","), "mix": args.tasks.split(",")}
    rows = {}
    for name, tasks in variants.items():
        rows[name] = measure(tasks, args)
        print(f"{name}: {rows[name]}", flush=True)
    base = rows["named alone"]
    print(
        "| tasks | compile | tasks | envs | env steps | wall s | load avg (start, end) | "
        "env steps/s | per CPU-s | steady env steps/s | steady per CPU-s | × named (CPU) | "
        "procedural episodes | PPO share | warm-up wall s / CPU s | "
        "1M decisions: min (wall) | min on 2 quiet cores |"
    )
    print("| --- |" + " ---: |" * 16)
    for name, r in rows.items():
        print(
            f"| {name} ({','.join(variants[name])}) | {r['compile']} | {r['tasks']} | {r['envs']} "
            f"| {r['env_steps']:,} | {r['wall']:.0f} | {r['load'][0]:.1f}, {r['load'][1]:.1f} | "
            f"{r['rate']:.1f} | {r['cpu_rate']:.1f} | {r['steady_rate']:.1f} | "
            f"{r['steady_cpu_rate']:.1f} | {r['steady_cpu_rate'] / base['steady_cpu_rate']:.2f} "
            f"| {r['procedural_share']:.0%} of {r['episodes']:,} | {r['ppo_share']:.1%} | "
            f"{r['warmup_wall']:.0f} / {r['warmup_cpu']:.0f} | {r['minutes_per_1m_wall']:.0f} | "
            f"{r['minutes_per_1m_2cores']:.0f} |"
        )


if __name__ == "__main__":
    main()
