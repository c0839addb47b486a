"""Nothing lrgym loads from a folder is a pickle (issue 26).

With every unpickling entry point patched to raise (and to record the call, in case
something catches the error): ``pickle.load(s)``,
``cloudpickle.load(s)``, ``torch.load(weights_only=False)``, ``torch.jit.load``,
``PPO.load`` / ``BaseAlgorithm.load`` and ``VecNormalize.load``,

* a small ``lrgym train`` run resumes from its checkpoint, and its end reads the
  selected model in ``best/``;
* training continues from a shipped agent (``--init-from``);
* a ``best/`` training state is read and rebuilt into a model.

Folders of earlier versions (SB3 pickles) are refused with the converter's command,
before anything is loaded; ``lrgym convert-agent`` converts them (and is the one place
that does call the patched loaders), and a run resumed from a converted checkpoint is
identical to an uninterrupted run.
"""

from __future__ import annotations

import json
import pickle
import re
import shutil
from pathlib import Path

import cloudpickle
import numpy as np
import pytest
import torch
from shipped import shipped_agent_dirs
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecNormalize
from test_agent_training import tiny_config
from typer.testing import CliRunner

import lrgym
from lrgym.agents.checkpoints import BEST, CHECKPOINTS, SCORE, RunFolderError, checkpoint_stem
from lrgym.agents.ppo_state import build_model, build_normalize
from lrgym.agents.sb3_files import SB3_MODEL, spaces_only
from lrgym.agents.train import train
from lrgym.agents.training_state import read_training_state, state_files
from lrgym.cli import app
from lrgym.deploy.agent import CARD, LEGACY_SB3_FILES, TRAINING
from lrgym.io import manifest

TINY = [
    "--tasks", "lrgym/DigitsMLP-v0", "--n-envs", "1", "--episode-steps", "40",
    "--decision-interval", "10", "--n-steps", "32", "--batch-size", "32",
    "--eval-every", "32", "--checkpoint-every", "32", "--batched", "0", "--val-every", "1",
    "--no-progress",
]  # fmt: skip
"""One in-process environment (a worker process would unpickle its env factory)."""


@pytest.fixture
def no_unpickling(monkeypatch) -> list[str]:
    """Patch every unpickling entry point to raise; returns the calls made anyway."""
    calls: list[str] = []

    def refuse(name: str):
        def raiser(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"{name} was called: lrgym must not unpickle")

        return raiser

    torch_load = torch.load

    def guarded_torch_load(*args, weights_only=None, **kwargs):
        if weights_only is False:
            return refuse("torch.load(weights_only=False)")()
        return torch_load(*args, weights_only=True, **kwargs)

    monkeypatch.setattr(pickle, "load", refuse("pickle.load"))
    monkeypatch.setattr(pickle, "loads", refuse("pickle.loads"))
    monkeypatch.setattr(cloudpickle, "load", refuse("cloudpickle.load"))
    monkeypatch.setattr(cloudpickle, "loads", refuse("cloudpickle.loads"))
    monkeypatch.setattr(torch, "load", guarded_torch_load)
    monkeypatch.setattr(torch.jit, "load", refuse("torch.jit.load"))
    monkeypatch.setattr(BaseAlgorithm, "load", classmethod(refuse("BaseAlgorithm.load")))
    monkeypatch.setattr(VecNormalize, "load", staticmethod(refuse("VecNormalize.load")))
    return calls


def cli(*args) -> object:
    return CliRunner().invoke(app, [str(a) for a in args])


def test_the_patches_bite(no_unpickling, tmp_path):
    """The fixture really stops SB3's and torch's loaders (else the tests below prove nothing)."""
    from stable_baselines3 import PPO

    for load in (
        lambda: PPO.load(tmp_path / "x.zip"),
        lambda: VecNormalize.load(str(tmp_path / "x.pkl"), None),
        lambda: pickle.loads(pickle.dumps(1)),
        lambda: torch.load(tmp_path / "x.pt", weights_only=False),
    ):
        with pytest.raises(AssertionError, match="must not unpickle"):
            load()
    assert len(no_unpickling) == 4


