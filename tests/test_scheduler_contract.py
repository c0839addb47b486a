"""torch's scheduler contract, checked the way torch's own scheduler tests check it.

Every feedback scheduler (the learned policy, with and without waiting for validation,
the feedback rule, hypergradient descent on Adam and on plain SGD, the LR predictor) runs
one small classification run of 600 optimizer steps, validated every 25 steps, and must:

* **resume identically**: saved (model, optimizer, scheduler) through ``torch.save`` and
  ``torch.load(weights_only=True)`` at a step, loaded into a fresh model, optimizer and
  scheduler, the run takes exactly the LRs of the uninterrupted run, and ends with the
  same scheduler state (``test/optim/test_lrscheduler.py`` compares LR sequences and
  state-dict round trips through a ``BytesIO`` in the same way);
* **warn like torch** when stepped before ``optimizer.step()``, with torch's own message;
* **keep a tensor LR a tensor**, changed in place, with ``get_last_lr`` returning copies
  as torch's ``CosineAnnealingLR`` does;
* **refuse** a state dict it would not have written, naming the value, unchanged after.

The learned policy is also resumed with the opt-in action maps (a cosine base with the
harm guard; an early range).
"""

from __future__ import annotations

import io
import math
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from synthetic_agents import linear_tanh, synthetic_card
from torch import nn

from lrgym.controllers.feedback_rule import FeedbackRule, FeedbackRuleLR
from lrgym.controllers.hypergradient import HypergradientLR
from lrgym.controllers.lr_predictor import PREDICTOR_FEATURES, LRPredictor, PredictorLR
from lrgym.controllers.lr_predictor import make_network as predictor_network
from lrgym.core.feedback_scheduler import FeedbackLRScheduler
from lrgym.core.signals import FEATURES
from lrgym.deploy.agent import Agent
from lrgym.deploy.scheduler import PolicyScheduler

TOTAL, EVAL_EVERY, BATCH = 600, 25, 32
GEN = torch.Generator().manual_seed(0)
X = torch.randn(640, 8, generator=GEN)
Y = (X @ torch.randn(8, 3, generator=GEN) + 0.5 * torch.randn(640, 3, generator=GEN)).argmax(1)
X_TRAIN, Y_TRAIN, X_VAL, Y_VAL = X[:512], Y[:512], X[512:], Y[512:]


def sensitive_agent(**action: Any) -> Agent:
    """``tanh(obs @ w)`` with every weight non-zero: every feature moves the LR.

    ``action``: settings of the agent's action map beyond the default ones.
    """
    w = 0.3 * torch.randn(len(FEATURES), 1, generator=torch.Generator().manual_seed(0)).numpy()
    return Agent(Path("synthetic"), synthetic_card(**action), linear_tanh(w))


def random_predictor() -> LRPredictor:
    """An untrained predictor network (seeded): its output depends on every feature."""
    with torch.random.fork_rng():
        torch.manual_seed(3)
        net = predictor_network()
    n = len(PREDICTOR_FEATURES)
    return LRPredictor(net, np.zeros(n, np.float32), np.ones(n, np.float32))


@dataclass(frozen=True)
class Kind:
    """One scheduler under test: its optimizer and how to build it on that optimizer."""

    optimizer: Callable[..., torch.optim.Optimizer]
    lr: float
    scheduler: Callable[[torch.optim.Optimizer], FeedbackLRScheduler]


