"""How to stack K runs' convolutions: candidate forward+backward passes side by side.

Times one training step's gradients (forward, mean cross-entropy per run, backward) of
K DigitsCNN runs (conv 1→16, conv 16→32, 2×2 max pool, linear; batch 32 per run; 8×8
images) in one process with one torch thread, for each way of stacking the runs:

* ``vmap``: ``vmap(grad_and_value(functional_call(...)))`` (the engine before; torch's
  batching rule turns a batched conv into a grouped one internally);
* ``grouped``: one ``conv2d(groups=K)`` per layer on (B, K*C, H, W), autograd on the
  sum of the runs' losses (each run's parameters get only its own loss's gradient);
* ``grouped-cl``: the same in channels-last memory format;
* ``unfold-bmm``: ``F.unfold`` (im2col), then one ``bmm`` per layer over the K runs;
* ``shift-bmm``: im2col by the kernel's shifted slices of a padded channels-last
  tensor, then ``bmm`` (no NCHW round trips);
* ``… compiled``: the same under ``torch.compile`` (with ``--compile``).

Prints a table of milliseconds per step and model-steps per second (K / step time).
The candidates' gradients are checked against each other before timing.

    python benchmarks/batched_conv.py --ks 64 256 --seconds 5 [--compile]

With ``--engine TASK ...`` it times :class:`lrgym.vector.BatchedRuns` itself instead
(train 25 steps and validate, K runs), on its grouped path against its former vmap
path, alternating the two ``--repeats`` times:

    python benchmarks/batched_conv.py --engine lrgym/DigitsCNN-v0 lrgym/ProceduralCNN-7-v0
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad_and_value, vmap

from lrgym.tasks.models import DigitsCNN

B, CLASSES = 32, 10
Params = dict[str, torch.Tensor]


def _stacked_params(k: int, seed: int = 0) -> Params:
    torch.manual_seed(seed)
    models = [DigitsCNN(CLASSES) for _ in range(k)]
    return {
        n: torch.stack([dict(m.named_parameters())[n].detach() for m in models])
        for n, _ in models[0].named_parameters()
    }


def _loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-run mean cross-entropy, summed over runs; out (K, B, classes), y (K, B)."""
    return F.cross_entropy(out.permute(0, 2, 1), y, reduction="none").mean(1).sum()


