"""The training-state format (``.safetensors`` + ``.json``): exact round trip, and damaged
or forged files give a clean error naming the file (never a traceback from inside SB3).

Files are forged together with their manifest (whoever can write the folder can), so
these are the cases the manifest cannot catch.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file
from test_agent_training import tiny_config
from typer.testing import CliRunner

from lrgym.agents.checkpoints import CHECKPOINTS, checkpoint_stem
from lrgym.agents.ppo_state import build_model, build_normalize, capture, global_rng
from lrgym.agents.sb3_files import spaces_only
from lrgym.agents.train import train
from lrgym.agents.training_state import (
    TrainingStateError,
    read_training_state,
    state_files,
    write_state,
)
from lrgym.cli import app
from lrgym.core.signals import FEATURES
from lrgym.io import manifest

STEM = checkpoint_stem(64)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("state") / "run"
    return train(tiny_config(out, total_timesteps=64), progress_bar=False)


def rebuilt(folder: Path, stem: str = STEM):
    state = read_training_state(folder, stem)
    norm = build_normalize(state, spaces_only(len(FEATURES), 1))
    return state, norm, build_model(state, norm, resume=True, device="cpu")


def test_round_trip_is_exact(run_dir, tmp_path):
    state, norm, model = rebuilt(run_dir / CHECKPOINTS)
    assert state.tensors["optimizer.state.0.step"].shape == ()  # Adam's 0-d step stays 0-d
    again = capture(model, norm, norm.returns, global_rng(), state.run)
    names = write_state(tmp_path, "again", again)
    manifest.record(tmp_path, names)
    back = read_training_state(tmp_path, "again")
    rng_keys = {"rng.torch", "rng.numpy"}  # global RNGs: PPO(...) reseeded them meanwhile
    assert back.tensors.keys() == state.tensors.keys()
    for key in state.tensors.keys() - rng_keys:
        assert state.tensors[key].dtype == back.tensors[key].dtype, key
        assert np.array_equal(state.tensors[key], back.tensors[key]), key
    assert {k: v for k, v in back.meta.items() if k != "rng"} == {
        k: v for k, v in state.meta.items() if k != "rng"
    }


def forged_copy(run_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(run_dir, out)
    return out


def forge_json(folder: Path, edit) -> None:
    _, name = state_files(STEM)
    meta = json.loads((folder / name).read_text())
    edit(meta)
    (folder / name).write_text(json.dumps(meta))
    manifest.record(folder, state_files(STEM))


def forge_tensors(folder: Path, edit) -> None:
    name, _ = state_files(STEM)
    tensors = {k: np.array(v) for k, v in load_file(folder / name).items()}
    edit(tensors)
    save_file(tensors, str(folder / name))
    manifest.record(folder, state_files(STEM))


def set_key(path: str, value):
    def edit(meta: dict) -> None:
        *parents, last = path.split(".")
        for key in parents:
            meta = meta[key]
        meta[last] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (set_key("ppo.n_steps", 10**12), "n_steps"),
        (set_key("ppo.n_steps", "64"), "n_steps"),
        (set_key("ppo.policy_kwargs", {"activation_fn": "os.system"}), "policy_kwargs"),
        (set_key("ppo.policy_kwargs", {"net_arch": [10**9]}), "policy_kwargs"),
        (set_key("ppo.surprise", 1), "unknown keys"),
        (set_key("vecnormalize.epsilon", "tiny"), "epsilon"),
        (set_key("progress.num_timesteps", -1), "num_timesteps"),
        (set_key("version", 99), "version"),
        (lambda meta: meta.pop("ppo"), "'ppo'"),
        (set_key("optimizer.param_groups", "x"), "param_groups"),
    ],
)
def test_forged_json_is_a_clean_error(run_dir, tmp_path, edit, named):
    out = forged_copy(run_dir, tmp_path)
    forge_json(out / CHECKPOINTS, edit)
    with pytest.raises(TrainingStateError, match=named):
        rebuilt(out / CHECKPOINTS)


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda t: t.__setitem__("policy.value_net.weight", t["policy.value_net.weight"] * np.nan),
         "NaN"),
        (lambda t: t.__setitem__("obs_rms.mean", np.zeros(3)), "observation"),
        (lambda t: t.__setitem__("obs_rms.var", -np.ones_like(t["obs_rms.var"])), "negative"),
        (lambda t: t.pop("ret_rms.var"), "ret_rms.var"),
        (lambda t: t.__setitem__("policy.action_net.weight", np.zeros((2, 64), np.float32)),
         "does not fit"),
        (lambda t: t.__setitem__("last_obs", np.zeros((3, len(FEATURES)), np.float32)),
         "environment"),
    ],
)  # fmt: skip
def test_forged_tensors_are_a_clean_error(run_dir, tmp_path, edit, named):
    out = forged_copy(run_dir, tmp_path)
    forge_tensors(out / CHECKPOINTS, edit)
    with pytest.raises(TrainingStateError, match=named):
        rebuilt(out / CHECKPOINTS)


def test_forged_checkpoint_resume_exits_cleanly(run_dir, tmp_path):
    out = forged_copy(run_dir, tmp_path)
    name, _ = state_files(STEM)
    (out / CHECKPOINTS / name).write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}garbage")
    manifest.record(out / CHECKPOINTS, state_files(STEM))
    result = CliRunner().invoke(app, ["train", "--resume", str(out), "--no-progress"])
    assert result.exit_code == 2, result.output
    flat = " ".join(result.output.split())
    assert "not readable" in flat and "Traceback" not in result.output