KINDS: dict[str, Kind] = {
    "policy": Kind(
        lambda ps, **kw: torch.optim.SGD(ps, momentum=0.9, **kw),
        0.05,
        lambda opt: PolicyScheduler(opt, sensitive_agent(), total_steps=TOTAL),
    ),
    "policy-eval-feedback": Kind(
        lambda ps, **kw: torch.optim.AdamW(ps, **kw),
        0.01,
        lambda opt: PolicyScheduler(opt, sensitive_agent(), total_steps=TOTAL, eval_feedback=True),
    ),
    "feedback-rule": Kind(
        lambda ps, **kw: torch.optim.SGD(ps, momentum=0.9, **kw),
        0.05,
        lambda opt: FeedbackRuleLR(opt, FeedbackRule(loss_tolerance=0.15, grad_threshold=0.3)),
    ),
    "hypergradient-adam": Kind(
        lambda ps, **kw: torch.optim.Adam(ps, **kw),
        0.01,
        lambda opt: HypergradientLR(opt, hyper_lr=1e-5),
    ),
    "hypergradient-sgd": Kind(
        lambda ps, **kw: torch.optim.SGD(ps, **kw),
        0.05,
        lambda opt: HypergradientLR(opt, hyper_lr=1e-3),
    ),
    "predictor": Kind(
        lambda ps, **kw: torch.optim.SGD(ps, momentum=0.9, **kw),
        0.05,
        lambda opt: PredictorLR(opt, random_predictor(), total_steps=TOTAL),
    ),
}
SCHEDULERS = list(KINDS)
"""One of each scheduler; the action-map variants below are checked for resume only."""

KINDS["policy-cosine-guard"] = Kind(
    lambda ps, **kw: torch.optim.SGD(ps, momentum=0.9, **kw),
    0.05,
    lambda opt: PolicyScheduler(opt, sensitive_agent(base="cosine", guard=True), total_steps=TOTAL),
)
KINDS["policy-early-range"] = Kind(
    lambda ps, **kw: torch.optim.SGD(ps, momentum=0.9, **kw),
    0.05,
    lambda opt: PolicyScheduler(
        opt, sensitive_agent(early_log2_step=3.0, early_decisions=20), total_steps=TOTAL
    ),
)
RESUME_KINDS = [*SCHEDULERS, "policy-cosine-guard", "policy-early-range"]


class Run:
    """A fresh model, optimizer and scheduler of one kind (the model seeded the same)."""

    def __init__(self, kind: str, fresh: bool = True, tensor_lr: bool = False) -> None:
        spec = KINDS[kind]
        with torch.random.fork_rng():
            torch.manual_seed(0)
            self.model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3))
        lr = torch.tensor(spec.lr) if tensor_lr else spec.lr
        extra = {"foreach": False} if tensor_lr else {}  # torch: tensor lr needs no foreach
        self.opt = spec.optimizer(self.model.parameters(), lr=lr, **extra)
        self.sched = spec.scheduler(self.opt)
        if fresh:
            self.evaluate()  # once before training (the eval-feedback policy decides on it)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(self.model(x), y)

    def train_step(self, t: int) -> float:
        """Optimizer step ``t`` (1-based; its batch depends on ``t`` only); the LR it used."""
        i = (t * BATCH) % (len(X_TRAIN) - BATCH)
        self.opt.zero_grad()
        loss = self.loss(X_TRAIN[i : i + BATCH], Y_TRAIN[i : i + BATCH])
        loss.backward()
        used = float(self.opt.param_groups[0]["lr"])
        self.opt.step()
        self.sched.step(loss=loss)
        return used

    @torch.no_grad()
    def evaluate(self) -> None:
        logits = self.model(X_VAL)
        accuracy = (logits.argmax(1) == Y_VAL).float().mean().item()
        self.sched.observe_eval(nn.functional.cross_entropy(logits, Y_VAL).item(), accuracy)

    def train(self, first: int, last: int, eval_at_last: bool = True) -> list[float]:
        """Steps ``first .. last``, validating every ``EVAL_EVERY`` steps; LRs used."""
        lrs = []
        for t in range(first, last + 1):
            lrs.append(self.train_step(t))
            if t % EVAL_EVERY == 0 and (t < last or eval_at_last):
                self.evaluate()
        return lrs

    def save(self) -> dict[str, Any]:
        """Model, optimizer and scheduler through torch.save and a weights_only load."""
        return roundtrip(
            {
                "model": self.model.state_dict(),
                "opt": self.opt.state_dict(),
                "sched": self.sched.state_dict(),
            }
        )

    def load(self, saved: dict[str, Any]) -> None:
        self.model.load_state_dict(saved["model"])
        self.opt.load_state_dict(saved["opt"])
        self.sched.load_state_dict(saved["sched"])


