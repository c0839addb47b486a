"""The deployed scheduler sees exactly what the agent saw in training, and is a torch scheduler.

PARITY: the same run (task, seed, initial LR, k) driven through the Gymnasium env and
through :class:`lrgym.PolicyScheduler` in a plain loop must produce the same LR trace,
decision by decision. Observations are recorded on both sides, so a mismatch names the
feature that differs. The scheduler contract is then checked in a hand-written torch
loop, with synthetic NumPy policies where a specific behaviour (always up, always
down, sensitive to every feature) makes the check sharp.
"""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

import gymnasium
import numpy as np
import pytest
import torch
from synthetic_agents import constant, linear_tanh, synthetic_card
from torch import nn

import lrgym
from lrgym.agents.config import load_config
from lrgym.agents.train import train
from lrgym.core.signals import FEATURES
from lrgym.deploy.agent import Agent, AgentCard
from lrgym.deploy.policy_weights import PolicyWeights

TASK = "lrgym/DigitsMLP-v0"
TOTAL, K, LR0 = 100, 10, 1e-3


@pytest.fixture(scope="module")
def agent_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("agent") / "agent"
    cfg = load_config(
        None,
        tasks=[TASK],
        total_timesteps=128,
        n_envs=1,
        episode_steps=TOTAL,
        decision_interval=K,
        eval_every=64,
        checkpoint_every=64,
        val_lrs=[LR0],
        out=str(out),
        batched=0,
        val_every=[1],
        ppo={"n_steps": 64, "batch_size": 32, "n_epochs": 2},
    )
    return train(cfg, progress_bar=False)


# --- synthetic agents ---------------------------------------------------------------------


class Recording(Agent):
    """An agent that records every observation it is asked to act on."""

    def __init__(self, path: Path, agent_card: AgentCard, policy: PolicyWeights) -> None:
        super().__init__(path, agent_card, policy)
        self.seen: list[np.ndarray] = []

    @classmethod
    def of(cls, agent: Agent) -> Recording:
        return cls(agent.path, agent.card, agent.policy)

    def act(self, obs: np.ndarray) -> float:
        self.seen.append(np.array(obs, dtype=np.float32, copy=True))
        return super().act(obs)


def sensitive_agent(scale: float = 0.3) -> Recording:
    w = scale * torch.randn(len(FEATURES), 1, generator=torch.Generator().manual_seed(0))
    return Recording(Path("synthetic"), synthetic_card(), linear_tanh(w.numpy()))


def constant_agent(value: float, **action) -> Recording:
    return Recording(Path("synthetic"), synthetic_card(**action), constant(value))


def feature_diff(a: np.ndarray, b: np.ndarray) -> list[tuple[str, float, float]]:
    return [(FEATURES[i], float(a[i]), float(b[i])) for i in np.flatnonzero(a != b)]


# --- PARITY: env vs scheduler -------------------------------------------------------------


def env_trace(agent: Recording, seed: int) -> list[float]:
    """LR of every chunk, then the LR the last decision sets, driving the env."""
    env = gymnasium.make(
        TASK, total_steps=TOTAL, decision_interval=K, action_map=agent.action_map
    ).unwrapped
    obs, info = env.reset(options={"initial_lr": LR0, "run_seed": seed})
    lrs, done = [], False
    while not done:
        action = agent.act(obs)
        obs, _, done, _, info = env.step(np.array([action], dtype=np.float32))
        lrs.append(info["lr"])
    assert not info["diverged"] and info["steps"] == TOTAL
    env.path.apply(agent.act(obs), env.trainee.optimizer)  # the decision on the last chunk
    lrs.append(env.path.lr(env.trainee.optimizer))
    env.close()
    return lrs


