"""A learned scheduler in your own loop, on problems lrgym does not ship.

Three problems lrgym never trained on: scikit-learn's two moons, a Boolean function
(3-bit parity hidden among 10 bits: a slow start, then a take-off) and a regression
whose target is mostly noise (the loss sits near its floor from the start). Each is
trained by a small MLP under Adam and under SGD with momentum: six cells. Each cell runs
the same seeds twice, once with a constant LR (the optimizer's own) and once with the
agent setting the LR. The loop feeds the agent only the step's loss, as most users'
loops would; pass ``--validate`` to also feed validation every decision. Prints each
cell's mean final validation score (accuracy, or R² for the regression) and whether the
agent is at least as good as the constant LR (within 0.005). Run:

    python examples/your_own_loop.py [--agent default|PATH] [--seeds 3] [--validate]
"""

import argparse
import statistics

import numpy as np
import torch
from sklearn.datasets import make_moons, make_regression
from sklearn.model_selection import train_test_split
from torch import nn

import lrgym

STEPS, K, BATCH, TOLERANCE = 600, 25, 32, 0.005
NOISE = 250.0  # make_regression's noise std: R² about 0.2 at best
OPTIMIZERS = {  # the optimizer and the LR a user would start from
    "adam": (torch.optim.Adam, {"lr": 1e-3}),
    "sgd": (torch.optim.SGD, {"lr": 1e-2, "momentum": 0.9}),
}


def problem(name: str, seed: int):
    """Train/validation tensors and whether the task is a classification."""
    if name == "moons":
        x, y = make_moons(1000, noise=0.25, random_state=seed)
    elif name == "parity":  # 3-bit parity of ±1 inputs, 7 distractor bits
        bits = np.random.default_rng(seed).integers(0, 2, size=(2000, 10))
        x, y = 2.0 * bits - 1.0, bits[:, :3].sum(1) % 2
    else:  # a noisy regression: most of the target's variance is noise
        x, y = make_regression(1000, n_features=10, noise=NOISE, random_state=seed)
        y = (y - y.mean()) / y.std()
    xt, xv, yt, yv = train_test_split(x.astype(np.float32), y, test_size=0.3, random_state=seed)
    classify = name != "regression"
    target = torch.long if classify else torch.float32
    return (
        (torch.tensor(xt), torch.tensor(yt, dtype=target)),
        (torch.tensor(xv), torch.tensor(yv, dtype=target)),
        classify,
    )


def run(name: str, opt_name: str, seed: int, agent, validate: bool) -> float:
    """One training run; its final validation accuracy (or R²)."""
    (xt, yt), (xv, yv), classify = problem(name, seed)
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(xt.shape[1], 64), nn.ReLU(), nn.Linear(64, 2 if classify else 1)
    )
    opt_cls, kwargs = OPTIMIZERS[opt_name]
    optimizer = opt_cls(model.parameters(), **kwargs)
    loss_fn = nn.CrossEntropyLoss() if classify else nn.MSELoss()

    def predict(x):
        out = model(x)
        return out if classify else out.squeeze(1)

    def score() -> tuple[float, float]:
        with torch.no_grad():
            out = predict(xv)
        loss = loss_fn(out, yv).item()
        if classify:
            return loss, (out.argmax(1) == yv).float().mean().item()
        return loss, 1.0 - loss / yv.var(unbiased=False).item()  # R²

    scheduler = None
    if agent is not None:  # the one line that hands the LR to the agent
        scheduler = lrgym.PolicyScheduler(optimizer, agent, total_steps=STEPS, decision_interval=K)
    batches = torch.Generator().manual_seed(seed)
    for step in range(1, STEPS + 1):
        idx = torch.randint(len(xt), (BATCH,), generator=batches)
        loss = loss_fn(predict(xt[idx]), yt[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            if validate and step % K == 0:
                scheduler.observe_eval(*score())
            scheduler.step(loss=loss)
    return score()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", default="default", help="shipped agent name or agent folder")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--validate", action="store_true", help="feed validation every decision")
    args = parser.parse_args()
    torch.set_num_threads(1)  # tiny models: one thread is fastest
    agent = lrgym.load_agent(args.agent)
    wins, scores = 0, []
    print(f"{'problem':<12}{'optimizer':<10}{'constant':>10}{'agent':>10}  at least as good")
    for name in ("moons", "parity", "regression"):
        for opt_name in OPTIMIZERS:
            const = statistics.mean(
                run(name, opt_name, s, None, args.validate) for s in range(args.seeds)
            )
            learned = statistics.mean(
                run(name, opt_name, s, agent, args.validate) for s in range(args.seeds)
            )
            ok = learned >= const - TOLERANCE
            scores.append(learned)
            wins += ok
            print(
                f"{name:<12}{opt_name:<10}{const:>10.4f}{learned:>10.4f}  {'yes' if ok else 'no'}"
            )
    print(f"agent at least as good as constant LR in {wins} of 6 cells")
    print(f"mean agent score over the cells: {statistics.mean(scores):.4f}")


if __name__ == "__main__":
    main()