def roundtrip(state: Any) -> Any:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def same(a: Any, b: Any) -> bool:
    """Equal data; tensors equal element by element, with the same dtype."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return type(a) is type(b) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


_REFERENCES: dict[str, tuple[list[float], dict[str, Any]]] = {}


def reference(kind: str) -> tuple[list[float], dict[str, Any]]:
    """LRs of the uninterrupted run and its scheduler's final state (computed once)."""
    if kind not in _REFERENCES:
        run = Run(kind)
        lrs = run.train(1, TOTAL)
        _REFERENCES[kind] = (lrs, run.sched.state_dict())
    return _REFERENCES[kind]


CUTS = {
    "first-step": (1, True),
    "decision": (300, True),
    "decision-before-eval": (300, False),  # saved between the step and its validation
    "mid-window": (310, True),
}


@pytest.mark.parametrize("cut", list(CUTS))
@pytest.mark.parametrize("kind", RESUME_KINDS)
def test_resume_is_identical(kind, cut):
    step, evaluated = CUTS[cut]
    expected, final_state = reference(kind)
    assert len(set(expected[step:])) > 2, "the LR never moved after the cut: vacuous test"

    interrupted = Run(kind)
    lrs = interrupted.train(1, step, eval_at_last=evaluated)
    saved = interrupted.save()
    del interrupted

    resumed = Run(kind, fresh=False)
    resumed.load(saved)
    assert same(resumed.sched.state_dict(), saved["sched"])
    if not evaluated:
        resumed.evaluate()
    lrs += resumed.train(step + 1, TOTAL)

    assert lrs == expected
    assert same(resumed.sched.state_dict(), final_state)


@pytest.mark.parametrize("kind", SCHEDULERS)
def test_state_dict_round_trips_weights_only_into_a_fresh_scheduler(kind):
    run = Run(kind)
    run.train(1, 37)  # mid-window, after a validation
    state = run.sched.state_dict()
    loaded = roundtrip(state)
    assert same(loaded, state)
    fresh = Run(kind, fresh=False)
    fresh.sched.load_state_dict(loaded)
    assert same(fresh.sched.state_dict(), state)
    assert fresh.sched.get_last_lr() == run.sched.get_last_lr()


def torch_step_order_warning() -> str:
    """The warning torch's own scheduler gives when stepped before the optimizer."""
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sched.step()
    (warning,) = caught
    return str(warning.message)


@pytest.mark.parametrize("kind", SCHEDULERS)
def test_step_before_optimizer_step_warns_with_torchs_message(kind):
    message = torch_step_order_warning()
    assert message.startswith("Detected call of `lr_scheduler.step()` before `optimizer.step()`")
    run = Run(kind)
    with pytest.warns(UserWarning, match=f"^{re.escape(message)}$"):
        run.sched.step(loss=1.0)


@pytest.mark.parametrize("kind", SCHEDULERS)
def test_no_warning_in_the_right_order(kind):
    run = Run(kind)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run.train(1, 30)


def test_torch_keeps_a_tensor_lr_a_tensor():
    """What "like torch" means below: CosineAnnealingLR on a tensor LR."""
    lr = torch.tensor(0.1)
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr, foreach=False)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    opt.step()
    sched.step()
    assert opt.param_groups[0]["lr"] is lr and lr.item() < 0.1
    (last,) = sched.get_last_lr()
    assert isinstance(last, torch.Tensor) and last is not lr and torch.equal(last, lr)


