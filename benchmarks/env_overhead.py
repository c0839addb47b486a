"""Env overhead: the same optimizer steps by a plain loop and through ``env.step``.

Both sides train the same task (same seed, model, data, optimizer, batch size and step
count) and evaluate on the validation set every ``decision_interval`` steps, as a user's
loop would. The env additionally computes signals, observations and rewards. Runs
alternate A/B ``--repeats`` times; prints median throughputs and their ratio.

    python benchmarks/env_overhead.py [--task lrgym/DigitsMLP-v0] [--repeats 7]

Target: ratio >= 0.95 (env overhead <= 5%) on lrgym/DigitsMLP-v0 with the default k.
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium
import numpy as np
import torch

import lrgym


def plain_loop(task_id: str, seed: int) -> tuple[int, float]:
    """A hand-written training loop over the task's own model, optimizer and data."""
    task = lrgym.make_task(task_id)
    info = task.info
    trainee = task.build(seed, info.default_lr)  # only to get the same model/data/optimizer
    model, opt, loss_fn = trainee.model, trainee.optimizer, trainee.loss_fn
    x, y = trainee._data["train"]
    xv, yv = trainee._data["val"]
    gen = torch.Generator().manual_seed(seed)
    bs, order, cursor = trainee.batch_size, torch.randperm(len(x), generator=gen), 0
    start = time.perf_counter()
    for step in range(1, info.total_steps + 1):
        if cursor + bs > len(order):
            order, cursor = torch.randperm(len(x), generator=gen), 0
        idx = order[cursor : cursor + bs]
        cursor += bs
        model.train()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
        if step % info.decision_interval == 0:
            model.eval()
            with torch.no_grad():
                loss_fn(model(xv), yv).item()
    return info.total_steps, time.perf_counter() - start


def env_loop(task_id: str, seed: int) -> tuple[int, float]:
    """The same run driven through the Gymnasium env with a neutral action."""
    env = gymnasium.make(task_id).unwrapped
    env.reset(seed=seed, options={"initial_lr": env.task.info.default_lr})
    action = np.zeros(1, dtype=np.float32)
    start = time.perf_counter()
    done = False
    while not done:
        _, _, done, _, info = env.step(action)
    return info["steps"], time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="lrgym/DigitsMLP-v0")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    plain_loop(args.task, 0), env_loop(args.task, 0)  # warm-up: imports, allocator, caches
    plain, env = [], []
    for r in range(args.repeats):
        steps, sec = plain_loop(args.task, r)
        plain.append(steps / sec)
        steps, sec = env_loop(args.task, r)
        env.append(steps / sec)
    p, e = statistics.median(plain), statistics.median(env)
    print(f"task {args.task}, torch threads {torch.get_num_threads()}, repeats {args.repeats}")
    print(f"plain loop : median {p:8.0f} steps/s  (runs: {', '.join(f'{v:.0f}' for v in plain)})")
    print(f"env.step   : median {e:8.0f} steps/s  (runs: {', '.join(f'{v:.0f}' for v in env)})")
    print(f"throughput ratio env/plain = {e / p:.3f}  (overhead {100 * (1 - e / p):.1f}%)")


if __name__ == "__main__":
    main()
