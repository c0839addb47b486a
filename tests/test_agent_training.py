"""Meta-training writes a complete, loadable, resumable agent; loading refuses bad ones.

One tiny PPO run (128 timesteps on lrgym/DigitsMLP-v0, ~5 s) is shared by the module.
The exported policy (``policy.safetensors``, run in NumPy) is checked against SB3's own
``predict`` behind ``VecNormalize`` (rebuilt from the agent's training state), so a
mistake in folding the normalisation into it shows up as a different action.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import shutil
from pathlib import Path

import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

import lrgym
from lrgym.agents.checkpoints import BEST, SCORE, checkpoint_names, checkpoint_stem
from lrgym.agents.config import ConfigError, load_config
from lrgym.agents.meta_env import TRAIN_SEEDS, VALIDATION_SEEDS, MetaTaskEnv, zero_features
from lrgym.agents.ppo_state import build_model, build_normalize
from lrgym.agents.sb3_files import SB3_MODEL
from lrgym.agents.train import CHECKPOINTS, CONFIG, meta_train_tasks, train
from lrgym.agents.training_state import read_training_state, state_files
from lrgym.agents.validation import validation_episodes
from lrgym.core.signals import FEATURES, feature_indices
from lrgym.deploy.agent import CARD, TRAINING
from lrgym.deploy.policy_weights import POLICY

TASK = "lrgym/DigitsMLP-v0"
HELD_OUT = "lrgym/WineMLP-v0"


def tiny_config(out: Path, **overrides):
    values = dict(
        tasks=[TASK],
        total_timesteps=128,
        n_envs=1,
        episode_steps=100,
        decision_interval=10,
        eval_every=64,
        checkpoint_every=64,
        val_lrs=[1e-3],
        out=str(out),
        batched=0,  # one run per worker: exact resume, and these tests are about others
        val_every=[1],
        ppo={"n_steps": 64, "batch_size": 32, "n_epochs": 2},
    )
    values.update(overrides)
    return load_config(None, **values)


@pytest.fixture(scope="module")
def agent_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("agent") / "agent"
    return train(tiny_config(out), progress_bar=False, command="pytest tiny agent")


def copy_agent(agent_dir: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(agent_dir, dst)
    return dst


# --- end to end ---------------------------------------------------------------------------


def test_train_writes_complete_agent_dir(agent_dir):
    for name in (CARD, POLICY, *state_files(TRAINING), CONFIG):
        assert (agent_dir / name).is_file(), name
    checkpoints = sorted(p.name for p in (agent_dir / CHECKPOINTS).iterdir())
    assert set(checkpoint_names(64)) | set(checkpoint_names(128)) <= set(checkpoints)
    sb3_copy = agent_dir / SB3_MODEL  # SB3's own format, for its users; lrgym never reads it
    assert sb3_copy.is_file()
    assert not [p for p in agent_dir.rglob("*") if p.suffix in (".zip", ".pkl") and p != sb3_copy]

    card = json.loads((agent_dir / CARD).read_text())
    assert card["obs_layout_version"] == lrgym.OBS_LAYOUT_VERSION
    assert card["features"] == list(lrgym.FEATURES)
    assert card["tasks"] == [TASK]
    assert card["total_timesteps"] >= 128
    assert card["seed"] == 0
    assert card["command"] == "pytest tiny agent"
    assert card["evaluation"], "card has no evaluation table"
    table = next(iter(card["evaluation"].values()))
    assert TASK in table and "constant LR" in table
    assert card["config"]["total_timesteps"] == 128
    # the saved config reloads to the same configuration
    assert load_config(agent_dir / CONFIG).to_dict() == card["config"]


def test_the_selection_score_is_the_shipped_policys(agent_dir):
    """Selection scores the exported policy, so the best score is the card table's mean
    (SB3's own forward pass rounds otherwise, and an episode can turn on rounding)."""
    card = json.loads((agent_dir / CARD).read_text())
    table = next(iter(card["evaluation"].values()))
    mean_row = next(line for line in table.splitlines() if line.startswith("| **mean**"))
    card_mean = float(mean_row.split("|")[2].strip(" *"))
    score = json.loads((agent_dir / BEST / SCORE).read_text())
    assert card["selected_timesteps"] == score["timesteps"]
    assert card_mean == pytest.approx(score["score"], abs=5e-4)


def test_trained_agent_loads_and_acts(agent_dir):
    agent = lrgym.load_agent(agent_dir)
    assert agent.card.tasks == [TASK]
    rng = np.random.default_rng(0)
    for _ in range(20):
        obs = rng.uniform(-10, 10, len(lrgym.FEATURES)).astype(np.float32)
        action = agent.act(obs)
        assert isinstance(action, float)
        assert -1.0 <= action <= 1.0
    assert isinstance(lrgym.load_agent(str(agent_dir)), lrgym.Agent)  # str paths too


def test_exported_policy_equals_sb3_predict(agent_dir):
    """policy.safetensors == PPO.predict(VecNormalize.normalize_obs(obs), deterministic=True)."""
    policy = lrgym.load_agent(agent_dir).policy
    venv = DummyVecEnv([lambda: MetaTaskEnv([TASK])])
    state = read_training_state(agent_dir, TRAINING)
    norm = build_normalize(state, venv, training=False)
    model = build_model(state, norm, device="cpu")
    space = venv.observation_space
    rng = np.random.default_rng(0)
    # over the whole observation space, and near the statistics the policy was trained on
    # (where normalised inputs are not clipped)
    uniform = rng.uniform(space.low, space.high, size=(150, space.shape[0]))
    std = np.sqrt(norm.obs_rms.var + norm.epsilon)
    near = norm.obs_rms.mean + std * rng.standard_normal((50, space.shape[0]))
    obs = np.clip(np.concatenate([uniform, near]), space.low, space.high).astype(np.float32)

    expected, _ = model.predict(norm.normalize_obs(obs), deterministic=True)
    got = policy(obs)
    assert got.shape == expected.shape == (200, 1)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    # and the loaded agent gives the same one observation at a time
    agent = lrgym.load_agent(agent_dir)
    singles = np.array([agent.act(o) for o in obs[:20]])
    np.testing.assert_allclose(singles, expected[:20, 0], rtol=0, atol=1e-5)
    venv.close()


# --- resume -------------------------------------------------------------------------------


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_resume_continues_from_latest_checkpoint(agent_dir, tmp_path):
    out = copy_agent(agent_dir, tmp_path)
    ckpt = out / CHECKPOINTS
    before = {p.name: _sha(p) for p in ckpt.iterdir() if p.name != "manifest.json"}
    train(tiny_config(out, total_timesteps=256), resume=True, progress_bar=False)

    card = json.loads((out / CARD).read_text())
    assert card["total_timesteps"] >= 256
    # continued, not restarted: the first run's checkpoints are untouched (a fresh run
    # would have rewritten rl_model_64/128) and the new ones carry on from 128 timesteps
    assert {p.name: _sha(p) for p in ckpt.iterdir() if p.name in before} == before
    assert read_training_state(ckpt, checkpoint_stem(256)).num_timesteps == 256
    assert all((ckpt / name).is_file() for name in checkpoint_names(192))
    # the agent's training state is the model selected on the validation slice, saved at
    # some timestep of either leg; the latest model is the last checkpoint
    assert read_training_state(out, TRAINING).num_timesteps >= 64
    lrgym.load_agent(out)


def test_resume_without_checkpoint_raises_before_starting_workers(tmp_path):
    before = set(multiprocessing.active_children())
    cfg = tiny_config(tmp_path / "fresh", n_envs=2)  # would be a SubprocVecEnv
    with pytest.raises(ConfigError, match="no checkpoint"):
        train(cfg, resume=True, progress_bar=False)
    leaked = set(multiprocessing.active_children()) - before
    for p in leaked:
        p.kill()
    assert not leaked, "worker processes left running after the error"


# --- configuration ------------------------------------------------------------------------


def test_held_out_task_refused(tmp_path):
    cfg = tiny_config(tmp_path / "a", tasks=[TASK, HELD_OUT])
    with pytest.raises(ConfigError, match="WineMLP") as info:
        train(cfg, progress_bar=False)
    assert TASK not in str(info.value)  # only the offending task is named
    assert not (tmp_path / "a" / CARD).exists()
    with pytest.raises(ConfigError, match="DiabetesXGB"):
        meta_train_tasks(tiny_config(tmp_path / "b", tasks=["lrgym/DiabetesXGB-v0"]))


def test_yaml_unknown_key_named(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("tasks: [lrgym/DigitsMLP-v0]\ntotal_timestep: 100\n")
    with pytest.raises(ConfigError, match="total_timestep"):
        load_config(path)
    path.write_text("ppo:\n  n_step: 64\n")
    with pytest.raises(ConfigError, match=r"ppo\.n_step"):
        load_config(path)


def test_yaml_config_values_and_overrides(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("total_timesteps: 100\nn_envs: 1\nppo:\n  n_steps: 32\n  batch_size: 16\n")
    cfg = load_config(path, ppo={"n_epochs": 3}, seed=None)
    assert cfg.total_timesteps == 100 and cfg.seed == 0
    assert (cfg.ppo.n_steps, cfg.ppo.batch_size, cfg.ppo.n_epochs) == (32, 16, 3)


@pytest.mark.parametrize(
    "overrides",
    [
        {"ppo": {"n_steps": -1}},
        {"ppo": {"batch_size": 0}},
        {"total_timesteps": -5},
        {"val_lrs": [0.0]},
        {"ppo": {"n_steps": 8, "batch_size": 64}},  # batch larger than the rollout
    ],
)
def test_invalid_values_raise(tmp_path, overrides):
    with pytest.raises(ConfigError):
        tiny_config(tmp_path, **overrides)


def test_negative_n_steps_names_key(tmp_path):
    with pytest.raises(ConfigError, match=r"ppo\.n_steps"):
        tiny_config(tmp_path, ppo={"n_steps": -1})


# --- validation slice ---------------------------------------------------------------------


def test_seed_ranges_disjoint():
    assert TRAIN_SEEDS[0] < TRAIN_SEEDS[1] <= VALIDATION_SEEDS[0] < VALIDATION_SEEDS[1]


def test_validation_slice_meta_train_tasks_and_validation_seeds(tmp_path):
    cfg = tiny_config(tmp_path, tasks=["meta-train"], val_lrs=[1e-4, 1e-2])
    tasks = meta_train_tasks(cfg)
    held_out = set(lrgym.task_ids("held-out"))
    assert tasks and not held_out & set(tasks)
    assert set(tasks) == set(lrgym.task_ids("meta-train"))
    episodes = validation_episodes(tasks, cfg)
    assert len(episodes) == 3 * len(tasks)  # val_lrs and each task's default LR
    assert {e["task"] for e in episodes} == set(tasks)
    for t in tasks:
        lrs = sorted(e["initial_lr"] for e in episodes if e["task"] == t)
        assert lrs == sorted([1e-4, 1e-2, lrgym.make_task(t).info.default_lr])
    for e in episodes:
        assert VALIDATION_SEEDS[0] <= e["run_seed"] < VALIDATION_SEEDS[1]
        assert not TRAIN_SEEDS[0] <= e["run_seed"] < TRAIN_SEEDS[1]
    assert validation_episodes(tasks, cfg) == episodes  # fixed across calls


def test_meta_env_draws_seeds_from_its_range():
    env = MetaTaskEnv([TASK], TRAIN_SEEDS, decision_interval=5, total_steps=5)
    env.reset(seed=0)
    seeds = [env.reset()[1]["run_seed"] for _ in range(5)]
    assert all(TRAIN_SEEDS[0] <= s < TRAIN_SEEDS[1] for s in seeds)
    env.close()


def test_meta_env_starts_at_default_lr_by_share():
    default_lr = lrgym.make_task(TASK).info.default_lr
    always = MetaTaskEnv([TASK], TRAIN_SEEDS, 5, 5, default_lr_share=1.0)
    never = MetaTaskEnv([TASK], TRAIN_SEEDS, 5, 5, default_lr_share=0.0)
    always.reset(seed=0)
    never.reset(seed=0)
    assert {always.reset()[1]["initial_lr"] for _ in range(4)} == {default_lr}
    drawn = [never.reset()[1]["initial_lr"] for _ in range(20)]
    assert all(1e-5 <= lr <= 1e-1 for lr in drawn) and len(set(drawn)) == 20
    always.close()
    never.close()


def test_zero_features_zeroes_named_groups():
    env = zero_features(MetaTaskEnv([TASK], TRAIN_SEEDS, 5, 20), ["validation", "progress"])
    dropped = feature_indices(["validation", "progress"])
    assert [FEATURES[i] for i in dropped] == [
        "log_val_loss_ratio",
        "val_loss_slope",
        "val_metric",
        "val_metric_gap",
        "progress",
    ]
    obs, _ = env.reset(seed=0, options={"initial_lr": 1e-2})
    obs, *_ = env.step(np.array([0.5], np.float32))
    assert np.all(obs[dropped] == 0) and np.any(obs != 0)
    env.close()


def test_unknown_feature_group_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown feature or feature group 'nope'"):
        tiny_config(tmp_path, drop_features=["nope"])


def test_ablated_agent_ignores_dropped_features(tmp_path):
    out = train(tiny_config(tmp_path / "a", drop_features=["gradient"]), progress_bar=False)
    agent = lrgym.load_agent(out)
    assert agent.card.config["drop_features"] == ["gradient"]
    obs = np.random.default_rng(0).uniform(-2, 2, (50, len(FEATURES))).astype(np.float32)
    noisy = obs.copy()
    noisy[:, feature_indices(["gradient"])] = 7.0
    assert [agent.act(o) for o in obs] == [agent.act(o) for o in noisy]
    other = obs.copy()
    other[:, feature_indices(["lr"])] += 1.0
    assert [agent.act(o) for o in obs] != [agent.act(o) for o in other]


# --- load errors --------------------------------------------------------------------------


def test_load_unknown_name():
    with pytest.raises(lrgym.AgentLoadError, match="no-such-agent"):
        lrgym.load_agent("no-such-agent")


def test_load_missing_policy(agent_dir, tmp_path):
    path = copy_agent(agent_dir, tmp_path)
    (path / POLICY).unlink()
    with pytest.raises(lrgym.AgentLoadError, match="policy.safetensors is missing"):
        lrgym.load_agent(path)


def test_load_corrupt_policy(agent_dir, tmp_path):
    path = copy_agent(agent_dir, tmp_path)
    (path / POLICY).write_bytes(b"not a safetensors file")
    with pytest.raises(lrgym.AgentLoadError, match="policy.safetensors"):
        lrgym.load_agent(path)


def test_load_missing_card(agent_dir, tmp_path):
    path = copy_agent(agent_dir, tmp_path)
    (path / CARD).unlink()
    with pytest.raises(lrgym.AgentLoadError, match="card.json"):
        lrgym.load_agent(path)


@pytest.mark.parametrize("text", ["{garbage!!", "[1, 2]", "{}", ""])
def test_load_corrupt_card(agent_dir, tmp_path, text):
    path = copy_agent(agent_dir, tmp_path)
    (path / CARD).write_text(text)
    with pytest.raises(lrgym.AgentLoadError, match="card.json"):
        lrgym.load_agent(path)


def test_load_other_obs_layout_version(agent_dir, tmp_path):
    path = copy_agent(agent_dir, tmp_path)
    card = json.loads((path / CARD).read_text())
    card["obs_layout_version"] = lrgym.OBS_LAYOUT_VERSION + 1
    (path / CARD).write_text(json.dumps(card))
    with pytest.raises(lrgym.AgentLoadError, match="layout") as info:
        lrgym.load_agent(path)
    assert f"v{lrgym.OBS_LAYOUT_VERSION + 1}" in str(info.value)