def vmap_step() -> Callable[[Params, torch.Tensor, torch.Tensor], tuple[Params, torch.Tensor]]:
    template = DigitsCNN(CLASSES).to("meta")

    def loss_of(params: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = functional_call(template, params, (x,))
        return F.cross_entropy(out.t().unsqueeze(0), y.unsqueeze(0))

    return vmap(grad_and_value(loss_of))


def _autograd(forward: Callable[[Params, torch.Tensor], torch.Tensor]):
    def step(params: Params, x: torch.Tensor, y: torch.Tensor):
        leaves = {n: p.detach().requires_grad_() for n, p in params.items()}
        loss = _loss(forward(leaves, x), y)
        grads = torch.autograd.grad(loss, list(leaves.values()))
        return dict(zip(leaves, grads, strict=True)), loss

    return step


def grouped_forward(channels_last: bool) -> Callable[[Params, torch.Tensor], torch.Tensor]:
    fmt = torch.channels_last if channels_last else torch.contiguous_format

    def conv(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor, k: int) -> torch.Tensor:
        weight = w.reshape(-1, *w.shape[2:]).contiguous(memory_format=fmt)
        return F.conv2d(h, weight, b.reshape(-1), padding=1, groups=k)

    def forward(p: Params, x: torch.Tensor) -> torch.Tensor:
        k, n = x.shape[:2]
        h = x.reshape(k, n, 1, 8, 8).transpose(0, 1).reshape(n, k, 8, 8)
        h = h.contiguous(memory_format=fmt)
        h = F.relu(conv(h, p["net.1.weight"], p["net.1.bias"], k))
        h = F.relu(conv(h, p["net.3.weight"], p["net.3.bias"], k))
        h = F.max_pool2d(h, 2)  # (n, k*32, 4, 4)
        h = h.reshape(n, k, 32 * 16).transpose(0, 1)  # (k, n, 512) in (c, y, x) order
        return torch.baddbmm(p["net.7.bias"].unsqueeze(1), h, p["net.7.weight"].transpose(1, 2))

    return forward


def unfold_forward(p: Params, x: torch.Tensor) -> torch.Tensor:
    k, n = x.shape[:2]

    def conv(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        # h (k*n, c, 8, 8) -> columns (k, n*64, c*9) @ (k, c*9, out)
        cols = F.unfold(h, 3, padding=1)  # (k*n, c*9, 64)
        cols = cols.reshape(k, n, cols.shape[1], 64).transpose(2, 3).reshape(k, n * 64, -1)
        out = torch.baddbmm(b.unsqueeze(1), cols, w.flatten(2).transpose(1, 2))
        return out.reshape(k * n, 8, 8, -1).permute(0, 3, 1, 2)

    h = F.relu(conv(x.reshape(k * n, 1, 8, 8), p["net.1.weight"], p["net.1.bias"]))
    h = F.relu(conv(h, p["net.3.weight"], p["net.3.bias"]))
    h = F.max_pool2d(h, 2).reshape(k, n, 32 * 16)
    return torch.baddbmm(p["net.7.bias"].unsqueeze(1), h, p["net.7.weight"].transpose(1, 2))


def shift_forward(p: Params, x: torch.Tensor) -> torch.Tensor:
    k, n = x.shape[:2]

    def conv(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        # h (k, n, 8, 8, c) channels-last; columns in (dy, dx, c) order
        c = h.shape[-1]
        padded = F.pad(h, (0, 0, 1, 1, 1, 1))
        cols = torch.cat(
            [padded[:, :, dy : dy + 8, dx : dx + 8] for dy in range(3) for dx in range(3)], -1
        ).reshape(k, n * 64, 9 * c)
        weight = w.permute(0, 3, 4, 2, 1).reshape(k, 9 * c, -1)  # (k, dy, dx, c_in, out)
        return torch.baddbmm(b.unsqueeze(1), cols, weight).reshape(k, n, 8, 8, -1)

    h = F.relu(conv(x.reshape(k, n, 8, 8, 1), p["net.1.weight"], p["net.1.bias"]))
    h = F.relu(conv(h, p["net.3.weight"], p["net.3.bias"]))
    h = h.reshape(k, n, 4, 2, 4, 2, 32).amax((3, 5))  # 2x2 max pool
    h = h.permute(0, 1, 4, 2, 3).reshape(k, n, 32 * 16)  # (c, y, x) order, as Flatten
    return torch.baddbmm(p["net.7.bias"].unsqueeze(1), h, p["net.7.weight"].transpose(1, 2))


def candidates(compile: bool) -> dict[str, Callable]:
    out = {
        "vmap": vmap_step(),
        "grouped": _autograd(grouped_forward(False)),
        "grouped-cl": _autograd(grouped_forward(True)),
        "unfold-bmm": _autograd(unfold_forward),
        "shift-bmm": _autograd(shift_forward),
    }
    if compile:
        out.update({f"{name} compiled": torch.compile(fn) for name, fn in list(out.items())})
    return out


def engine_rate(task_id: str, k: int, path: str, seconds: float) -> float:
    """Model-steps per second of ``BatchedRuns`` on ``path`` ("grouped" or "vmap")."""
    from unittest import mock

    import lrgym
    from lrgym.vector import BatchedRuns, batched_runs

    task = lrgym.make_task(task_id)
    with mock.patch.object(batched_runs, "has_convolutions", lambda m: path == "grouped"):
        runs = BatchedRuns(task, k)
        for slot in range(k):
            runs.load(slot, slot, task.info.default_lr)
    assert runs.path == path
    runs.train(25)
    runs.evaluate()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        runs.train(25)
        runs.evaluate()
        steps += 25 * k
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", nargs="+", type=int, default=[64, 256])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--engine", nargs="+", default=[], metavar="TASK")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.engine:
        print("| task | K | vmap model-steps/s | grouped model-steps/s | × vmap |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for task_id in args.engine:
            for k in args.ks:
                rates: dict[str, list[float]] = {"vmap": [], "grouped": []}
                for _ in range(args.repeats):
                    for path in rates:
                        rates[path].append(engine_rate(task_id, k, path, args.seconds))
                v, g = (statistics.median(rates[p]) for p in ("vmap", "grouped"))
                print(f"| {task_id} | {k} | {v:,.0f} | {g:,.0f} | {g / v:.2f} |")
        return
    print("| K | candidate | ms per step | model-steps/s | × vmap |")
    print("| ---: | --- | ---: | ---: | ---: |")
    for k in args.ks:
        params = _stacked_params(k)
        gen = torch.Generator().manual_seed(1)
        x = torch.randn(k, B, 64, generator=gen)
        y = torch.randint(0, CLASSES, (k, B), generator=gen)
        steps = candidates(args.compile)
        ref_grads, ref_loss = steps["vmap"](params, x, y)
        times = {}
        for name, step in steps.items():
            grads, loss = step(params, x, y)  # warm-up (and compiling)
            assert torch.allclose(loss.sum(), ref_loss.sum(), rtol=1e-4), name
            for key, g in ref_grads.items():
                torch.testing.assert_close(grads[key], g, rtol=1e-3, atol=1e-5, msg=name)
            n, start = 0, time.perf_counter()
            while time.perf_counter() - start < args.seconds:
                step(params, x, y)
                n += 1
            times[name] = (time.perf_counter() - start) / n
        for name, t in times.items():
            print(f"| {k} | {name} | {t * 1e3:.1f} | {k / t:,.0f} | {times['vmap'] / t:.2f} |")


if __name__ == "__main__":
    main()
