"""The batched engine: K runs of one task as one computation, equal to K separate runs.

* Optimizers: every slot's parameters equal ``torch.optim``'s (SGD with plain or Nesterov
  momentum, Adam, AdamW, RMSprop, Adagrad, with weight decay and each slot's own
  hyperparameters) after the same steps on the same seeds, through steps where some
  slots rest and a slot's fresh start; what has no slot rule is refused.
* Equivalence: each slot of :class:`~lrgym.vector.BatchedLRControlEnv` gives the same
  observations, rewards and LRs as :class:`~lrgym.core.env.LRControlEnv` over a full episode
  (MLP and CNN, SGD and Adam), within 1e-4.
* Isolation, autoreset, seeding, spaces, the fallback for unbatchable tasks, the SB3
  adapter and a tiny ``lrgym train --batched`` end to end.
"""

from __future__ import annotations

import dataclasses
from functools import partial

import numpy as np
import pytest
import torch
from stable_baselines3.common.vec_env import VecEnv
from typer.testing import CliRunner

import lrgym
from lrgym.agents.vec_env import ConcatVecEnv, VectorEnvAdapter
from lrgym.backends.torch_trainee import OPTIMIZERS, make_optimizer
from lrgym.cli import app
from lrgym.core.env import LRControlEnv
from lrgym.vector import (
    BatchedLRControlEnv,
    BatchedRuns,
    NotBatchable,
    check_batchable,
    compile_policy,
)
from lrgym.vector.batchable import SUPPORTED_OPTIMIZERS, optimizer_kind
from lrgym.vector.compile_policy import (
    COMPILE_ENV,
    COMPILE_PAYS_BACK_AFTER,
    compile_pays_back,
    compiler_available,
    default_compile,
    resolve_compile,
)

MLP, CNN, XGB = "lrgym/DigitsMLP-v0", "lrgym/DigitsCNN-v0", "lrgym/BreastCancerXGB-v0"
PROC_CNN = "lrgym/ProceduralCNN-7-v0"  # max and average pooling, tanh, flatten head
K_STEPS, TOTAL = 10, 60


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread, as in every lrgym worker (reductions then run in one order)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def task_with(task_id: str, **fields) -> lrgym.TorchTask:
    return dataclasses.replace(lrgym.make_task(task_id), **fields)


@pytest.mark.parametrize(
    ("optimizer", "weight_decay"), [("sgd", 0.0), ("sgd", 1e-3), ("adam", 1e-3), ("adamw", 1e-2)]
)
def test_slots_match_torch_optimizers(optimizer, weight_decay):
    task = task_with(MLP, optimizer=optimizer, weight_decay=weight_decay)
    seeds, lrs = [3, 4], [1e-2, 3e-3]
    runs = BatchedRuns(task, 2)
    for slot, (seed, lr) in enumerate(zip(seeds, lrs, strict=True)):
        runs.load(slot, seed, lr)
    runs.train(30)
    for slot, (seed, lr) in enumerate(zip(seeds, lrs, strict=True)):
        reference = task.build(seed, lr)
        reference.train(30)
        for name, p in reference.model.named_parameters():
            torch.testing.assert_close(runs.params[name][slot], p.detach(), rtol=1e-4, atol=2e-5)


# Per optimizer: each slot's LR and its own hyperparameters, set before the first step
# (torch creates RMSprop's momentum buffer at the first step, where momentum > 0).
SLOT_SETTINGS = {
    "nesterov": [(1e-2, {}), (3e-3, {"momentum": 0.5, "weight_decay": 1e-3})],
    "rmsprop": [(1e-3, {}), (3e-4, {"alpha": 0.9, "eps": 1e-6, "weight_decay": 1e-3})],
    "rmsprop-momentum": [(1e-3, {"momentum": 0.9}), (3e-4, {"alpha": 0.95})],
    "adagrad": [(3e-2, {}), (1e-2, {"eps": 1e-6, "weight_decay": 1e-3})],
    "sgd": [(1e-2, {}), (3e-3, {"momentum": 0.5, "weight_decay": 1e-3})],
    "adam": [(1e-3, {}), (3e-4, {"betas": (0.8, 0.99), "eps": 1e-6})],
}


def _set(optimizer, settings: dict) -> None:
    optimizer.param_groups[0].update(settings)


