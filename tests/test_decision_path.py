"""One decision path, one scheduler contract, declared backends, variants in the registry.

* The env and :class:`lrgym.PolicyScheduler` observe and act through the same
  :class:`~lrgym.core.decision.DecisionPath`; multi-group optimizers keep their LR ratios in both.
* Every feedback scheduler is a :class:`~lrgym.core.feedback_scheduler.FeedbackLRScheduler`:
  the loss is a keyword, and ``SequentialLR([warmup, scheduler])`` hands over cleanly.
* A task declares its backend; env variants are known to ``lrgym.make``, ``tasks`` and
  ``check``; ``import lrgym`` stays cheap (import cycles: tests/test_layers.py).
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import gymnasium
import numpy as np
import pytest
import torch
from test_policy_scheduler import constant_agent, sensitive_agent
from torch import nn
from torch.optim import lr_scheduler
from typer.testing import CliRunner

import lrgym
from lrgym.backends.torch_trainee import TorchTask, TorchTrainee
from lrgym.cli import app
from lrgym.controllers import make_controller
from lrgym.controllers.feedback_rule import FeedbackRuleLR
from lrgym.controllers.hypergradient import HypergradientLR
from lrgym.controllers.lr_predictor import PredictorLR, make_network
from lrgym.controllers.lr_predictor.features import PREDICTOR_FEATURES
from lrgym.controllers.lr_predictor.model import LRPredictor
from lrgym.core.actions import LogLRAction
from lrgym.core.decision import DecisionPath
from lrgym.core.env import LRControlEnv
from lrgym.core.feedback_scheduler import FeedbackLRScheduler
from lrgym.core.hyperparams import HyperParamSet
from lrgym.core.task import Task

TASK = "lrgym/DigitsMLP-v0"


def two_group_trainee(seed: int, lr: float) -> TorchTrainee:
    """A DigitsMLP run whose optimizer has two param groups, the second at a tenth of the LR."""
    trainee = lrgym.make_task(TASK).build(seed, lr)
    params = trainee.params
    trainee.optimizer = torch.optim.Adam(
        [{"params": params[:2], "lr": lr}, {"params": params[2:], "lr": lr / 10}]
    )
    return trainee


class TwoGroupTask(TorchTask):
    """DigitsMLP with two param groups (a user's custom optimizer)."""

    def build(self, seed: int, lr: float) -> TorchTrainee:
        return two_group_trainee(seed, lr)


def two_group_task() -> TwoGroupTask:
    base = lrgym.make_task(TASK)
    return TwoGroupTask(base.info, base.data, base.model)


# --- one decision path ---------------------------------------------------------------------


def test_env_and_scheduler_share_the_decision_path():
    env = LRControlEnv(TASK, total_steps=20, decision_interval=10)
    trainee = lrgym.make_task(TASK).build(0, 1e-3)
    sched = lrgym.PolicyScheduler(trainee.optimizer, constant_agent(0.5), total_steps=20)
    assert isinstance(env.path, DecisionPath) and isinstance(sched.path, DecisionPath)
    for obj in (env, sched):  # neither keeps a tracker or hyperparameter features itself
        assert not hasattr(obj, "tracker") and not hasattr(obj, "_tracker")


@pytest.mark.parametrize("seed", [0, 2])
def test_multi_group_runs_match_in_env_and_scheduler(seed):
    """The same two-group run driven by the env and by the scheduler: same LRs per group."""
    total, k, lr0 = 40, 10, 1e-3
    agent = sensitive_agent()
    env = LRControlEnv(two_group_task(), total_steps=total, decision_interval=k)
    obs, _ = env.reset(options={"initial_lr": lr0, "run_seed": seed})
    env_lrs, done = [], False
    while not done:
        obs, _, done, _, _ = env.step(np.array([agent.act(obs)], dtype=np.float32))
        env_lrs.append([g["lr"] for g in env.trainee.optimizer.param_groups])

    trainee = two_group_trainee(seed, lr0)
    sched = lrgym.PolicyScheduler(
        trainee.optimizer, sensitive_agent(), total, k, eval_feedback=True
    )
    ev = trainee.evaluate("val")
    sched.observe_eval(ev.loss, ev.metric)
    loop_lrs = []
    for _ in range(total // k):
        trainee.train(k, on_step=lambda loss: sched.step(loss=loss))
        loop_lrs.append([g["lr"] for g in trainee.optimizer.param_groups])
        ev = trainee.evaluate("val")
        sched.observe_eval(ev.loss, ev.metric)
    assert env_lrs == loop_lrs
    assert all(first / second == pytest.approx(10.0, rel=1e-9) for first, second in env_lrs)


def test_non_finite_action_holds():
    trainee = lrgym.make_task(TASK).build(0, 1e-3)
    path = DecisionPath(HyperParamSet(), LogLRAction())
    path.start(trainee.optimizer)
    path.apply(np.array([math.nan]), trainee.optimizer)
    assert trainee.lr == 1e-3 and path.prev_action == 0.0
    path.apply(np.array([math.inf]), trainee.optimizer)
    assert trainee.lr == 1e-3
    with pytest.raises(ValueError, match="one per hyperparameter"):
        path.apply(np.array([0.1, 0.2]), trainee.optimizer)


# --- one scheduler contract ----------------------------------------------------------------


def _predictor() -> LRPredictor:
    n = len(PREDICTOR_FEATURES)
    return LRPredictor(make_network(), np.zeros(n, np.float32), np.ones(n, np.float32))


SCHEDULERS = {
    "policy": lambda opt: lrgym.PolicyScheduler(opt, constant_agent(1.0), 100, 5),
    "feedback-rule": FeedbackRuleLR,
    "hypergradient": HypergradientLR,
    "lr-predictor": lambda opt: PredictorLR(opt, _predictor(), 100),
}


@pytest.mark.parametrize("name", SCHEDULERS)
def test_every_feedback_scheduler_shares_the_base(name):
    opt = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=0.1)
    sched = SCHEDULERS[name](opt)
    assert isinstance(sched, FeedbackLRScheduler)
    sched.step(loss=torch.tensor(1.0))
    sched.observe_loss(0.5)
    sched.step()
    assert sched.last_epoch == 2 and sched.get_last_lr() == [g["lr"] for g in opt.param_groups]


def test_positional_loss_is_deprecated_but_still_a_loss():
    opt = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=0.1)
    sched = FeedbackRuleLR(opt)
    with pytest.warns(FutureWarning, match=r"step\(loss=loss\)"):
        sched.step(1.0)
    assert sched.loss_average == 1.0 and sched.last_epoch == 1


