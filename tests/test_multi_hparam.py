"""Multi-hyperparameter control: momentum/β1, weight decay, XGBoost max_depth and subsample.

Actions must reach the optimizer's param groups (and XGBoost's booster every round),
stay within bounds under extreme actions, and the deployed scheduler must do exactly what
the env did. One tiny PPO run (128 timesteps) checks training, export, the card and loading.
"""

from __future__ import annotations

import io
import json
import math
import shutil
import warnings
from pathlib import Path

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from synthetic_agents import linear_tanh
from test_agent_training import tiny_config as tiny_training_config
from torch import nn

import lrgym
from lrgym.agents.config import ConfigError, load_config
from lrgym.agents.meta_env import MetaTaskEnv
from lrgym.agents.train import meta_train_tasks, train
from lrgym.backends.xgb_trainee import EtaFromOptimizer, proxy_optimizer
from lrgym.core.hyperparams import (
    HYPERPARAMS,
    TORCH_HPARAMS,
    XGBOOST_HPARAMS,
    HyperParam,
    HyperParamSet,
)
from lrgym.core.signals import FEATURES, OBS_LAYOUT_VERSION
from lrgym.deploy.agent import CARD, Agent, AgentCard
from lrgym.deploy.policy_weights import PolicyWeights
from lrgym.tasks.multi import MULTI_HP_VARIANTS

TORCH_TASK = "lrgym/DigitsMLP-v0"  # Adam: momentum is β1
SGD_TASK = "lrgym/TeacherStudentClassification-v0"
XGB_TASK = "lrgym/BreastCancerXGB-v0"  # max_depth 3, subsample 0.8


def in_bounds(name: str, value: float) -> bool:
    h = HYPERPARAMS[name]
    return h.low <= value <= h.high


# --- the mappings -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["momentum", "weight_decay", "subsample"])
def test_encode_decode_are_inverses(name):
    h = HYPERPARAMS[name]
    for v in np.linspace(h.low, h.high, 25):
        assert h.decode(h.encode(v)) == pytest.approx(v, rel=1e-12)
    for z in np.linspace(h.encode(h.low), h.encode(h.high), 25):
        assert h.encode(h.decode(z)) == pytest.approx(z, rel=1e-12, abs=1e-12)


def test_one_step_sizes():
    mom, wd, depth = HYPERPARAMS["momentum"], HYPERPARAMS["weight_decay"], HYPERPARAMS["max_depth"]
    assert wd.apply(1e-3, 1.0) == pytest.approx(2e-3) and wd.apply(1e-3, -1.0) == 5e-4
    z = math.log(0.9 / 0.1)
    assert mom.apply(0.9, 1.0) == pytest.approx(1 / (1 + math.exp(-(z + 1))))
    assert mom.apply(0.9, 0.0) == pytest.approx(0.9)
    steps = [depth.apply(5, a) for a in (-1.0, -0.6, -0.4, 0.0, 0.4, 0.5, 1.0)]
    assert steps == [4, 4, 5, 5, 5, 6, 6]
    assert isinstance(depth.apply(5, 1.0), int)
    assert wd.apply(0.0, 0.0) == wd.low  # weight decay 0 starts from the floor


@pytest.mark.parametrize("name", list(HYPERPARAMS))
@pytest.mark.parametrize("action", [1.0, -1.0, 50.0, -50.0, math.inf])
def test_extreme_actions_stay_in_bounds(name, action):
    h = HYPERPARAMS[name]
    value = (h.low + h.high) / 2
    for _ in range(40):
        value = h.apply(value, action)
        assert h.low <= value <= h.high
    assert value == (h.high if action > 0 else h.low)
    assert -1.0 <= h.normalize(value) <= 1.0
    assert h.normalize(h.low) == pytest.approx(-1.0) and h.normalize(h.high) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"scale": "logit", "low": 0.1, "high": 1.0},
        {"scale": "log", "low": 0.0, "high": 1.0},
        {"scale": "int", "low": 2.5, "high": 8},
        {"scale": "cube", "low": 1, "high": 2},
        {"scale": "log", "low": 1, "high": 2, "max_step": 0},
    ],
)
def test_bad_hyperparam_specs_raise(kwargs):
    with pytest.raises(ValueError):
        HyperParam(**{"name": "x", "max_step": 1.0, "backend": "torch", **kwargs})