@pytest.mark.parametrize("case", list(SLOT_SETTINGS))
def test_slots_match_torch_optimizers_with_their_own_hyperparameters(case):
    optimizer = case.removesuffix("-momentum")
    task = task_with(MLP, optimizer=optimizer)
    settings = SLOT_SETTINGS[case]
    runs = BatchedRuns(task, 2)
    references = []
    for slot, (lr, own) in enumerate(settings):
        _set(runs.load(slot, slot + 3, lr), own)
        references.append(task.build(slot + 3, lr))
        _set(references[-1].optimizer, own)

    def assert_equal(slot: int) -> None:
        for name, p in references[slot].model.named_parameters():
            torch.testing.assert_close(runs.params[name][slot], p.detach(), rtol=1e-4, atol=2e-5)

    # every slot steps (in place), then slot 1 stops after 4 of 10 (masked steps)
    for steps in ([6, 6], [10, 4], [5, 5]):
        runs.train(np.array(steps))
        for slot, n in enumerate(steps):
            references[slot].train(n)
    assert_equal(0)
    assert_equal(1)
    # a fresh run in slot 1 starts from a fresh optimizer state; slot 0 keeps its own
    lr, own = settings[1]
    _set(runs.load(1, 9, lr), own)
    references[1] = task.build(9, lr)
    _set(references[1].optimizer, own)
    for steps in ([3, 8], [4, 4]):
        runs.train(np.array(steps))
        for slot, n in enumerate(steps):
            references[slot].train(n)
    assert_equal(0)
    assert_equal(1)


@pytest.mark.parametrize(
    ("optimizer", "refused"),
    [
        (partial(torch.optim.SGD, momentum=0.9, dampening=0.1), "SGD with dampening"),
        (partial(torch.optim.RMSprop, centered=True), "RMSprop with centered=True"),
        (partial(torch.optim.Adagrad, lr_decay=1e-3), "Adagrad with lr_decay"),
        (partial(torch.optim.Adagrad, initial_accumulator_value=0.1), "initial_accumulator"),
        (partial(torch.optim.Adam, amsgrad=True), "Adam with amsgrad=True"),
        (partial(torch.optim.RMSprop, maximize=True), "RMSprop with maximize=True"),
        (torch.optim.Adadelta, "Adadelta is not batched"),
    ],
)
def test_optimizer_kind_refuses_what_has_no_slot_rule(optimizer, refused):
    weights = [torch.nn.Parameter(torch.zeros(2))]
    with pytest.raises(NotBatchable, match=refused) as error:
        optimizer_kind(optimizer(weights, lr=1e-2))
    assert SUPPORTED_OPTIMIZERS in str(error.value)
    with pytest.raises(NotBatchable, match="not batched"):
        check_batchable(task_with(MLP, optimizer=optimizer))


def test_optimizer_kind_names_each_supported_optimizer():
    weights = [torch.nn.Parameter(torch.zeros(2))]
    kinds = {name: optimizer_kind(make_optimizer(name, weights, 1e-2)) for name in OPTIMIZERS}
    assert kinds == {name: name for name in OPTIMIZERS}


def _episodes(task, hparams, lrs, seeds, actions):
    """Run the batched env and K single envs on the same actions; their traces."""
    k = len(lrs)
    venv = BatchedLRControlEnv(task, k, K_STEPS, TOTAL, hparams)
    assert venv.batched
    obs, _ = venv.reset(seed=0, options={"initial_lr": lrs, "run_seed": seeds})
    envs = [LRControlEnv(task, K_STEPS, TOTAL, hparams=hparams) for _ in range(k)]
    firsts = [
        e.reset(options={"initial_lr": lrs[i], "run_seed": seeds[i]})[0] for i, e in enumerate(envs)
    ]
    batched, single = [[obs[i]] for i in range(k)], [[o] for o in firsts]
    alive = np.ones(k, dtype=bool)
    for a in actions:
        obs, rewards, terminated, _, infos = venv.step(a)
        for i in np.flatnonzero(alive):
            o, r, done, _, info = envs[i].step(a[i])
            mine = infos["final_obs"][i] if terminated[i] else obs[i]
            batched[i].append((mine, rewards[i], infos["lr"][i], terminated[i]))
            single[i].append((o, r, info["lr"], done))
            alive[i] = not done
    return batched, single


def _assert_close(batched, single):
    for b, s in zip(batched, single, strict=True):
        np.testing.assert_allclose(b[0], s[0], rtol=1e-4, atol=1e-4)
        for (ob, rb, lb, db), (os_, rs, ls, ds) in zip(b[1:], s[1:], strict=True):
            assert db == ds
            np.testing.assert_allclose(ob, os_, rtol=1e-4, atol=1e-4)
            assert rb == pytest.approx(rs, rel=1e-4, abs=1e-4)
            assert lb == pytest.approx(ls, rel=1e-4)