def test_resume_of_a_train_run_and_its_best_model_load_no_pickle(no_unpickling, tmp_path):
    out = tmp_path / "run"
    result = cli("train", *TINY, "--total-timesteps", 64, "--out", out)
    assert result.exit_code == 0, result.output
    assert (out / BEST / state_files(TRAINING)[0]).is_file()
    first = json.loads((out / CARD).read_text())
    sb3_copy = out / SB3_MODEL  # SB3's own format, for its users; lrgym never reads it
    assert sb3_copy.is_file()
    pickles = [p for p in out.rglob("*") if p.suffix in (".zip", ".pkl", ".pt")]
    assert not [p for p in pickles if p != sb3_copy]

    result = cli("train", "--resume", out, "--total-timesteps", 128, "--no-progress")
    assert result.exit_code == 0, result.output
    card = json.loads((out / CARD).read_text())
    assert first["total_timesteps"] == 64 and card["total_timesteps"] == 128
    # the export read the selected model in best/ (its timesteps, not the last ones)
    assert card["selected_timesteps"] == json.loads((out / BEST / SCORE).read_text())["timesteps"]
    assert read_training_state(out / CHECKPOINTS, checkpoint_stem(128)).num_timesteps == 128
    lrgym.load_agent(out)
    assert no_unpickling == []


def test_init_from_a_shipped_agent_loads_no_pickle(no_unpickling, tmp_path):
    out = tmp_path / "continued"
    result = cli("train", *TINY, "--init-from", shipped_agent_dirs()[0], "--out", out,
                 "--total-timesteps", 64)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert lrgym.load_agent(out).card.total_timesteps == 64
    assert no_unpickling == []


def test_a_best_model_is_rebuilt_without_pickle(no_unpickling, tmp_path):
    out = train(tiny_config(tmp_path / "run", total_timesteps=64), progress_bar=False)
    state = read_training_state(out / BEST, TRAINING)
    n_obs = state.tensors["obs_rms.mean"].shape[0]
    norm = build_normalize(state, spaces_only(n_obs, 1), training=False)
    model = build_model(state, norm, device="cpu")
    agent = lrgym.load_agent(out)  # exported from this best model
    obs = np.random.default_rng(0).uniform(-3, 3, (200, n_obs)).astype(np.float32)
    actions, _ = model.predict(norm.normalize_obs(obs), deterministic=True)
    assert np.max(np.abs(actions - agent.policy(obs))) <= 1e-5
    assert no_unpickling == []


# --- folders of earlier versions ------------------------------------------------------------


def to_legacy(folder: Path, stem: str, names: tuple[str, ...]) -> None:
    """Rewrite the training state ``stem`` as the SB3 pickles earlier lrgym versions wrote
    (``model.save`` and ``VecNormalize.save``, and a checkpoint's state JSON)."""
    state = read_training_state(folder, stem)
    n_obs = state.tensors["obs_rms.mean"].shape[0]
    n_actions = state.tensors["policy.action_net.bias"].shape[0]
    n_envs = state.tensors["last_obs"].shape[0] if "last_obs" in state.tensors else 1
    norm = build_normalize(state, spaces_only(n_obs, n_actions, n_envs))
    model = build_model(state, norm, resume=True, device="cpu")
    model.save(folder / names[0])
    norm.save(folder / names[1])
    if len(names) == 3:
        rng = state.meta["rng"]
        np_rng = rng["numpy"]
        old = {
            "format": 1,
            "num_timesteps": state.num_timesteps,
            "torch_rng": state.tensors["rng.torch"].tolist(),
            "numpy_rng": [
                np_rng["name"],
                state.tensors["rng.numpy"].tolist(),
                np_rng["pos"],
                np_rng["has_gauss"],
                np_rng["cached_gaussian"],
            ],
            "python_rng": rng["python"],
            "returns": state.tensors["returns"].tolist(),
            **state.run,
        }
        (folder / names[2]).write_text(json.dumps(old))
    for name in state_files(stem):
        (folder / name).unlink()
    manifest.record(folder, names, forget=state_files(stem))


def legacy_run(out: Path) -> None:
    """Turn a run folder written by this lrgym into one an earlier version wrote."""
    to_legacy(out, TRAINING, LEGACY_SB3_FILES)
    if (out / BEST).is_dir():
        to_legacy(out / BEST, TRAINING, LEGACY_SB3_FILES)
    for meta in sorted((out / CHECKPOINTS).glob("checkpoint_*_steps.json")):
        steps = int(meta.name.split("_")[1])
        to_legacy(
            out / CHECKPOINTS,
            checkpoint_stem(steps),
            (
                f"rl_model_{steps}_steps.zip",
                f"rl_model_vecnormalize_{steps}_steps.pkl",
                f"rl_model_state_{steps}_steps.json",
            ),
        )