@pytest.mark.parametrize(
    ("names", "match"),
    [
        (["momentum"], "must start with 'lr'"),
        (["lr", "momentum", "momentum"], "repeats"),
        (["lr", "beta2"], "unknown hyperparameter"),
    ],
)
def test_bad_hparam_lists_raise(names, match):
    with pytest.raises(ValueError, match=match):
        HyperParamSet(names)


# --- optimizers' param groups -------------------------------------------------------------


def _params():
    return [nn.Parameter(torch.ones(3)), nn.Parameter(torch.ones(2))]


def test_sgd_momentum_and_weight_decay_reach_every_group():
    w, b = _params()
    opt = torch.optim.SGD([{"params": [w]}, {"params": [b], "lr": 0.5}], lr=0.1, momentum=0.9)
    hp = HyperParamSet(TORCH_HPARAMS)
    hp.apply(opt, [1.0, 1.0])
    for group in opt.param_groups:
        assert group["momentum"] == pytest.approx(HYPERPARAMS["momentum"].apply(0.9, 1.0))
        assert group["weight_decay"] == pytest.approx(2e-6)  # from the floor, doubled
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]  # the LR is not theirs to move


@pytest.mark.parametrize("cls", [torch.optim.Adam, torch.optim.AdamW])
def test_adam_beta1_is_replaced_and_still_trains(cls):
    w, _ = _params()
    opt = cls([w], lr=0.1, betas=(0.9, 0.999), weight_decay=1e-2)
    hp = HyperParamSet(TORCH_HPARAMS)
    hp.apply(opt, [-1.0, -1.0])
    beta1, beta2 = opt.param_groups[0]["betas"]
    assert isinstance(opt.param_groups[0]["betas"], tuple)
    assert beta1 == pytest.approx(HYPERPARAMS["momentum"].apply(0.9, -1.0)) and beta2 == 0.999
    assert opt.param_groups[0]["weight_decay"] == pytest.approx(5e-3)
    assert hp.values(opt) == {"momentum": beta1, "weight_decay": pytest.approx(5e-3)}
    w.sum().backward()
    opt.step()  # torch accepts the new betas
    assert torch.isfinite(w).all()


def test_no_decay_group_stays_at_zero():
    w, b = _params()
    opt = torch.optim.AdamW(
        [{"params": [w], "weight_decay": 1e-2}, {"params": [b], "weight_decay": 0.0}], lr=0.1
    )
    HyperParamSet(["lr", "weight_decay"]).apply(opt, [1.0])
    assert [g["weight_decay"] for g in opt.param_groups] == [pytest.approx(2e-2), 0.0]


def test_optimizer_without_momentum_is_a_clear_error():
    w, _ = _params()
    with pytest.raises(ValueError, match="neither 'momentum'.*nor 'betas'"):
        HyperParamSet(TORCH_HPARAMS).check_optimizer(torch.optim.Adagrad([w]))


# --- XGBoost: booster params read from the proxy each round -------------------------------


class FakeBooster:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def set_param(self, key, value) -> None:
        self.calls.append((key, value))


def test_callback_sets_booster_params_from_proxy_each_round():
    opt = proxy_optimizer(0.3, max_depth=4, subsample=0.7)
    callback = EtaFromOptimizer(opt, ("train", "logloss"))
    booster = FakeBooster()
    callback.before_iteration(booster, 0, {})
    opt.param_groups[0].update(lr=0.1, max_depth=5, subsample=0.6)
    callback.before_iteration(booster, 1, {})
    assert booster.calls == [
        ("eta", 0.3), ("max_depth", 4), ("subsample", 0.7),
        ("eta", 0.1), ("max_depth", 5), ("subsample", 0.6),
    ]  # fmt: skip
    assert isinstance(booster.calls[1][1], int)
    plain = FakeBooster()  # a proxy without booster params sets eta only, as before
    EtaFromOptimizer(proxy_optimizer(0.3), ("train", "logloss")).before_iteration(plain, 0, {})
    assert plain.calls == [("eta", 0.3)]
    with pytest.raises(ValueError, match="max_leaves"):
        proxy_optimizer(0.3, max_leaves=4)