@pytest.mark.parametrize(
    ("task_id", "optimizer"),
    [
        (MLP, "adam"),
        (MLP, "sgd"),
        (CNN, "sgd"),
        (CNN, "adam"),
        (PROC_CNN, "sgd"),
        (PROC_CNN, "adam"),
    ],
)
def test_each_slot_equals_the_single_env(task_id, optimizer):
    # Initial LRs where training is not chaotic: at 1e-2 the CNN with Adam amplifies
    # float rounding so much that one single env differs from itself by about 2e-4
    # between 1 and 2 torch threads, which is float-order noise, not the engine.
    task = task_with(task_id, optimizer=optimizer)
    actions = np.random.default_rng(0).uniform(-1, 1, (TOTAL // K_STEPS, 3, 1)).astype(np.float32)
    _assert_close(*_episodes(task, ["lr"], [1e-3, 3e-3, 3e-4], [4, 5, 6], actions))


def test_each_slot_equals_the_single_env_with_more_hyperparameters():
    hparams = ["lr", "momentum", "weight_decay"]
    actions = np.random.default_rng(1).uniform(-1, 1, (TOTAL // K_STEPS, 2, 3)).astype(np.float32)
    _assert_close(*_episodes(lrgym.make_task(MLP), hparams, [1e-3, 1e-2], [7, 8], actions))


def test_a_diverging_slot_leaves_the_others_untouched():
    task = lrgym.make_task(MLP)
    hold = np.zeros((TOTAL // K_STEPS, 3, 1), dtype=np.float32)
    with_bad, single = _episodes(task, ["lr"], [1e-3, 50.0, 3e-3], [1, 2, 3], hold)
    assert with_bad[1][-1][3] and len(with_bad[1]) < len(with_bad[0])  # slot 1 diverged early
    _assert_close([with_bad[0], with_bad[2]], [single[0], single[2]])


@pytest.mark.parametrize("task_id", [CNN, PROC_CNN])
def test_a_diverging_cnn_slot_leaves_the_others_untouched(task_id):
    task = task_with(task_id, optimizer="sgd")
    hold = np.zeros((TOTAL // K_STEPS, 3, 1), dtype=np.float32)
    with_bad, single = _episodes(task, ["lr"], [1e-3, 90.0, 3e-3], [1, 2, 3], hold)
    assert with_bad[1][-1][3] and len(with_bad[1]) < len(with_bad[0])  # slot 1 diverged early
    _assert_close([with_bad[0], with_bad[2]], [single[0], single[2]])


def test_convolutional_models_take_the_grouped_path_in_cache_sized_passes():
    task = lrgym.make_task(CNN)
    runs = BatchedRuns(task, 20)
    for slot in range(20):
        runs.load(slot, slot, 1e-2)
    assert runs.path == "grouped" and 1 <= runs.grad_chunk < 20  # DigitsCNN: 16 per pass
    reports = runs.train(3)
    for slot in (0, runs.grad_chunk, 19):  # the first slot of a pass, a later pass, the last
        single = task.build(slot, 1e-2)
        np.testing.assert_allclose(reports[slot].losses, single.train(3).losses, rtol=1e-5)
    mlp = BatchedRuns(lrgym.make_task(MLP), 2)
    mlp.load(0, 0, 1e-3)
    assert mlp.path == "vmap"


def test_stacked_forward_equals_each_model_alone():
    from torch import nn

    from lrgym.vector.stacked import stacked_forward

    torch.manual_seed(0)
    models = [
        nn.Sequential(
            nn.Unflatten(1, (2, 6, 6)),
            nn.Conv2d(2, 4, 3, padding=1, groups=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(4, 6, 3, stride=1, bias=False),
            nn.GELU(),
            nn.AvgPool2d(1),
            nn.Flatten(),
            nn.Linear(6, 3),
        )
        for _ in range(3)
    ]
    params = {
        n: torch.stack([dict(m.named_parameters())[n].detach() for m in models])
        for n, _ in models[0].named_parameters()
    }
    x = torch.randn(3, 5, 72)
    out = stacked_forward(models[0])(params, x)
    for i, model in enumerate(models):
        torch.testing.assert_close(out[i], model(x[i]), rtol=1e-5, atol=1e-6)


def test_models_the_translation_cannot_read_keep_the_vmap_path():
    from torch import nn

    from lrgym.vector.stacked import NotStackable, stacked_forward

    class Skip(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3, padding=1)

        def forward(self, x):
            return x + self.conv(x)

    with pytest.raises(NotStackable, match="chain"):
        stacked_forward(Skip())
    with pytest.raises(NotStackable, match="Conv1d"):
        stacked_forward(nn.Sequential(nn.Conv1d(1, 1, 3)))
    task = task_with(CNN, model=lambda n_in, n_out, rng: nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)), Skip(), nn.Flatten(), nn.Linear(64, n_out)
    ))  # fmt: skip
    runs = BatchedRuns(task, 2)
    for slot in range(2):
        runs.load(slot, slot, 1e-2)
    assert runs.path == "vmap"
    reports = runs.train(3)
    np.testing.assert_allclose(reports[1].losses, task.build(1, 1e-2).train(3).losses, rtol=1e-5)


@pytest.mark.parametrize("kind", ["Regression", "Classification"])
def test_teacher_student_v1_stacks_where_v0_cannot(kind):
    v0, v1 = (f"lrgym/TeacherStudent{kind}-v{n}" for n in (0, 1))
    with pytest.raises(NotBatchable, match="architecture"):  # -v0 draws it per run, as ever
        check_batchable(lrgym.make_task(v0))
    task = lrgym.make_task(v1)  # the same draws once per task: every run has one shape
    check_batchable(task)
    shapes = {
        tuple(tuple(p.shape) for p in task.build(seed, 1e-3).model.parameters())
        for seed in range(4)
    }
    assert len(shapes) == 1
    actions = np.random.default_rng(2).uniform(-1, 1, (TOTAL // K_STEPS, 2, 1)).astype(np.float32)
    _assert_close(*_episodes(task, ["lr"], [1e-3, 1e-2], [5, 6], actions))


def test_autoreset_starts_a_new_run_in_the_same_step():
    venv = BatchedLRControlEnv(MLP, 2, K_STEPS, 20)
    venv.reset(seed=3, options={"initial_lr": [1e-3, 1e-3], "run_seed": [1, 2]})
    first_seeds = venv.run_seed.copy()
    venv.step(np.zeros((2, 1), np.float32))
    obs, _, terminated, truncated, infos = venv.step(np.zeros((2, 1), np.float32))
    assert terminated.all() and not truncated.any()
    assert infos["_final_obs"].all() and infos["final_obs"][0].shape == obs[0].shape
    assert infos["final_obs"][0][-2] == pytest.approx(1.0)  # progress at the end
    assert (obs[:, -2] == 0).all()  # the new runs start at progress 0
    assert (venv.run_seed != first_seeds).all() and (venv.steps_done == 0).all()


def test_same_seed_same_trajectories():
    def trace(seed: int):
        venv = BatchedLRControlEnv(MLP, 3, K_STEPS, 30)
        out = [venv.reset(seed=seed)[0]]
        rng = np.random.default_rng(0)
        for _ in range(5):
            out.append(venv.step(rng.uniform(-1, 1, (3, 1)).astype(np.float32))[0])
        return np.stack(out)

    np.testing.assert_array_equal(trace(11), trace(11))
    assert not np.array_equal(trace(11), trace(12))


def test_spaces_and_values():
    venv = BatchedLRControlEnv(CNN, 4, K_STEPS, 20)
    obs, infos = venv.reset(seed=0)
    assert obs.shape == (4, *venv.single_observation_space.shape) and obs.dtype == np.float32
    assert venv.observation_space.contains(obs)
    assert venv.action_space.shape == (4, 1)
    for _ in range(3):
        obs, rewards, terminated, truncated, infos = venv.step(venv.action_space.sample())
        assert venv.observation_space.contains(obs)
        assert rewards.shape == terminated.shape == truncated.shape == (4,)
        assert np.isfinite(rewards).all()
        assert set(infos["task"]) == {CNN}


def test_unbatchable_tasks_fall_back_to_the_single_env_loop():
    with pytest.raises(NotBatchable, match="not a torch task"):
        check_batchable(lrgym.make_task(XGB))
    with pytest.raises(NotBatchable, match="architecture"):
        check_batchable(lrgym.make_task("lrgym/TeacherStudentRegression-v0"))
    venv = BatchedLRControlEnv(XGB, 2, 5, 10)
    assert not venv.batched and "not a torch task" in venv.not_batched_because
    venv.reset(seed=0)
    obs, rewards, terminated, _, infos = venv.step(np.zeros((2, 1), np.float32))
    assert obs.shape == (2, venv.single_observation_space.shape[0])
    with pytest.raises(NotBatchable):
        BatchedLRControlEnv(XGB, 2, batched=True)


def test_sb3_adapter_reports_terminal_observations():
    adapter = ConcatVecEnv(
        [VectorEnvAdapter(BatchedLRControlEnv(t, 2, K_STEPS, 20)) for t in (MLP, XGB)]
    )
    assert isinstance(adapter, VecEnv) and adapter.num_envs == 4
    adapter.seed(0)
    obs = adapter.reset()
    assert obs.shape == (4, adapter.observation_space.shape[0])
    for _ in range(2):
        obs, rewards, dones, infos = adapter.step(np.zeros((4, 1), np.float32))
    assert dones.all() and len(infos) == 4
    assert all("terminal_observation" in i for i in infos)
    assert [i["task"] for i in infos] == [MLP, MLP, XGB, XGB]
    adapter.close()


def test_train_batched_end_to_end(tmp_path):
    out = tmp_path / "agent"
    result = CliRunner().invoke(
        app,
        [
            "train", "--tasks", f"{MLP},{XGB}", "--total-timesteps", "64", "--n-envs", "1",
            "--batched", "8", "--episode-steps", "20", "--decision-interval", "10",
            "--n-steps", "4", "--batch-size", "16", "--eval-every", "64", "--out", str(out),
            "--no-progress",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    agent = lrgym.load_agent(out)
    assert agent.card.config["batched"] == 8
    assert agent.card.total_timesteps >= 64


def _trained(task, compile: bool | None) -> BatchedRuns:
    runs = BatchedRuns(task, 2, compile=compile)
    for slot, (seed, lr) in enumerate([(3, 1e-2), (4, 3e-3)]):
        runs.load(slot, seed, lr)
    runs.train(20)
    return runs


@pytest.mark.skipif(not compiler_available(), reason="no C++ compiler: the default is eager")
@pytest.mark.parametrize("optimizer", ["adam", "nesterov", "rmsprop", "adagrad"])
def test_the_default_path_compiles_and_equals_the_eager_steps(monkeypatch, optimizer):
    monkeypatch.delenv(COMPILE_ENV, raising=False)  # the default a user gets
    task = task_with("lrgym/IllConditionedRegression-v0", optimizer=optimizer, weight_decay=1e-3)
    eager, compiled = _trained(task, False), _trained(task, None)
    assert compiled.compile and not eager.compile
    for name, p in eager.params.items():
        torch.testing.assert_close(compiled.params[name], p, rtol=1e-5, atol=1e-6)
    for a, b in zip(eager.evaluate(), compiled.evaluate(), strict=True):
        assert b.loss == pytest.approx(a.loss, rel=1e-5)


def test_a_failing_compiler_falls_back_to_the_eager_steps(monkeypatch):
    def broken_compile(fn, **kwargs):
        def run(*args):
            raise RuntimeError("no C++ compiler")

        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    task = lrgym.make_task(MLP)
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler"):
        compiled = _trained(task, True)
    eager = _trained(task, False)
    for name, p in eager.params.items():
        assert torch.equal(compiled.params[name], p)


def test_compile_needs_batched_runs():
    from lrgym.agents.config import ConfigError, TrainConfig

    with pytest.raises(ConfigError, match="--batched"):
        TrainConfig(batched=0, compile=True)
    assert TrainConfig(batched=4, compile=True).compile and TrainConfig(compile=True).compile
    assert TrainConfig().compile is None  # the default: decided where the workers start
    with pytest.raises(ConfigError, match="compile must be"):
        TrainConfig(batched=4, compile="yes")


def test_compile_defaults_where_a_compiler_is_and_where_it_pays_back(monkeypatch):
    monkeypatch.delenv(COMPILE_ENV, raising=False)
    assert default_compile() == compiler_available()
    assert resolve_compile(None) == compiler_available() and not resolve_compile(False)
    if compiler_available():
        assert compile_pays_back(COMPILE_PAYS_BACK_AFTER)
        assert not compile_pays_back(COMPILE_PAYS_BACK_AFTER - 1)  # a short run: eager
    monkeypatch.setenv(COMPILE_ENV, "0")
    assert not default_compile() and not compile_pays_back(10**9)
    monkeypatch.setenv(COMPILE_ENV, "maybe")
    with pytest.raises(ValueError, match="LRGYM_COMPILE must be 0 or 1"):
        default_compile()


def test_compile_without_a_compiler_warns_and_runs_eagerly(monkeypatch):
    monkeypatch.setattr(compile_policy, "compiler_available", lambda: False)
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler"):
        assert resolve_compile(True) is False
    monkeypatch.delenv(COMPILE_ENV, raising=False)
    assert resolve_compile(None) is False  # the default: eager, quietly
