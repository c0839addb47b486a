"""Env overhead: the same optimizer steps by a plain loop and through ``env.step``.

Both sides train the same run (same run seed, so the same model, data, optimizer and
batch order) for the same steps, switch to train mode once per chunk and evaluate
validation loss and accuracy every ``decision_interval`` steps, as a user's loop would;
the env additionally computes signals (gradient norm, update size), macro-F1,
observations and rewards. One torch thread. Runs alternate A/B ``--repeats`` times;
prints median throughputs and their ratio.

    python benchmarks/env_overhead.py [--task lrgym/DigitsMLP-v0] [--repeats 7]

Target: ratio >= 0.98 (env-only work <= 2%) on lrgym/DigitsMLP-v0 with the default k.
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
    """A hand-written loop over the same run: the task's model, optimizer, data and batch
    order for ``seed``; ``model.train()`` once per chunk and validation loss and accuracy
    every ``decision_interval`` steps, as the env does."""
    task = lrgym.make_task(task_id)
    info = task.info
    trainee = task.build(seed, info.default_lr)
    model, opt, loss_fn = trainee.model, trainee.optimizer, trainee.loss_fn
    x, y = trainee.tensors["train"]
    xv, yv = trainee.tensors["val"]
    gen = trainee.batch_generator  # the run's own batch order
    bs, order, cursor = trainee.batch_size, torch.empty(0, dtype=torch.long), 0
    start = time.perf_counter()
    for _ in range(info.total_steps // info.decision_interval):
        model.train()
        for _ in range(info.decision_interval):
            if cursor + bs > len(order):
                order, cursor = torch.randperm(len(x), generator=gen), 0
            idx = order[cursor : cursor + bs]
            cursor += bs
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.item()  # a user's loop logs the loss too
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            out = model(xv)
            loss_fn(out, yv).item()
            if yv.dtype == torch.long:
                (out.argmax(dim=1) == yv).float().mean().item()
    return info.total_steps // info.decision_interval * info.decision_interval, (
        time.perf_counter() - start
    )


def env_loop(task_id: str, seed: int) -> tuple[int, float]:
    """The same run (same run seed) driven through the Gymnasium env, holding the LR."""
    env = gymnasium.make(task_id).unwrapped
    env.reset(options={"initial_lr": env.task.info.default_lr, "run_seed": seed})
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
    torch.set_num_threads(1)  # one thread per process, as in every lrgym worker
    plain_loop(args.task, 0), env_loop(args.task, 0)  # warm-up: imports, allocator, caches
    plain, env = [], []
    for r in range(args.repeats):
        steps, sec = plain_loop(args.task, r)
        plain.append(steps / sec)
        steps, sec = env_loop(args.task, r)
        env.append(steps / sec)
    p, e = statistics.median(plain), statistics.median(env)
    # each pair ran back to back on the same run seed: the median of the pairs' ratios is
    # less exposed to a busy machine's drift than the ratio of the two medians
    pairs = sorted(ev / pv for ev, pv in zip(env, plain, strict=True))
    q1, q3 = pairs[len(pairs) // 4], pairs[(3 * len(pairs)) // 4]
    print(f"task {args.task}, torch threads {torch.get_num_threads()}, repeats {args.repeats}")
    print(f"plain loop : median {p:8.0f} steps/s  (runs: {', '.join(f'{v:.0f}' for v in plain)})")
    print(f"env.step   : median {e:8.0f} steps/s  (runs: {', '.join(f'{v:.0f}' for v in env)})")
    print(f"throughput ratio env/plain = {e / p:.3f}  (overhead {100 * (1 - e / p):.1f}%)")
    pair = statistics.median(pairs)
    print(
        f"paired ratio env/plain = {pair:.3f} (quartiles {q1:.3f}-{q3:.3f}; "
        f"overhead {100 * (1 - pair):.1f}%)"
    )


if __name__ == "__main__":
    main()