def scheduler_trace(agent: Recording, seed: int) -> list[float]:
    """The same run as a plain loop with PolicyScheduler (eval feedback, as in the env)."""
    trainee = lrgym.make_task(TASK).build(seed, LR0)
    sched = lrgym.PolicyScheduler(
        trainee.optimizer, agent, total_steps=TOTAL, decision_interval=K, eval_feedback=True
    )
    assert trainee.lr == LR0  # the first decision waits for the first evaluation
    ev = trainee.evaluate("val")
    sched.observe_eval(ev.loss, ev.metric)
    lrs = []
    for _ in range(TOTAL // K):
        lrs.append(trainee.lr)  # the LR this chunk trains with
        trainee.train(K, on_step=lambda loss: sched.step(loss=loss))
        ev = trainee.evaluate("val")
        sched.observe_eval(ev.loss, ev.metric)
    lrs.append(trainee.lr)
    trainee.close()
    return lrs


@pytest.mark.parametrize("which", ["trained", "sensitive"])
@pytest.mark.parametrize("seed", [0, 3])
def test_parity_env_and_scheduler(agent_dir, which, seed):
    def make() -> Recording:
        return (
            Recording.of(lrgym.load_agent(agent_dir)) if which == "trained" else sensitive_agent()
        )

    in_env, in_loop = make(), make()
    env_lrs = env_trace(in_env, seed)
    loop_lrs = scheduler_trace(in_loop, seed)

    assert len(in_env.seen) == len(in_loop.seen) == TOTAL // K + 1
    for i, (a, b) in enumerate(zip(in_env.seen, in_loop.seen, strict=True)):
        assert not feature_diff(a, b), (
            f"decision {i}: (feature, env, scheduler) {feature_diff(a, b)}"
        )
    assert len(env_lrs) == len(loop_lrs) == TOTAL // K + 1
    np.testing.assert_allclose(loop_lrs, env_lrs, rtol=1e-12, atol=0)
    assert len(set(env_lrs)) > 1, "the agent never changed the LR: parity would be vacuous"


# --- the scheduler contract in a plain torch loop -----------------------------------------

GEN = torch.Generator().manual_seed(0)
X = torch.randn(256, 4, generator=GEN)
Y = X @ torch.randn(4, 1, generator=GEN) + 0.1 * torch.randn(256, 1, generator=GEN)
BS = 32


def build(lr: float = 0.01, groups: tuple[float, ...] | None = None):
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    if groups is None:
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    else:
        params = [{"params": [model.weight], "lr": groups[0]}, {"params": [model.bias]}]
        opt = torch.optim.SGD(params, lr=groups[1], momentum=0.9)
    return model, opt


def train_steps(model, opt, sched, start: int, stop: int, nan_steps=range(0)) -> list[float]:
    """Steps ``start .. stop-1`` (batches depend on the step only); LR after each step."""
    lrs = []
    for t in range(start, stop):
        i = (t * BS) % (len(X) - BS)
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(X[i : i + BS]), Y[i : i + BS])
        loss.backward()
        opt.step()
        sched.step(loss=torch.tensor(math.nan) if t in nan_steps else loss)
        lrs.append(opt.param_groups[0]["lr"])
        assert sched.get_last_lr() == [g["lr"] for g in opt.param_groups]
    return lrs


def changes(lr0: float, lrs: list[float]) -> list[int]:
    """1-based steps after which the LR differs from the one before."""
    prev = [lr0, *lrs[:-1]]
    return [t + 1 for t, (a, b) in enumerate(zip(prev, lrs, strict=True)) if a != b]


@pytest.mark.parametrize("which", ["trained", "sensitive"])
def test_decides_every_k_steps_only(agent_dir, which):
    agent = lrgym.load_agent(agent_dir) if which == "trained" else sensitive_agent()
    model, opt = build()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # step(loss) with a grad-carrying tensor: no warning
        sched = lrgym.PolicyScheduler(opt, agent, total_steps=60, decision_interval=5)
        lr_after_first_decision = opt.param_groups[0]["lr"]
        assert sched.get_last_lr() == [lr_after_first_decision]
        lrs = train_steps(model, opt, sched, 0, 60)
    changed = changes(lr_after_first_decision, lrs)
    assert changed, "the agent never changed the LR"
    assert all(t % 5 == 0 for t in changed), changed
    assert sched.steps_done == 60 and sched.last_epoch == 60
    assert sched.decisions == 1 + 60 // 5


def test_param_groups_keep_their_ratio():
    model, opt = build(groups=(0.02, 0.002))
    sched = lrgym.PolicyScheduler(opt, sensitive_agent(), total_steps=40, decision_interval=4)
    train_steps(model, opt, sched, 0, 40)
    first, second = (g["lr"] for g in opt.param_groups)
    assert first != 0.02
    assert first / second == pytest.approx(10.0, rel=1e-9)
    assert sched.get_last_lr() == [first, second]