@pytest.mark.parametrize("kind", SCHEDULERS)
def test_tensor_lr_stays_the_same_tensor(kind):
    run = Run(kind, tensor_lr=True)
    lr = run.opt.param_groups[0]["lr"]
    before = lr.item()
    used = run.train(1, 100)
    assert run.opt.param_groups[0]["lr"] is lr  # changed in place, never replaced
    assert len(set(used)) > 2 and lr.item() != before
    (last,) = run.sched.get_last_lr()
    assert isinstance(last, torch.Tensor) and last is not lr and torch.equal(last, lr)
    saved = run.save()  # a tensor LR's checkpoint reloads too
    fresh = Run(kind, fresh=False, tensor_lr=True)
    fresh.load(saved)
    assert isinstance(fresh.sched.get_last_lr()[0], torch.Tensor)
    assert fresh.train(101, 130) == run.train(101, 130)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change to a state dict: the value at a dotted ``path`` (a missing key: delete)."""

    def change(state: dict[str, Any]) -> None:
        *parents, key = path.split(".")
        for parent in parents:
            state = state[parent]
        if value is KeyError:
            del state[key]
        else:
            state[key] = value

    return change


COMMON_BAD = {
    "format": (_set("format", 99), "newer than this lrgym"),
    "last_lr": (_set("last_lr", [-0.1]), "last_lr"),
    "last_lr-tensor": (_set("last_lr", [torch.zeros(2)]), "last_lr"),
    "step_count": (_set("step_count", -3), "step_count"),
    "missing": (_set("last_epoch", KeyError), "missing"),
    "fed_loss": (_set("fed_loss", "abc"), "fed_loss"),
}
KIND_BAD = {
    "policy": {
        "updates-shape": (_set("updates.start", torch.zeros(5)), "another model"),
        "updates-norm": (_set("updates.prev_norm", -1.0), "prev_norm"),
        "losses": (_set("losses", ["x"]), "losses"),
        "warned": (_set("warned_no_loss", "yes"), "warned_no_loss"),
        "path": (_set("path.prev_action", 3.0), "prev_action"),
    },
    "feedback-rule": {
        "fired": (_set("fired", {"x": 1}), "fired"),
        "average": (_set("loss_average", math.nan), "loss_average"),
    },
    "hypergradient-sgd": {
        "prev_grads": (_set("prev_grads", [torch.zeros(3)] * 4), "another model"),
        "bounds": (_set("max_lr", 1e-9), "max_lr"),
        "hypergradients": (_set("last_hypergradients", [1.0, 2.0]), "last_hypergradients"),
    },
    "predictor": {
        "history": (_set("history.initial_lr", 0.0), "initial_lr"),
        "history-keys": (_set("history.extra", 1.0), "history state"),
        "started": (_set("started", 1), "started"),
    },
}
BAD = [
    pytest.param(kind, change, match, id=f"{kind}-{name}")
    for kind in SCHEDULERS
    for name, (change, match) in {**COMMON_BAD, **KIND_BAD.get(kind, {})}.items()
]


@pytest.mark.parametrize(("kind", "change", "match"), BAD)
def test_load_refuses_what_it_would_not_write_and_changes_nothing(kind, change, match):
    run = Run(kind)
    run.train(1, 60)
    state = run.save()["sched"]
    change(state)
    fresh = Run(kind, fresh=False)
    before = fresh.sched.state_dict()
    with pytest.raises(ValueError, match=match):
        fresh.sched.load_state_dict(state)
    assert same(fresh.sched.state_dict(), before)


NEW_KEYS = {"policy": ("warned_no_loss", "updates"), "hypergradient-sgd": ("prev_grads",)}


@pytest.mark.parametrize("kind", ["policy", "feedback-rule", "hypergradient-sgd", "predictor"])
def test_old_format_loads_and_warns_only_if_something_restarts(kind):
    """Format 1 (no "format" key, step_count without torch's initial step)."""
    run = Run(kind)
    run.train(1, 60)
    state = run.save()["sched"]
    old = {k: v for k, v in state.items() if k not in ("format", *NEW_KEYS.get(kind, ()))}
    old["step_count"] -= 1
    fresh = Run(kind, fresh=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fresh.sched.load_state_dict(old)
    messages = [str(w.message) for w in caught]
    if kind in NEW_KEYS:
        assert len(messages) == 1 and "earlier lrgym" in messages[0], messages
    else:
        assert messages == []
        assert same(fresh.sched.state_dict(), state)  # nothing was lost
    assert fresh.sched.state_dict()["step_count"] == state["step_count"]