def test_not_an_optimizer_is_a_clear_error():
    with pytest.raises(TypeError, match="is not an Optimizer"):
        FeedbackRuleLR(object())


def test_sequential_warmup_then_policy():
    """Warmup for 10 steps, then the policy: it starts from the warmed-up LR and never
    sees a loss of 0 (torch's SequentialLR hands over with ``_update_lr(0)``)."""
    model = nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    warmup = lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=10)
    agent = constant_agent(1.0)  # doubles the LR at every decision
    policy = lrgym.PolicyScheduler(opt, agent, total_steps=20, decision_interval=5)
    chain = lr_scheduler.SequentialLR(opt, [warmup, policy], milestones=[10])
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01)  # the warmup's start
    lrs = []
    for step in range(30):
        opt.step()
        policy.observe_loss(1.0 + step)
        chain.step()
        lrs.append(opt.param_groups[0]["lr"])
    # steps 1-9 warm up to 0.091; at the milestone the policy starts from the LR the
    # warmup left, decides at once (x2), then every 5 of its own steps
    assert lrs[8] == pytest.approx(0.091) and lrs[9] == pytest.approx(0.182)
    assert lrs[14] == pytest.approx(0.364) and lrs[29] == pytest.approx(0.091 * 2**5)
    assert policy.path.tracker.initial_lr == pytest.approx(0.091)
    assert policy.steps_done == 20 and policy.decisions == 5
    assert len(agent.seen) == 1 + 5  # the decision at construction is undone by the chain
    # the train-loss slope: losses 20..29 grow slowly; a fed 0 would floor at 1e-8 (-10)
    slopes = [obs[3] for obs in agent.seen[3:]]
    assert all(0 < v < 1 for v in slopes)


def test_sequential_warmup_then_feedback_rule():
    opt = torch.optim.SGD(nn.Linear(4, 1).parameters(), lr=0.1)
    warmup = lr_scheduler.LinearLR(opt, start_factor=0.5, total_iters=4)
    rule = FeedbackRuleLR(opt)
    chain = lr_scheduler.SequentialLR(opt, [warmup, rule], milestones=[4])
    for _ in range(8):
        opt.step()
        rule.observe_loss(1.0)
        chain.step()
    assert rule.last_epoch == 4  # counted from the milestone
    assert rule.loss_average == 1.0  # no loss of 0 was fed at the hand-over


# --- backends, variants, imports -----------------------------------------------------------


class OtherTask(Task):
    """A user's task that does not say what trains it."""

    info = lrgym.make_task(TASK).info

    def build(self, seed: int, lr: float) -> TorchTrainee:
        return lrgym.make_task(TASK).build(seed, lr)


def test_backends_are_declared_not_guessed():
    assert lrgym.make_task(TASK).backend == "torch"
    assert lrgym.make_task("lrgym/BreastCancerXGB-v0").backend == "xgboost"
    other = OtherTask()
    assert other.backend == "other" and not other.has_gradients
    assert not make_controller("hypergradient").applies_to(other)
    assert make_controller("constant").applies_to(other)
    with pytest.raises(ValueError, match="takes hyperparameters lr, not momentum"):
        LRControlEnv(other, hparams=["lr", "momentum"])
    env = LRControlEnv(other, total_steps=4, decision_interval=2)
    env.reset(seed=0)
    assert env.step(np.zeros(1, np.float32))[2] is False


def test_no_isinstance_checks_on_task_classes():
    concrete = re.compile(r"isinstance\([^)]*\b(TorchTask|XGBoostTask)\b")
    root = Path(lrgym.__file__).parent
    offenders = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if concrete.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_every_lrgym_gymnasium_id_is_known_to_lrgym():
    ids = [i for i in gymnasium.registry if i.startswith("lrgym/")]
    assert "lrgym/DigitsMLP-MultiHP-v0" in ids
    for env_id in ids:
        assert lrgym.spec(env_id).id == env_id
    listed = CliRunner().invoke(app, ["tasks"], terminal_width=400).output
    assert all(env_id in listed for env_id in ids)
    # variants stay out of split selections (they repeat their base task)
    assert "lrgym/DigitsMLP-MultiHP-v0" not in lrgym.select_tasks(["meta-train"])


def test_check_knows_a_variant():
    result = CliRunner().invoke(app, ["check", "lrgym/WineMLP-MultiHP-v0", "--steps", "8"])
    assert result.exit_code == 0, result.output
    env = lrgym.make("lrgym/WineMLP-MultiHP-v0", total_steps=4, decision_interval=2)
    assert env.action_space.shape == (3,)


def test_import_lrgym_stays_cheap():
    heavy = ("transformers", "datasets", "lightning", "xgboost")
    code = f"import sys, lrgym; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