def tree_depth(dump: str) -> int:
    return max(len(line) - len(line.lstrip("\t")) for line in dump.splitlines())


def test_xgboost_variant_moves_the_booster():
    # Noisy regression: trees keep growing to whatever max_depth allows.
    env = gymnasium.make("lrgym/TeacherStudentXGB-MultiHP-v0", total_steps=40, decision_interval=10)
    env.reset(seed=0, options={"initial_lr": 0.3})
    trainee = env.unwrapped.trainee
    assert trainee.optimizer.param_groups[0]["max_depth"] == 3
    for _ in range(4):  # depth 3 -> 4, 5, 6, 7; subsample 0.8 down towards its bound
        _, _, _, _, info = env.step(np.array([0.0, 1.0, -1.0], np.float32))
    group = trainee.optimizer.param_groups[0]
    assert group["max_depth"] == info["max_depth"] == 7
    assert group["subsample"] == info["subsample"] < 0.8
    assert in_bounds("subsample", info["subsample"])
    config = json.loads(trainee.booster.save_config())
    tree_param = config["learner"]["gradient_booster"]["tree_train_param"]
    assert tree_param["max_depth"] == "7"
    assert float(tree_param["subsample"]) == pytest.approx(group["subsample"], rel=1e-6)
    depths = [tree_depth(d) for d in trainee.booster.get_dump()]
    assert [max(depths[i : i + 10]) for i in range(0, 40, 10)] == [4, 5, 6, 7]
    env.close()


# --- the environments ---------------------------------------------------------------------


@pytest.mark.parametrize("env_id", list(MULTI_HP_VARIANTS))
def test_registered_variants_pass_check_env(env_id):
    env = gymnasium.make(env_id, total_steps=4, decision_interval=2)
    task, hparams = MULTI_HP_VARIANTS[env_id]
    assert env.unwrapped.task_id == task
    assert env.action_space.shape == (len(hparams),)
    assert env.observation_space.shape == (len(FEATURES) + len(hparams) - 1,)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_single_lr_env_is_unchanged():
    env = gymnasium.make(TORCH_TASK)
    assert env.action_space.shape == (1,)
    assert env.observation_space.shape == (len(FEATURES),)
    _, info = env.reset(seed=0)
    assert "momentum" not in info
    env.close()


@pytest.mark.parametrize("task", [TORCH_TASK, SGD_TASK])
def test_torch_actions_reach_the_trainees_optimizer_within_bounds(task):
    env = gymnasium.make(task, total_steps=12, decision_interval=2, hparams=TORCH_HPARAMS)
    obs, info = env.reset(seed=1, options={"initial_lr": 1e-3})
    opt = env.unwrapped.trainee.optimizer
    assert info["momentum"] == 0.9 and info["weight_decay"] == 0.0
    assert obs[-1] == -1.0  # weight decay 0 is observed at its floor
    for sign in (1.0, 1.0, 1.0, -5.0, -5.0, -5.0):
        before = dict(momentum=info["momentum"], weight_decay=info["weight_decay"])
        obs, _, _, _, info = env.step(np.array([0.0, sign, sign], np.float32))
        group = opt.param_groups[0]
        momentum = group["betas"][0] if "betas" in group else group["momentum"]
        assert (momentum, group["weight_decay"]) == (info["momentum"], info["weight_decay"])
        assert in_bounds("momentum", momentum) and in_bounds("weight_decay", group["weight_decay"])
        for name in before:  # each moved the way its action said (or sits at its bound)
            h = HYPERPARAMS[name]
            assert info[name] == pytest.approx(h.apply(before[name], sign))
        np.testing.assert_allclose(
            obs[len(FEATURES) :], [HYPERPARAMS[n].normalize(info[n]) for n in TORCH_HPARAMS[1:]]
        )
    assert info["weight_decay"] == HYPERPARAMS["weight_decay"].low  # back at its floor
    env.close()


