"""How an action moves the LR: the early range, the base schedule and the harm guard.

Synthetic policies (always up, always down, always hold) make each rule sharp; the
default action map must stay exactly the old formula, so agents trained before these
options act as they always did.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from synthetic_agents import constant_agent
from torch import nn

import lrgym
from lrgym.agents.config import ConfigError, load_config
from lrgym.core import guard as guard_module
from lrgym.core.actions import LogLRAction
from lrgym.core.decision import DecisionPath
from lrgym.core.env import LRControlEnv
from lrgym.core.guard import FALL_LOG2, OVERFIT_LOG2, RISE_LOG2, VAL_OVERFIT, HarmGuard
from lrgym.core.hyperparams import HyperParamSet


def feed(scheduler: lrgym.PolicyScheduler, losses: list[float], evals=None) -> list[float]:
    """Step ``scheduler`` with the given step losses (a parameter with zero gradient keeps
    torch's step order); ``evals[t]`` is fed with ``observe_eval`` after step t."""
    lrs = []
    opt = scheduler.optimizer
    for t, loss in enumerate(losses):
        opt.step()
        scheduler.step(loss=loss)
        if evals and t in evals:
            scheduler.observe_eval(evals[t])
        lrs.append(opt.param_groups[0]["lr"])
    return lrs


def sgd(lr: float = 1e-2) -> torch.optim.Optimizer:
    p = nn.Parameter(torch.zeros(3))
    p.grad = torch.zeros(3)
    return torch.optim.SGD([p], lr=lr)


# --- the action map -------------------------------------------------------------------


def test_default_action_map_is_the_old_formula():
    """Agents trained before the new options: ``lr * 2 ** clip(a)``, bit for bit."""
    rng = np.random.default_rng(0)
    path = DecisionPath(HyperParamSet(["lr"]), LogLRAction())
    opt = sgd(1e-3)
    path.start(opt)
    for a in rng.uniform(-1.5, 1.5, size=200):
        before = opt.param_groups[0]["lr"]
        path.apply([a], opt)
        expected = min(10.0, max(1e-7, before * 2.0 ** (min(1.0, max(-1.0, float(a))) * 1.0)))
        assert opt.param_groups[0]["lr"] == expected
        path.observe(opt, [1.0], progress=0.5)


@pytest.mark.parametrize(
    "settings",
    [
        {"max_log2_step": -1},
        {"max_log2_step": 1e6},
        {"min_lr": 1.0, "max_lr": 0.1},
        {"min_lr": -1e-3},
        {"max_lr": math.inf},
        {"early_decisions": -1},
        {"early_decisions": 1.5},
        {"early_log2_step": math.nan},
        {"base": "exponential"},
        {"base_floor": 0.0},
        {"guard": "yes"},
        {"val_anneal": 1, "guard": True},
        {"val_anneal": True},  # a rule of the guard: needs guard too
        {"slow_fall": "yes", "guard": True},
        {"slow_fall": True},
        {"val_progress": True},
    ],
)
def test_bad_action_settings_are_refused(settings):
    with pytest.raises(ValueError, match="action"):
        LogLRAction(**settings)
    with pytest.raises(ConfigError, match="action"):
        load_config(None, action=settings)


def test_unknown_action_setting_is_refused_by_the_config():
    with pytest.raises(ConfigError, match="unknown action setting"):
        load_config(None, action={"gaurd": True})


def test_early_range_moves_further_in_the_first_decisions():
    agent = constant_agent(-1.0, early_log2_step=4.0, early_decisions=2)
    sched = lrgym.PolicyScheduler(sgd(1e-1), agent, total_steps=50, decision_interval=10)
    # decision 0 at the start (÷16), decision 1 after 10 steps (÷16), then ÷2 each
    assert sched.get_last_lr()[0] == pytest.approx(1e-1 / 16)
    lrs = feed(sched, [1.0] * 30)
    assert lrs[9] == pytest.approx(1e-1 / 256)
    assert lrs[19] == pytest.approx(1e-1 / 512)


def test_cosine_base_with_a_holding_policy_is_torchs_cosine_schedule():
    """With ``base: cosine`` an agent that does nothing anneals exactly like
    ``CosineAnnealingLR`` evaluated at each decision (eta_min = base_floor × LR)."""
    total, k, lr0, floor = 100, 10, 0.1, 0.01
    agent = constant_agent(0.0, base="cosine", base_floor=floor)
    sched = lrgym.PolicyScheduler(sgd(lr0), agent, total_steps=total, decision_interval=k)
    lrs = feed(sched, [1.0] * total)
    ref_opt = sgd(lr0)
    ref = torch.optim.lr_scheduler.CosineAnnealingLR(ref_opt, T_max=total, eta_min=floor * lr0)
    expected = []
    for _ in range(total):
        ref_opt.step()
        ref.step()
        expected.append(ref_opt.param_groups[0]["lr"])
    for t in range(k - 1, total - 1, k):  # the LR set at each decision, after step t
        assert lrs[t] == pytest.approx(expected[t], rel=1e-9)


def test_linear_base_and_env_agree_with_the_scheduler():
    """The env and the scheduler share the path: same LRs under a base schedule."""
    amap = LogLRAction(base="linear", base_floor=0.1)
    env = LRControlEnv("lrgym/DigitsMLP-v0", decision_interval=10, total_steps=40, action_map=amap)
    env.reset(seed=0, options={"initial_lr": 1e-2, "run_seed": 1})
    lrs = [env.step(np.zeros(1, np.float32))[4]["lr"] for _ in range(4)]
    assert lrs == pytest.approx([1e-2 * (0.1 + 0.9 * (1 - p)) for p in (0.0, 0.25, 0.5, 0.75)])


# --- the harm guard -------------------------------------------------------------------


def test_guard_stops_a_runaway_on_a_plateau_without_validation():
    """Always +1 on a flat, noisy loss with no ``observe_eval``: at most 8× (unguarded:
    the LR climbs to its bound)."""
    rng = np.random.default_rng(0)
    losses = list(1.0 + 0.02 * rng.standard_normal(600))
    guarded = constant_agent(1.0, guard=True)
    lrs = feed(lrgym.PolicyScheduler(sgd(1e-3), guarded, total_steps=600), losses)
    assert max(lrs) <= 1e-3 * 2**RISE_LOG2 * (1 + 1e-9)
    free = feed(lrgym.PolicyScheduler(sgd(1e-3), constant_agent(1.0), total_steps=600), losses)
    assert max(free) > 1e-3 * 100


def test_guard_is_not_moved_by_a_noisy_plateaus_dips(monkeypatch):
    """Mini-batch noise (25% per step, as a batch-32 MSE on a pure-noise target) makes
    dips below the first decision's loss; they are not a new best, so the LR stays
    within 8× (with the noise margin off, the dips move the bound and the LR passes 8×)."""
    rng = np.random.default_rng(3)
    losses = list(np.abs(1.0 + 0.25 * rng.standard_normal(600)))
    guarded = constant_agent(1.0, guard=True)
    lrs = feed(lrgym.PolicyScheduler(sgd(1e-3), guarded, total_steps=600), losses)
    assert max(lrs) <= 1e-3 * 2**RISE_LOG2 * (1 + 1e-9)
    monkeypatch.setattr(guard_module, "NOISE_Z", 0.0)
    loose = feed(lrgym.PolicyScheduler(sgd(1e-3), guarded, total_steps=600), losses)
    assert max(loose) > 1e-3 * 2**RISE_LOG2 * 1.5


def test_slow_fall_lets_an_lr_too_low_to_move_the_loss_rise():
    """An LR far too low: the loss falls steadily but by less than 1% over the whole run.
    Rule 1 holds it within 8× of the start; with ``slow_fall`` each 0.1% fall (beyond the
    noise) moves the bound, so the LR rises as the policy asks. A noisy plateau stays
    capped either way."""
    losses = [math.exp(-1.5e-5 * t) for t in range(600)]  # 0.9% in all
    capped = feed(lrgym.PolicyScheduler(sgd(1e-5), constant_agent(1.0, guard=True), 600), losses)
    assert max(capped) <= 1e-5 * 2**RISE_LOG2 * (1 + 1e-9)
    slow = constant_agent(1.0, guard=True, slow_fall=True)
    assert max(feed(lrgym.PolicyScheduler(sgd(1e-5), slow, 600), losses)) > 1e-5 * 2**6
    noise = list(np.abs(1.0 + 0.25 * np.random.default_rng(3).standard_normal(600)))
    plateau = feed(lrgym.PolicyScheduler(sgd(1e-3), slow, total_steps=600), noise)
    assert max(plateau) <= 1e-3 * 2**RISE_LOG2 * (1 + 1e-9)


def test_val_progress_lets_the_lr_rise_while_validation_falls_under_noise():
    """A training loss too noisy to show progress (a pure-noise plateau) while the shown
    validation loss falls 0.5% per decision: rule 1 holds the LR within 8× of the start;
    with ``val_progress`` each validation best moves the bound. A validation loss that
    does not fall leaves it capped."""
    noise = list(np.abs(1.0 + 0.25 * np.random.default_rng(3).standard_normal(600)))
    falling = {t: math.exp(-0.005 * (t + 1) / 25) for t in range(24, 600, 25)}
    flat = dict.fromkeys(falling, 1.0)
    plain = constant_agent(1.0, guard=True)
    capped = feed(lrgym.PolicyScheduler(sgd(1e-5), plain, 600), noise, falling)
    assert max(capped) <= 1e-5 * 2**RISE_LOG2 * (1 + 1e-9)
    progress = constant_agent(1.0, guard=True, val_progress=True)
    assert max(feed(lrgym.PolicyScheduler(sgd(1e-5), progress, 600), noise, falling)) > 1e-3
    still = feed(lrgym.PolicyScheduler(sgd(1e-5), progress, 600), noise, flat)
    assert max(still) <= 1e-5 * 2**RISE_LOG2 * (1 + 1e-9)


def test_guard_state_saved_before_the_noise_margin_loads():
    old = {k: v for k, v in HarmGuard().state_dict().items() if not k.startswith("anchor_")}
    guard = HarmGuard()
    guard.load_state_dict({**old, "best": -0.5})
    assert guard.anchor_loss == -0.5 and guard.anchor_se == 0.0


def test_guard_stops_a_collapse_while_the_loss_falls():
    """Always -1 while the loss keeps falling: the LR stays within 8× of where the
    falling started (unguarded: the floor)."""
    losses = [math.exp(-0.01 * t) for t in range(600)]
    lrs = feed(lrgym.PolicyScheduler(sgd(1e-2), constant_agent(-1.0, guard=True), 600), losses)
    assert min(lrs) >= 1e-2 / 2**FALL_LOG2 * (1 - 1e-9)
    free = feed(lrgym.PolicyScheduler(sgd(1e-2), constant_agent(-1.0), 600), losses)
    assert min(free) == pytest.approx(1e-7)


def test_guard_lets_the_lr_fall_once_the_loss_stops_improving():
    losses = [math.exp(-0.01 * t) for t in range(200)] + [math.exp(-2.0)] * 400
    lrs = feed(lrgym.PolicyScheduler(sgd(1e-2), constant_agent(-1.0, guard=True), 600), losses)
    assert lrs[-1] < 1e-2 / 2**FALL_LOG2 / 100


def test_guard_lets_the_lr_rise_while_the_loss_keeps_improving():
    """From a too-low LR the loss improves at every raise: no 8× cap then."""
    losses = [math.exp(-0.02 * t) for t in range(300)]
    lrs = feed(lrgym.PolicyScheduler(sgd(1e-5), constant_agent(1.0, guard=True), 300), losses)
    assert max(lrs) > 1e-5 * 2**RISE_LOG2 * 16


def test_guard_backs_off_after_an_increase_that_hurt_validation():
    guard = HarmGuard()
    guard.start(0.0, val_loss=1.0)
    guard.observe(1.0, [1.0] * 5, val_loss=1.3)  # raised by an octave, validation worse
    assert guard.limit(1.0, 2.0) == 0.0  # back to where it was before the raise
    guard.observe(0.0, [1.0] * 5, val_loss=1.0)
    assert guard.limit(0.0, 1.0) == 1.0  # free again


def test_guard_anneals_once_validation_has_turned():
    """A small dataset memorised within the run: the training loss keeps falling while
    the validation loss turns up. Holding under the guard, the LR halves at every shown
    validation loss above the best by the margin (without ``val_anneal`` or unguarded, it
    never moves)."""
    train = [math.exp(-0.01 * t) for t in range(400)]
    # validated after the last step of every 25-step chunk, seen at the next decision
    val = {t: 1.0 - 0.5 * min(t, 100) / 100 + 0.005 * max(0, t - 100) for t in range(24, 400, 25)}
    rule_4 = constant_agent(0.0, guard=True, val_anneal=True)
    lrs = feed(lrgym.PolicyScheduler(sgd(1e-2), rule_4, 400), train, val)
    for agent in (constant_agent(0.0, guard=True), constant_agent(0.0)):
        assert feed(lrgym.PolicyScheduler(sgd(1e-2), agent, 400), train, val)[-1] == 1e-2
    best = dict(zip(val, np.minimum.accumulate(list(val.values())), strict=True))
    # each shown loss above its best so far by the margin, but the last (after the run)
    turned = [t for t, v in val.items() if math.log(v / best[t]) > VAL_OVERFIT and t < 399]
    assert lrs[turned[0]] == pytest.approx(1e-2)  # nothing before the margin is passed
    assert lrs[-1] == pytest.approx(1e-2 / 2 ** (OVERFIT_LOG2 * len(turned)))


def test_guard_rule_4_caps_until_validation_is_back_within_the_margin():
    guard = HarmGuard(val_anneal=True)
    guard.start(0.0, val_loss=1.0)
    guard.observe(0.0, [1.0] * 5, val_loss=0.5)
    guard.observe(0.0, [0.9] * 5, val_loss=0.5 * math.exp(VAL_OVERFIT / 2))  # noise: free
    assert guard.limit(0.0, 1.0) == 1.0
    guard.observe(0.0, [0.8] * 5, val_loss=0.5 * math.exp(2 * VAL_OVERFIT))  # turned
    assert guard.limit(0.0, 1.0) == -OVERFIT_LOG2
    guard.observe(-1.0, [0.7] * 5)  # no fresh validation: the cap stays where it was
    assert guard.limit(-1.0, 0.0) == -OVERFIT_LOG2
    guard.observe(-1.0, [0.6] * 5, val_loss=0.5)  # back at its best: free again
    assert guard.limit(-1.0, 0.0) == 0.0


def test_guard_state_saved_before_rule_4_loads():
    old = {
        k: v for k, v in HarmGuard().state_dict().items() if k not in ("val_best", "overfit_cap")
    }
    guard = HarmGuard()
    guard.load_state_dict({**old, "val": -0.7})
    assert guard.val_best == -0.7 and guard.overfit_cap is None


def test_guarded_reload_continues_like_uninterrupted():
    """The guard's and the base's references travel in the scheduler's state dict."""
    rng = np.random.default_rng(1)
    losses = list(np.exp(-0.005 * np.arange(300)) + 0.05 * rng.standard_normal(300))
    acts = dict(guard=True, base="cosine", early_log2_step=3.0, early_decisions=2)
    agent = constant_agent(0.7, **acts)
    whole = feed(lrgym.PolicyScheduler(sgd(1e-3), agent, 300), losses)
    first = lrgym.PolicyScheduler(sgd(1e-3), agent, 300)
    head = feed(first, losses[:137])
    state = first.state_dict()
    second = lrgym.PolicyScheduler(sgd(head[-1]), agent, 300)
    second.load_state_dict(state)
    second.optimizer.param_groups[0]["lr"] = head[-1]
    tail = feed(second, losses[137:])
    assert head + tail == pytest.approx(whole, rel=1e-12)


def test_guard_state_rejects_garbage():
    with pytest.raises(ValueError, match="guard state"):
        HarmGuard().load_state_dict({"best": "x"})


def test_action_settings_reach_the_card(tmp_path):
    cfg = load_config(
        None,
        tasks=["lrgym/DigitsMLP-v0"],
        total_timesteps=64,
        n_envs=1,
        episode_steps=20,
        decision_interval=10,
        eval_every=64,
        checkpoint_every=64,
        val_lrs=[1e-3],
        out=str(tmp_path / "agent"),
        action={"guard": True, "base": "cosine"},
        batched=0,
        val_every=[1],
        ppo={"n_steps": 32, "batch_size": 32, "n_epochs": 1},
    )
    from lrgym.agents.train import train

    agent = lrgym.load_agent(train(cfg, progress_bar=False))
    assert agent.action_map.guard and agent.action_map.base == "cosine"