def test_old_run_is_refused_naming_the_converter_and_resumes_identically_after_it(tmp_path):
    settings = dict(total_timesteps=128, eval_every=50, checkpoint_every=64)
    whole = train(tiny_config(tmp_path / "whole", **settings), progress_bar=False)
    part = tmp_path / "part"  # interrupted after its checkpoint at 64 timesteps
    train(tiny_config(part, **{**settings, "total_timesteps": 64}), progress_bar=False)
    legacy_run(part)
    assert (part / CHECKPOINTS / "rl_model_64_steps.zip").is_file()
    assert [p.name for p in part.rglob("*.safetensors")] == ["policy.safetensors"]

    with pytest.MonkeyPatch.context() as patch:
        calls: list[str] = []
        patch.setattr(BaseAlgorithm, "load", classmethod(lambda *a, **k: calls.append("x")))
        with pytest.raises(RunFolderError, match=re.escape(f"lrgym convert-agent {part}")):
            train(tiny_config(part, **settings), resume=True, progress_bar=False)
        assert calls == []  # refused before anything was loaded

    result = cli("convert-agent", part)
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "checkpoints/checkpoint_64_steps" in flat and "best/training" in flat
    assert not [p for p in part.rglob("*") if p.suffix in (".zip", ".pkl")]
    for folder in (part, part / BEST, part / CHECKPOINTS):
        listed = json.loads((folder / manifest.MANIFEST).read_text())["files"]
        assert not [n for n in listed if n.endswith((".zip", ".pkl"))]

    train(tiny_config(part, **settings), resume=True, progress_bar=False)
    a, b = lrgym.load_agent(whole), lrgym.load_agent(part)
    obs = np.random.default_rng(0).uniform(-3, 3, (200, len(lrgym.FEATURES))).astype(np.float32)
    assert np.array_equal(a.policy(obs), b.policy(obs))  # the converted run went on exactly
    sa = read_training_state(whole / CHECKPOINTS, checkpoint_stem(128))
    sb = read_training_state(part / CHECKPOINTS, checkpoint_stem(128))
    for key in sa.tensors.keys() - {"ep_info.t"}:
        assert np.array_equal(sa.tensors[key], sb.tensors[key]), key


def test_old_agent_is_refused_for_init_from_and_converts_into_another_folder(tmp_path):
    old = tmp_path / "old"
    shutil.copytree(shipped_agent_dirs()[0], old)
    state = read_training_state(old, TRAINING)
    to_legacy(old, TRAINING, LEGACY_SB3_FILES)  # as it shipped before this format

    result = cli("train", "--init-from", old, "--tasks", "lrgym/DigitsMLP-v0",
                 "--out", tmp_path / "new", "--no-progress")  # fmt: skip
    assert result.exit_code == 2
    assert f"lrgym convert-agent {old}" in " ".join(result.output.split())
    assert "Traceback" not in result.output and not (tmp_path / "new").exists()

    before = {p.name: p.read_bytes() for p in old.iterdir()}
    result = cli("convert-agent", old, "--out", tmp_path / "converted")
    assert result.exit_code == 0, result.output
    assert {p.name: p.read_bytes() for p in old.iterdir()} == before  # the source stays
    converted = read_training_state(tmp_path / "converted", TRAINING)
    # an agent's two pickles never held the run's RNG states and return accumulators (a
    # checkpoint's state JSON did): everything else converts tensor for tensor
    run_state = {"rng.torch", "rng.numpy", "returns"}
    assert converted.tensors.keys() == state.tensors.keys() - run_state
    assert converted.meta == {k: v for k, v in state.meta.items() if k != "rng"}
    for key, value in converted.tensors.items():
        assert np.array_equal(value, state.tensors[key]), key
    result = cli("convert-agent", tmp_path / "converted")
    assert result.exit_code == 2 and "nothing to convert" in " ".join(result.output.split())


def test_tampered_old_pickles_are_not_converted(tmp_path):
    old = tmp_path / "old"
    shutil.copytree(shipped_agent_dirs()[0], old)
    for name in state_files(TRAINING):  # an agent of the old format: no training state
        (old / name).unlink()
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (Path.write_text, (marker, "code ran"))

    (old / LEGACY_SB3_FILES[0]).write_bytes(b"PK")
    (old / LEGACY_SB3_FILES[1]).write_bytes(pickle.dumps(Exploit()))  # not in the manifest
    result = cli("convert-agent", old)
    assert result.exit_code == 2 and "not converted" in " ".join(result.output.split())
    assert not marker.exists()
