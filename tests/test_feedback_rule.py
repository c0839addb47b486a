"""The feedback rule does exactly what its docstring defines, on scripted signals.

Each test sets the gradient and feeds losses / validation results by hand, then checks
the LR against the definition: ×(1 + factor) on a vanishing gradient, ×(1 − factor) on a
loss increase or a validation drop, unchanged otherwise, always within the bounds.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from lrgym.controllers.feedback_rule import FeedbackRule, FeedbackRuleLR
from lrgym.harness.compare import RunSpec, run_one

LR0 = 1e-2

# These tests step the scheduler on scripted signals, without optimizer steps: torch's
# step-order warning (checked in test_scheduler_contract.py) does not apply here.
pytestmark = pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler:UserWarning")


def setup(rule: FeedbackRule | None = None, grad: float = 1.0):
    """A one-parameter SGD optimizer whose gradient norm is ``grad``."""
    p = torch.zeros(1, dtype=torch.float64, requires_grad=True)  # float64: the norm of 0.01 is 0.01
    p.grad = torch.tensor([grad], dtype=torch.float64)
    opt = torch.optim.SGD([p], lr=LR0)
    return p, opt, FeedbackRuleLR(opt, rule)


def lr(opt) -> float:
    return opt.param_groups[0]["lr"]


def test_defaults_are_the_plans():
    rule = FeedbackRule()
    assert rule.factor == 0.1
    assert rule.grad_threshold == 0.01


def test_construction_leaves_the_lr_alone():
    _, opt, sched = setup()
    assert lr(opt) == LR0
    assert sched.get_last_lr() == [LR0]


@pytest.mark.parametrize(
    ("grad", "expected"),
    [(0.0099, LR0 * 1.1), (0.01, LR0), (0.5, LR0), (0.0, LR0 * 1.1)],
)
def test_vanishing_gradient_raises_lr_by_exactly_the_factor(grad, expected):
    p, opt, sched = setup(grad=grad)
    sched.step(loss=1.0)
    assert lr(opt) == pytest.approx(expected, rel=1e-12)
    assert sched.fired["vanishing_gradient"] == (expected != LR0)


def test_no_gradient_never_fires_the_gradient_rule():
    p, opt, sched = setup()
    p.grad = None  # e.g. gradient boosting's proxy optimizer
    for _ in range(5):
        sched.step(loss=1.0)
    assert lr(opt) == LR0
    assert sched.fired == {"loss_increase": 0, "vanishing_gradient": 0, "validation_drop": 0}


def test_loss_increase_against_running_average():
    _, opt, sched = setup()
    sched.step(loss=1.0)  # average = 1.0
    sched.step(loss=2.0)  # 2.0 > 1.5 · 1.0: fires; then average = 0.9 + 0.2 = 1.1
    assert lr(opt) == pytest.approx(LR0 * 0.9, rel=1e-12)
    assert sched.loss_average == pytest.approx(1.1)
    sched.step(loss=1.64)  # below 1.5 · 1.1 = 1.65: unchanged
    assert lr(opt) == pytest.approx(LR0 * 0.9, rel=1e-12)
    sched.step(loss=0.9 * 1.1 * 1.5 + 0.1 * 1.64 * 1.5 + 1e-9)  # just above 1.5 · average
    assert lr(opt) == pytest.approx(LR0 * 0.81, rel=1e-12)
    assert sched.fired["loss_increase"] == 2


def test_loss_exactly_at_tolerance_does_not_fire():
    _, opt, sched = setup()
    sched.step(loss=2.0)
    sched.step(loss=3.0)  # == (1 + 0.5) · 2.0: not strictly above
    assert lr(opt) == LR0


def test_non_finite_loss_cuts_lr_and_is_not_averaged():
    _, opt, sched = setup()
    sched.step(loss=1.0)
    sched.step(loss=math.nan)
    sched.step(loss=math.inf)
    assert lr(opt) == pytest.approx(LR0 * 0.81, rel=1e-12)
    assert sched.loss_average == 1.0


def test_loss_increase_takes_precedence_over_vanishing_gradient():
    _, opt, sched = setup(grad=1e-4)
    sched.step(loss=1.0)  # vanishing: ×1.1
    sched.step(loss=10.0)  # spike and vanishing: only the cut
    assert lr(opt) == pytest.approx(LR0 * 1.1 * 0.9, rel=1e-12)


def test_validation_drop_against_previous_metric():
    _, opt, sched = setup()
    sched.observe_eval(1.0, 0.5)  # first: nothing to compare with
    sched.observe_eval(0.9, 0.6)  # rise: unchanged
    sched.observe_eval(0.9, 0.6)  # equal: unchanged
    assert lr(opt) == LR0
    sched.observe_eval(0.8, 0.55)  # drop: cut
    assert lr(opt) == pytest.approx(LR0 * 0.9, rel=1e-12)
    assert sched.fired["validation_drop"] == 1


def test_validation_without_metric_uses_loss():
    _, opt, sched = setup()
    sched.observe_eval(1.0)
    sched.observe_eval(0.5)  # loss fell: no drop
    assert lr(opt) == LR0
    sched.observe_eval(0.7)  # loss rose: a drop of -loss
    assert lr(opt) == pytest.approx(LR0 * 0.9, rel=1e-12)


def test_metric_tolerance():
    _, opt, sched = setup(FeedbackRule(metric_tolerance=0.05))
    sched.observe_eval(1.0, 0.9)
    sched.observe_eval(1.0, 0.86)  # within tolerance
    assert lr(opt) == LR0
    sched.observe_eval(1.0, 0.8)  # beyond it
    assert lr(opt) == pytest.approx(LR0 * 0.9, rel=1e-12)


def test_bounds_hold():
    rule = FeedbackRule(min_lr=5e-3, max_lr=2e-2)
    p, opt, sched = setup(rule, grad=0.0)
    for _ in range(50):
        sched.step(loss=1.0)
        assert rule.min_lr <= lr(opt) <= rule.max_lr
    assert lr(opt) == rule.max_lr
    for _ in range(50):
        sched.step(loss=math.nan)
        assert rule.min_lr <= lr(opt) <= rule.max_lr
    assert lr(opt) == rule.min_lr


def test_param_group_ratios_are_kept():
    a, b = torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
    a.grad, b.grad = torch.zeros(1), torch.zeros(1)
    opt = torch.optim.SGD([{"params": [a]}, {"params": [b], "lr": 2e-3}], lr=1e-3)
    sched = FeedbackRuleLR(opt)
    sched.step(loss=1.0)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1.1e-3, 2.2e-3], rel=1e-12)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"factor": 0.0},
        {"factor": 1.0},
        {"grad_threshold": -1.0},
        {"loss_tolerance": -0.1},
        {"loss_decay": 1.0},
        {"min_lr": 0.0},
        {"min_lr": 1.0, "max_lr": 0.5},
    ],
)
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs)).split("_")[0]):
        FeedbackRule(**kwargs)


def test_state_dict_is_plain_and_resumes_exactly():
    losses = [1.0, 1.2, 3.0, 0.9, 0.8, 2.5, 0.7]
    _, opt, sched = setup(grad=0.005)
    for x in losses[:3]:
        sched.step(loss=x)
    sched.observe_eval(1.0, 0.7)
    state = json.loads(json.dumps(sched.state_dict()))  # plain numbers only
    _, opt2, resumed = setup(grad=0.005)
    opt2.param_groups[0]["lr"] = lr(opt)
    resumed.load_state_dict(state)
    for x in losses[3:]:
        sched.step(loss=x)
        resumed.step(loss=x)
    sched.observe_eval(1.0, 0.6)
    resumed.observe_eval(1.0, 0.6)
    assert lr(opt2) == lr(opt)
    assert resumed.state_dict() == sched.state_dict()


def test_drives_a_real_run_within_bounds():
    result = run_one(RunSpec("lrgym/BreastCancerXGB-v0", "feedback-rule", 0), total_steps=40)
    lrs = [row["lr"] for row in result.curve]
    rule = FeedbackRule()
    assert all(rule.min_lr <= x <= rule.max_lr for x in lrs)
    assert not result.row["diverged"]