def test_initial_hparams_option():
    env = gymnasium.make(TORCH_TASK, total_steps=4, decision_interval=2, hparams=TORCH_HPARAMS)
    _, info = env.reset(seed=0, options={"initial_hparams": {"momentum": 0.5}})
    assert info["momentum"] == 0.5
    assert env.unwrapped.trainee.optimizer.param_groups[0]["betas"][0] == 0.5
    with pytest.raises(ValueError, match="outside its bounds"):
        env.reset(seed=0, options={"initial_hparams": {"momentum": 0.0}})
    with pytest.raises(ValueError, match="unknown key.*'max_depth'; known keys: momentum"):
        env.reset(seed=0, options={"initial_hparams": {"max_depth": 4}})
    env.close()


@pytest.mark.parametrize(
    ("task", "hparams", "match"),
    [
        (XGB_TASK, TORCH_HPARAMS, "XGBoost task: it takes hyperparameters lr, max_depth"),
        (TORCH_TASK, XGBOOST_HPARAMS, "torch task: it takes hyperparameters lr, momentum"),
        (TORCH_TASK, ["momentum"], "must start with 'lr'"),
    ],
)
def test_wrong_hparams_for_the_task_raise(task, hparams, match):
    with pytest.raises(ValueError, match=match):
        gymnasium.make(task, hparams=hparams)


def test_action_of_the_wrong_size_raises():
    env = gymnasium.make(TORCH_TASK, total_steps=4, decision_interval=2, hparams=TORCH_HPARAMS)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="3 value"):
        env.step(np.zeros(1, np.float32))
    env.close()


# --- training, the card, loading ----------------------------------------------------------

TOTAL, K, LR0 = 100, 10, 1e-3


def tiny_config(out: Path, **overrides):
    """The shared tiny training config, controlling LR, momentum and weight decay."""
    values = dict(hparams=list(TORCH_HPARAMS), checkpoint_every=128, episode_steps=TOTAL)
    return tiny_training_config(out, **{**values, **overrides})


@pytest.fixture(scope="module")
def agent_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("agent") / "agent"
    return train(tiny_config(out), progress_bar=False, command="pytest multi-hp agent")


def test_card_records_the_hyperparameters(agent_dir):
    card = json.loads((agent_dir / CARD).read_text())
    assert card["hparams"] == list(TORCH_HPARAMS)
    assert card["features"] == [*FEATURES, "hp_momentum", "hp_weight_decay"]
    assert card["hparam_specs"]["momentum"]["low"] == HYPERPARAMS["momentum"].low
    assert set(card["hparam_specs"]) == {"momentum", "weight_decay"}
    assert card["config"]["hparams"] == list(TORCH_HPARAMS)


def test_loaded_agent_acts_on_every_dimension(agent_dir):
    agent = lrgym.load_agent(agent_dir)
    assert agent.hparams.names == TORCH_HPARAMS
    obs = np.random.default_rng(0).normal(size=(8, len(FEATURES) + 2)).astype(np.float32)
    for o in obs:
        action = agent.act(o)
        assert isinstance(action, np.ndarray) and action.shape == (3,)
        assert np.all(np.abs(action) <= 1.0)
        want = agent.policy(o[None])[0]  # the batch forward, one row
        np.testing.assert_allclose(action, want, atol=1e-5)


def test_lr_only_cards_still_mean_lr_only():
    agent = lrgym.load_agent("default")  # its card has no hparams field
    assert agent.card.hparams == ["lr"] and agent.hparams.names == ("lr",)
    assert isinstance(agent.act(np.zeros(len(FEATURES), np.float32)), float)


def test_card_whose_features_miss_the_hparams_is_refused(agent_dir, tmp_path):
    path = tmp_path / "broken"
    shutil.copytree(agent_dir, path)
    card = json.loads((path / CARD).read_text())
    card["features"] = list(FEATURES)
    (path / CARD).write_text(json.dumps(card))
    with pytest.raises(lrgym.AgentLoadError, match="do not match its hyperparameters"):
        lrgym.load_agent(path)
    card["hparams"] = ["lr", "nesterov"]
    (path / CARD).write_text(json.dumps(card))
    with pytest.raises(lrgym.AgentLoadError, match="nesterov"):
        lrgym.load_agent(path)