def _is_weights_only_data(value) -> bool:
    """Numbers, text, None, tensors, and lists/dicts of them: what weights_only loads."""
    if value is None or isinstance(value, bool | int | float | str | torch.Tensor):
        return True
    if isinstance(value, list):
        return all(_is_weights_only_data(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_weights_only_data(v) for k, v in value.items())
    return False


def _same(a, b) -> bool:
    """Equal data, tensors compared element by element (and by dtype)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return type(a) is type(b) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def roundtrip(state: dict) -> dict:
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def test_state_dict_is_weights_only_data_and_round_trips():
    model, opt = build()
    sched = lrgym.PolicyScheduler(opt, sensitive_agent(), total_steps=40, decision_interval=5)
    sched.observe_eval(0.5, 0.7)
    train_steps(model, opt, sched, 0, 12)  # mid-window: pending losses are part of the state
    state = sched.state_dict()
    assert _is_weights_only_data(state), state
    assert _same(roundtrip(state), state)
    assert state["updates"]["prev_update"] is not None  # two windows measured by step 12


@pytest.mark.parametrize("cut", [30, 32], ids=["at-decision", "mid-window"])
def test_reload_continues_like_uninterrupted(cut):
    """Save model, optimizer and scheduler at ``cut``; reload into fresh ones; continue.

    Every LR and every observation the agent sees after the reload (the update-size
    features included) are those of the uninterrupted run, bit for bit.
    """
    k, total = 5, 60
    ref_agent = sensitive_agent()
    model, opt = build()
    sched = lrgym.PolicyScheduler(opt, ref_agent, total_steps=total, decision_interval=k)
    reference = train_steps(model, opt, sched, 0, total)

    agent = sensitive_agent()
    model, opt = build()
    sched = lrgym.PolicyScheduler(opt, agent, total_steps=total, decision_interval=k)
    resumed = train_steps(model, opt, sched, 0, cut)
    saved = roundtrip(
        {"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()}
    )
    decisions_before = len(agent.seen)

    fresh = sensitive_agent()
    model, opt = build()
    sched = lrgym.PolicyScheduler(opt, fresh, total_steps=total, decision_interval=k)
    model.load_state_dict(saved["model"])
    opt.load_state_dict(saved["opt"])
    sched.load_state_dict(saved["sched"])
    assert sched.get_last_lr() == [opt.param_groups[0]["lr"]] == [resumed[-1]]
    resumed += train_steps(model, opt, sched, cut, total)

    assert resumed == reference
    after = fresh.seen[1:]  # [0] is the fresh scheduler's construction-time decision
    expected = ref_agent.seen[decisions_before:]
    assert len(after) == len(expected) > 0
    for got, want in zip(after, expected, strict=True):
        assert feature_diff(want, got) == []
        np.testing.assert_array_equal(got, want)
    assert expected[0][FEATURES.index("update_cosine")] != 0.0  # the window carried over
    assert sched.steps_done == total and sched.decisions == 1 + total // k


def test_old_format_state_dict_loads_with_a_warning_that_the_window_restarts():
    model, opt = build()
    sched = lrgym.PolicyScheduler(opt, sensitive_agent(), total_steps=40, decision_interval=5)
    train_steps(model, opt, sched, 0, 12)
    state = sched.state_dict()
    old = {k: v for k, v in state.items() if k not in ("format", "warned_no_loss", "updates")}
    old["step_count"] -= 1  # format 1 did not count torch's initial step
    model, opt = build()
    fresh = lrgym.PolicyScheduler(opt, sensitive_agent(), total_steps=40, decision_interval=5)
    with pytest.warns(UserWarning, match="earlier lrgym.*update-size window restarts"):
        fresh.load_state_dict(old)
    assert fresh.last_epoch == 12 and fresh._step_count == state["step_count"]
    assert fresh.state_dict()["updates"]["prev_update"] is None


def test_nan_window_holds_lr_and_training_continues():
    model, opt = build()
    sched = lrgym.PolicyScheduler(opt, sensitive_agent(), total_steps=40, decision_interval=5)
    lr0 = opt.param_groups[0]["lr"]
    lrs = train_steps(model, opt, sched, 0, 40, nan_steps=range(10, 15))  # window 3: all NaN
    changed = changes(lr0, lrs)
    assert 15 not in changed  # held at the NaN window's decision
    assert lrs[14] == lrs[9]
    assert {10, 20, 25, 30, 35, 40} <= set(changed)  # and deciding again afterwards
    assert all(math.isfinite(x) for x in lrs)


def test_single_nan_step_does_not_block_the_decision():
    """One non-finite loss in a window: the decision uses the window's finite losses
    (issue 14: a NaN in every window used to block every decision)."""
    model, opt = build()
    sched = lrgym.PolicyScheduler(opt, sensitive_agent(), total_steps=20, decision_interval=5)
    lrs = train_steps(model, opt, sched, 0, 20, nan_steps={7})
    assert lrs[9] != lrs[4]  # decided at step 10 despite the NaN at step 7
    assert lrs[14] != lrs[9]
    assert all(math.isfinite(x) for x in lrs)


def test_a_nan_in_every_window_still_decides_every_window():
    model, opt = build()
    sched = lrgym.PolicyScheduler(opt, sensitive_agent(), total_steps=40, decision_interval=5)
    lrs = train_steps(model, opt, sched, 0, 40, nan_steps=set(range(2, 40, 5)))
    assert sched.decisions == 1 + 40 // 5
    assert len(set(lrs)) >= 7


def test_max_lr_clamps():
    model, opt = build(lr=0.01)
    sched = lrgym.PolicyScheduler(
        opt, constant_agent(1.0), total_steps=40, decision_interval=5, max_lr=0.05
    )
    assert opt.param_groups[0]["lr"] == pytest.approx(0.02)  # construction-time decision
    lrs = train_steps(model, opt, sched, 0, 40)
    assert lrs[4] == pytest.approx(0.04)
    assert max(lrs) == 0.05 and lrs[-1] == 0.05


def test_min_lr_clamps():
    model, opt = build(lr=0.01)
    sched = lrgym.PolicyScheduler(
        opt, constant_agent(-1.0), total_steps=40, decision_interval=5, min_lr=0.003
    )
    lrs = train_steps(model, opt, sched, 0, 40)
    assert min(lrs) == 0.003 and lrs[-1] == 0.003


def test_agent_card_bounds_are_the_default():
    model, opt = build(lr=0.01)
    sched = lrgym.PolicyScheduler(
        opt, constant_agent(1.0, max_lr=0.03), total_steps=20, decision_interval=5
    )
    assert max(train_steps(model, opt, sched, 0, 20)) == 0.03


@pytest.mark.parametrize(
    "kwargs",
    [
        {"total_steps": 0},
        {"total_steps": -3},
        {"decision_interval": 0},
        {"min_lr": 0.1, "max_lr": 0.01},
        {"min_lr": 0.01, "max_lr": 0.01},
        {"min_lr": 0.0},
        {"min_lr": -1.0},
    ],
)
def test_invalid_arguments_raise(kwargs):
    _, opt = build()
    with pytest.raises(ValueError):
        lrgym.PolicyScheduler(opt, constant_agent(0.5), **kwargs)


def test_without_eval_feedback_needs_no_observe_eval():
    model, opt = build()
    sched = lrgym.PolicyScheduler(opt, sensitive_agent(), total_steps=30, decision_interval=5)
    assert opt.param_groups[0]["lr"] != 0.01  # first decision made at construction
    lrs = train_steps(model, opt, sched, 0, 30)
    assert changes(lrs[0], lrs)
    assert sched.decisions == 1 + 30 // 5


def test_eval_feedback_waits_for_observe_eval():
    model, opt = build()
    sched = lrgym.PolicyScheduler(
        opt, sensitive_agent(), total_steps=30, decision_interval=5, eval_feedback=True
    )
    assert opt.param_groups[0]["lr"] == 0.01 and sched.decisions == 0
    sched.observe_eval(1.0, 0.5)
    first = opt.param_groups[0]["lr"]
    assert first != 0.01 and sched.decisions == 1
    lrs = train_steps(model, opt, sched, 0, 5)
    assert lrs[-1] == first  # the decision at step 5 waits for the evaluation
    sched.observe_eval(0.8, 0.6)
    assert opt.param_groups[0]["lr"] != first and sched.decisions == 2
