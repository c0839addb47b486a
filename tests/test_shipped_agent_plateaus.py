"""Issue 24, item 5: the shipped agent in a user's loop that never calls ``observe_eval``.

Both cases run the real shipped weights (``trained_agents/default``) through
:class:`lrgym.PolicyScheduler`, as a user's loop runs them, feeding only step losses:

* **a plateau**: a regression whose target is pure noise, started at its loss floor
  (weights zero, bias at the target mean). The loss cannot fall, so the LR must not rise
  more than 8× (the agent shipped before 2026-12 raised Adam's LR 21× here);
* **a loss still falling**: an ill-conditioned linear regression (feature scales 0.01…1)
  under SGD, where a constant LR's loss keeps falling for the whole run. While it does,
  the agent must not cut the LR more than 8× below its base schedule, and it must end
  at least as low as the constant LR (the agent shipped before cut the LR 60× within the
  first 30% of the run and ended higher).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import lrgym

K, BATCH = 25, 32


def train(x, y, optimizer, steps: int, agent: str | None, at_floor: bool = False):
    """Per-step LRs and losses of one user-style loop (``agent=None``: constant LR)."""
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = nn.Linear(x.shape[1], 1)
    if at_floor:
        with torch.no_grad():
            model.weight.zero_()
            model.bias.fill_(float(y.mean()))
    opt = optimizer(model.parameters())
    scheduler = agent and lrgym.PolicyScheduler(opt, agent, total_steps=steps, decision_interval=K)
    lrs, losses = [], []
    for _ in range(steps):
        idx = torch.randint(0, len(x), (BATCH,), generator=g)
        loss = nn.functional.mse_loss(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if scheduler:
            scheduler.step(loss=loss)
        lrs.append(opt.param_groups[0]["lr"])
        losses.append(loss.item())
    windows = [sum(losses[t : t + K]) / K for t in range(0, steps, K)]
    return lrs, windows


OPTIMIZERS = {
    "adam": (lambda p: torch.optim.Adam(p, lr=1e-3), 1e-3),
    "sgd": (lambda p: torch.optim.SGD(p, lr=1e-2, momentum=0.9), 1e-2),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_no_runaway_on_a_plateau_without_validation(name):
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(1024, 10, generator=g), torch.randn(1024, 1, generator=g)
    optimizer, lr0 = OPTIMIZERS[name]
    lrs, windows = train(x, y, optimizer, 600, "default", at_floor=True)
    assert abs(math.log(windows[-1] / windows[0])) < 0.1  # a plateau indeed
    assert max(lrs) <= 8 * lr0 * (1 + 1e-9)


def test_no_collapse_while_the_loss_still_falls():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2048, 20, generator=g) * torch.logspace(-2, 0, 20)
    y = x @ torch.randn(20, 1, generator=g)
    steps, lr0 = 1500, 1e-2
    sgd = lambda p: torch.optim.SGD(p, lr=lr0)  # noqa: E731
    _, constant = train(x, y, sgd, steps, None)
    lrs, learned = train(x, y, sgd, steps, "default")
    action = lrgym.load_agent("default").action_map
    falling = [d for d in range(1, len(constant)) if constant[d] < 0.99 * constant[d - 1]]
    assert len(falling) > len(constant) // 2  # constant LR's loss falls most of the run
    for d in falling:
        t = (d + 1) * K - 1  # the last step of window d: the LR decided after it
        assert lrs[t] >= lr0 * 2 ** action.base_log2(t / steps) / 8 * (1 - 1e-9)
    assert learned[-1] <= constant[-1]