def test_config_validates_hparams():
    with pytest.raises(ConfigError, match="hparams"):
        load_config(None, hparams=["weight_decay"])
    assert load_config(None).hparams == ["lr"]
    cfg = load_config(None, tasks=[XGB_TASK], hparams=list(TORCH_HPARAMS))
    with pytest.raises(ConfigError, match="XGBoost task"):
        meta_train_tasks(cfg)
    with pytest.raises(ValueError, match="XGBoost task"):
        MetaTaskEnv([XGB_TASK], hparams=TORCH_HPARAMS)


# --- deployed scheduler: parity with the env ----------------------------------------------


class Recording(Agent):
    """Records every observation it acts on."""

    def __init__(self, path: Path, agent_card: AgentCard, policy: PolicyWeights) -> None:
        super().__init__(path, agent_card, policy)
        self.seen: list[np.ndarray] = []

    def act(self, obs: np.ndarray):
        self.seen.append(np.array(obs, dtype=np.float32, copy=True))
        return super().act(obs)


def sensitive_agent(hparams: tuple[str, ...]) -> Recording:
    """Every feature moves every action dimension."""
    hp = HyperParamSet(hparams)
    card = AgentCard(
        name="synthetic",
        lrgym_version=lrgym.__version__,
        obs_layout_version=OBS_LAYOUT_VERSION,
        features=hp.features,
        action={"max_log2_step": 1.0, "min_lr": 1e-7, "max_lr": 10.0},
        tasks=[],
        total_timesteps=0,
        seed=0,
        wall_seconds=0.0,
        command="",
        hparams=list(hparams),
        hparam_specs=hp.specs(),
    )
    gen = torch.Generator().manual_seed(0)
    w = 0.8 * torch.randn(len(hp.features), len(hparams), generator=gen)
    return Recording(Path("synthetic"), card, linear_tanh(w))


def env_trace(agent: Agent, task: str, hparams, total: int, k: int, lr0: float, seed: int):
    """Hyperparameters each chunk trained with, driving the env."""
    env = gymnasium.make(
        task,
        total_steps=total,
        decision_interval=k,
        hparams=hparams,
        action_map=agent.action_map,  # as training ran it: the scheduler reads it from the card
    )
    obs, info = env.reset(options={"initial_lr": lr0, "run_seed": seed})
    trace, done = [], False
    while not done:
        action = np.asarray(agent.act(obs), dtype=np.float32)
        obs, _, done, _, info = env.step(action)
        trace.append({n: info[n] for n in hparams})
    assert not info["diverged"] and info["steps"] == total
    agent.act(obs)  # the decision on the last chunk, as the scheduler makes it
    env.close()
    return trace


def scheduler_trace(agent: Agent, task: str, total: int, k: int, lr0: float, seed: int):
    """The same run as a plain loop with PolicyScheduler (eval feedback, as in the env)."""
    trainee = lrgym.make_task(task).build(seed, lr0)
    sched = lrgym.PolicyScheduler(
        trainee.optimizer, agent, total_steps=total, decision_interval=k, eval_feedback=True
    )
    ev = trainee.evaluate("val")
    sched.observe_eval(ev.loss, ev.metric)
    trace = []
    for _ in range(total // k):
        trace.append(sched.get_last_hparams())  # what this chunk trains with
        trainee.train(k, on_step=lambda loss: sched.step(loss=loss))
        ev = trainee.evaluate("val")
        sched.observe_eval(ev.loss, ev.metric)
    buffer = io.BytesIO()  # numbers and tensors only: a weights_only reload works
    torch.save(sched.state_dict(), buffer)
    buffer.seek(0)
    torch.load(buffer, weights_only=True)
    trainee.close()
    return trace


@pytest.mark.parametrize(
    ("which", "task", "hparams", "total", "k", "lr0"),
    [
        ("trained", TORCH_TASK, TORCH_HPARAMS, TOTAL, K, LR0),
        ("sensitive", TORCH_TASK, TORCH_HPARAMS, 60, 10, LR0),
        ("sensitive", SGD_TASK, TORCH_HPARAMS, 60, 10, 0.01),
        ("sensitive", XGB_TASK, XGBOOST_HPARAMS, 40, 10, 0.3),
    ],
    ids=["trained-adam", "sensitive-adam", "sensitive-sgd", "sensitive-xgboost"],
)
def test_parity_env_and_scheduler(request, which, task, hparams, total, k, lr0):
    def make() -> Recording:
        if which == "trained":
            loaded = lrgym.load_agent(request.getfixturevalue("agent_dir"))
            return Recording(loaded.path, loaded.card, loaded.policy)
        return sensitive_agent(hparams)

    in_env, in_loop = make(), make()
    env_values = env_trace(in_env, task, hparams, total, k, lr0, seed=3)
    loop_values = scheduler_trace(in_loop, task, total, k, lr0, seed=3)

    assert len(in_env.seen) == len(in_loop.seen) == total // k + 1
    for i, (a, b) in enumerate(zip(in_env.seen, in_loop.seen, strict=True)):
        np.testing.assert_array_equal(a, b, err_msg=f"observation at decision {i}")
    assert env_values == loop_values
    for name in hparams[1:]:
        values = [v[name] for v in env_values]
        assert all(in_bounds(name, v) for v in values)
        if which == "sensitive":
            assert len(set(values)) > 1, f"{name} never moved: parity would be vacuous"


def test_xgboost_callback_drives_every_hyperparameter_of_a_multi_hp_agent():
    # An agent that raises max_depth and lowers subsample at every decision: the callback
    # starts both from the booster's params and sets all three each round.
    import xgboost as xgb
    from synthetic_agents import synthetic_card as card

    from lrgym.integrations.xgboost_callback import XGBoostPolicyCallback

    hparams = ["lr", "max_depth", "subsample"]
    agent_card = card()
    agent_card.features = [*FEATURES, "hp_max_depth", "hp_subsample"]
    agent_card.hparams = hparams
    agent_card.hparam_specs = HyperParamSet(hparams).specs()
    n = len(agent_card.features)
    policy = PolicyWeights(
        mean=np.zeros(n, np.float32),
        std=np.ones(n, np.float32),
        clip_obs=np.inf,
        layers=("linear",),
        linear=((np.zeros((3, n), np.float32), np.array([0.0, 1.0, -1.0], np.float32)),),
    )
    agent = Agent(Path("synthetic"), agent_card, policy)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5))
    y = x @ rng.normal(size=5) + rng.normal(scale=0.5, size=300)
    dtrain, dval = xgb.DMatrix(x[:200], y[:200]), xgb.DMatrix(x[200:], y[200:])
    callback = XGBoostPolicyCallback(total_rounds=30, agent=agent, decision_interval=10)
    params = {"eta": 0.3, "max_depth": 3, "subsample": 0.9, "seed": 0}
    booster = xgb.train(
        params, dtrain, 30, evals=[(dtrain, "train"), (dval, "val")], callbacks=[callback]
    )
    depths = [h["max_depth"] for h in callback.hparams]
    assert depths == [4] * 10 + [5] * 10 + [6] * 10  # 3, then +1 at each decision
    subsample = [h["subsample"] for h in callback.hparams]
    assert subsample[0] < 0.9 and subsample[10] < subsample[0] and subsample[20] < subsample[10]
    trees = [tree_depth(d) for d in booster.get_dump()]
    assert max(trees[20:]) == 6 and max(trees[:10]) <= 4
    config = json.loads(booster.save_config())
    assert config["learner"]["gradient_booster"]["tree_train_param"]["max_depth"] == "6"


def test_the_harness_leaves_out_tasks_that_do_not_take_the_agents_hyperparameters(agent_dir):
    from lrgym.controllers.learned import LearnedController

    controller = LearnedController(str(agent_dir))  # controls momentum and weight decay
    assert controller.applies_to(lrgym.make_task(TORCH_TASK))
    assert not controller.applies_to(lrgym.make_task("lrgym/DiabetesXGB-v0"))
    assert LearnedController("default").applies_to(lrgym.make_task("lrgym/DiabetesXGB-v0"))
