"""The agent format: ``policy.safetensors`` + the card's ``policy`` entry, run in NumPy.

* the shipped agent's NumPy policy (each member's, for an ensemble) acts as its SB3 model
  did when it shipped (reference actions recorded from that model behind its
  ``VecNormalize``, ``tests/data/default_agent_reference.npz``, recorded by
  ``tests/data/record_agent_reference.py``);
* export -> save -> load gives SB3's deterministic prediction behind ``VecNormalize``;
* an old-format directory (``policy.pt``) is refused with the conversion command, and
  ``lrgym convert-agent`` converts it to the same actions;
* tampered files give :class:`~lrgym.deploy.agent.AgentLoadError`, and loading never runs
  TorchScript or unpickles anything.
"""

from __future__ import annotations

import json
import math
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import gymnasium
import numpy as np
import pytest
import torch
from safetensors.numpy import load_file, save_file
from shipped import shipped_agent_dirs
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize
from torch import nn
from typer.testing import CliRunner

import lrgym
from lrgym.cli import app
from lrgym.core.signals import FEATURES, OBS_LAYOUT_VERSION
from lrgym.deploy.agent import (
    CARD,
    LEGACY_POLICY,
    POLICY,
    Agent,
    AgentCard,
    AgentLoadError,
    load_agent,
)
from lrgym.deploy.agent_convert import check_observations, convert_agent
from lrgym.deploy.policy_weights import PolicyWeights, export_policy

REFERENCE = Path(__file__).parent / "data" / "default_agent_reference.npz"
N = len(FEATURES)
JIT_DEPRECATED = "ignore:`torch.jit:DeprecationWarning"


def synthetic_card(**fields) -> AgentCard:
    """An LR-only card for the standard features."""
    return AgentCard(
        name="synthetic",
        lrgym_version=lrgym.__version__,
        obs_layout_version=OBS_LAYOUT_VERSION,
        features=list(FEATURES),
        action={"max_log2_step": 1.0, "min_lr": 1e-7, "max_lr": 10.0},
        tasks=[],
        total_timesteps=0,
        seed=0,
        wall_seconds=0.0,
        command="",
        **fields,
    )


# --- the shipped agent --------------------------------------------------------------------


def test_shipped_agent_acts_as_its_sb3_model_did():
    """Each member (the agent itself if it is not an ensemble) acts as its SB3 model did;
    the agent's action is their mean."""
    obs = check_observations(N)  # the seeded draw the reference actions were recorded on
    reference = np.load(REFERENCE)
    for path, want in zip(shipped_agent_dirs(), reference["members"], strict=True):
        member = load_agent(path)
        assert member.policy.spec()["layers"] == ["linear", "tanh", "linear", "tanh", "linear"]
        assert member.card.policy == member.policy.spec()
        assert np.max(np.abs(member.policy(obs) - want)) <= 1e-6
    agent = load_agent("default")
    singles = np.array([agent.act(o) for o in obs])
    assert np.max(np.abs(singles - reference["actions"][:, 0])) <= 1e-6


def test_shipped_agent_directory_is_in_the_new_format():
    for member in shipped_agent_dirs():
        assert (member / POLICY).is_file() and (member / CARD).is_file()
        assert not (member / LEGACY_POLICY).exists()
        assert json.loads((member / CARD).read_text())["policy"]["format"] == "lrgym-mlp"


def test_load_agent_executes_nothing(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("load_agent must not run TorchScript or unpickle")

    monkeypatch.setattr(torch.jit, "load", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    agent = load_agent("default")
    assert isinstance(agent.act(np.zeros(N, np.float32)), float)


def test_agent_repr_and_interface():
    agent = load_agent("default")
    text = repr(agent)
    assert "'default'" in text and "['lr']" in text and str(agent.path) in text
    assert agent.hparams.names == ("lr",) and agent.action_map.max_log2_step == 1.0
    with pytest.raises(ValueError, match="observation has 3 values"):
        agent.act(np.zeros(3, np.float32))


# --- export -> save -> load ---------------------------------------------------------------


class FlatEnv(gymnasium.Env):
    """Just the spaces of an LR-only lrgym env (PPO needs an env to build its policy)."""

    observation_space = gymnasium.spaces.Box(-10.0, 10.0, (N,), np.float32)
    action_space = gymnasium.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(N, np.float32), {}

    def step(self, action):
        return np.zeros(N, np.float32), 0.0, True, False, {}


def sb3_model(activation: type[nn.Module]) -> tuple[PPO, VecNormalize]:
    """An untrained PPO behind VecNormalize with random statistics (a sharp check)."""
    env = VecNormalize(DummyVecEnv([FlatEnv]), norm_obs=True, norm_reward=False)
    rng = np.random.default_rng(1)
    env.obs_rms.mean = rng.normal(0, 2, N)
    env.obs_rms.var = rng.uniform(0.01, 4.0, N)
    env.training = False
    kwargs = {"net_arch": [32, 16], "activation_fn": activation}
    model = PPO("MlpPolicy", env, policy_kwargs=kwargs, seed=0, device="cpu")
    with torch.no_grad():  # an untrained action_net is near zero: make it matter
        model.policy.action_net.weight.mul_(50.0)
    return model, env


@pytest.mark.parametrize("activation", [nn.Tanh, nn.ReLU], ids=["tanh", "relu"])
def test_export_save_load_equals_sb3_predict(tmp_path, activation):
    model, env = sb3_model(activation)
    weights = export_policy(model, env)
    kind = activation.__name__.lower()
    assert weights.layers == ("linear", kind, "linear", kind, "linear")
    weights.save(tmp_path)
    synthetic_card(policy=weights.spec()).save(tmp_path)
    agent = load_agent(tmp_path)
    for name, array in weights.tensors().items():
        np.testing.assert_array_equal(agent.policy.tensors()[name], array, err_msg=name)

    rng = np.random.default_rng(0)
    std = np.sqrt(env.obs_rms.var)
    near = env.obs_rms.mean + std * rng.standard_normal((100, N))
    obs = np.clip(np.concatenate([rng.uniform(-10, 10, (100, N)), near]), -10, 10)
    obs = obs.astype(np.float32)
    expected, _ = model.predict(env.normalize_obs(obs), deterministic=True)
    assert np.abs(expected).max() > 0.5, "actions near zero: the check would be weak"
    got = agent.policy(obs)
    assert got.shape == expected.shape == (200, 1)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    singles = np.array([agent.act(o) for o in obs])
    np.testing.assert_allclose(singles, expected[:, 0], rtol=0, atol=1e-5)


def test_export_zeroes_the_dropped_features():
    model, env = sb3_model(nn.Tanh)
    dropped = [2, 5]
    weights = export_policy(model, env, dropped)
    first = model.policy.mlp_extractor.policy_net[0].weight.detach().numpy()
    assert np.all(weights.linear[0][0][:, dropped] == 0.0)
    assert np.any(first[:, dropped] != 0.0), "exporting must not change the SB3 model"
    obs = np.random.default_rng(0).uniform(-3, 3, (20, N)).astype(np.float32)
    moved = obs.copy()
    moved[:, dropped] = 9.0
    np.testing.assert_array_equal(weights(obs), weights(moved))


def test_policy_with_infinite_clip_is_not_saved(tmp_path):
    weights = PolicyWeights(
        mean=np.zeros(N), std=np.ones(N), clip_obs=math.inf, layers=("linear",),
        linear=((np.zeros((1, N)), np.zeros(1)),),
    )  # fmt: skip
    with pytest.raises(ValueError, match="clip_obs=inf"):
        weights.save(tmp_path)


def test_agent_refuses_a_policy_that_does_not_fit_its_card():
    weights = PolicyWeights(
        mean=np.zeros(N + 1), std=np.ones(N + 1), clip_obs=10.0, layers=("linear",),
        linear=((np.zeros((1, N + 1)), np.zeros(1)),),
    )  # fmt: skip
    with pytest.raises(AgentLoadError, match=f"card has {N} features"):
        Agent(Path("synthetic"), synthetic_card(), weights)


# --- the old format and its conversion ----------------------------------------------------


class NormalizedPolicy(nn.Module):
    """The structure old lrgym versions scripted into ``policy.pt``."""

    def __init__(self, actor: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.actor = actor
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.clip_obs = 5.0

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = torch.clamp((obs - self.mean) / self.std, -self.clip_obs, self.clip_obs)
        return torch.clamp(self.actor(x), -1.0, 1.0)


class Other(nn.Module):
    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(obs[:, :1])


def old_agent(path: Path, module: nn.Module | None = None) -> tuple[Path, torch.jit.ScriptModule]:
    """An agent directory in the old format: ``card.json`` (no policy entry) + ``policy.pt``."""
    if module is None:
        gen = torch.Generator().manual_seed(0)
        torch.manual_seed(0)
        actor = nn.Sequential(
            nn.Sequential(nn.Linear(N, 16), nn.Tanh(), nn.Linear(16, 8), nn.ReLU()),
            nn.Linear(8, 1),
        )
        with torch.no_grad():
            actor[1].weight.mul_(2.0)
        mean, std = torch.randn(N, generator=gen), torch.rand(N, generator=gen) + 0.2
        module = NormalizedPolicy(actor, mean, std)
    scripted = torch.jit.script(module.eval())
    path.mkdir(parents=True)
    torch.jit.save(scripted, str(path / LEGACY_POLICY))
    synthetic_card().save(path)
    card = json.loads((path / CARD).read_text())
    del card["policy"]  # as old lrgym wrote it
    (path / CARD).write_text(json.dumps(card, indent=2) + "\n")
    return path, scripted


def scripted_actions(scripted: torch.jit.ScriptModule, obs: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return scripted(torch.as_tensor(obs)).numpy().astype(np.float64)


@pytest.mark.filterwarnings(JIT_DEPRECATED)
def test_old_format_is_refused_then_converted_by_the_cli(tmp_path):
    path, scripted = old_agent(tmp_path / "old")
    with pytest.raises(AgentLoadError, match=r"old TorchScript format.*lrgym convert-agent"):
        load_agent(path)

    result = CliRunner().invoke(app, ["convert-agent", str(path)])
    assert result.exit_code == 0, result.output
    assert "max |action difference|" in " ".join(result.output.split())  # rich wraps lines
    assert not (path / LEGACY_POLICY).exists() and (path / POLICY).is_file()
    card = json.loads((path / CARD).read_text())
    assert card["policy"]["layers"] == ["linear", "tanh", "linear", "relu", "linear"]
    assert card["policy"]["clip_obs"] == 5.0

    agent = load_agent(path)
    obs = np.random.default_rng(1).uniform(-8, 8, (2000, N)).astype(np.float32)
    want = scripted_actions(scripted, obs)
    assert np.abs(want).max() > 0.5 and np.mean(np.abs(want) == 1.0) < 0.5  # a sharp check
    assert np.max(np.abs(agent.policy(obs) - want)) <= 1e-6
    assert np.max(np.abs(np.array([agent.act(o) for o in obs[:200]]) - want[:200, 0])) <= 1e-6


@pytest.mark.filterwarnings(JIT_DEPRECATED)
def test_convert_to_another_directory_leaves_the_source(tmp_path):
    src, scripted = old_agent(tmp_path / "old")
    (src / "notes.txt").write_text("kept")
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    done = convert_agent(src, tmp_path / "new")
    assert done.path == tmp_path / "new" and done.observations == 10_000
    assert done.max_abs_diff <= 1e-6
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before
    assert sorted(p.name for p in done.path.iterdir()) == [CARD, "notes.txt", POLICY]
    obs = check_observations(N, 100)
    got = load_agent(done.path).policy(obs)
    assert np.max(np.abs(got - scripted_actions(scripted, obs))) <= 1e-6
    with pytest.raises(AgentLoadError, match="not an empty directory"):
        convert_agent(src, done.path)
    with pytest.raises(AgentLoadError, match="already in the policy.safetensors format"):
        convert_agent(done.path)


@pytest.mark.filterwarnings(JIT_DEPRECATED)
def test_convert_refuses_an_unfamiliar_policy(tmp_path):
    path, _ = old_agent(tmp_path / "odd", Other())
    result = CliRunner().invoke(app, ["convert-agent", str(path)])
    assert result.exit_code == 2
    assert "not lrgym's NormalizedPolicy" in " ".join(result.output.split())
    assert (path / LEGACY_POLICY).is_file() and not (path / POLICY).exists()


# --- tampered files -----------------------------------------------------------------------


def edit_tensors(edit: Callable[[dict[str, np.ndarray]], None]) -> Callable[[Path], None]:
    def apply(path: Path) -> None:
        tensors = {k: np.array(v) for k, v in load_file(path / POLICY).items()}
        edit(tensors)
        save_file(tensors, str(path / POLICY))

    return apply


def edit_card(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(path: Path) -> None:
        card = json.loads((path / CARD).read_text())
        edit(card)
        (path / CARD).write_text(json.dumps(card))

    return apply


def set_nan(t: dict[str, np.ndarray]) -> None:
    t["layers.2.weight"][3, 4] = np.nan


def wider_input(t: dict[str, np.ndarray]) -> None:
    t["obs_mean"], t["obs_std"] = np.zeros(N + 1, np.float32), np.ones(N + 1, np.float32)
    t["layers.0.weight"] = np.zeros((64, N + 1), np.float32)


TAMPERED = {
    "wrong shape": (
        edit_tensors(lambda t: t.update({"layers.2.weight": t["layers.2.weight"][:, :63]})),
        r"layers\.2: weight \(64, 63\).*do not fit an input of 64",
    ),
    "missing tensor": (
        edit_tensors(lambda t: t.pop("obs_std")),
        r"missing \['obs_std'\]",
    ),
    "unexpected tensor": (
        edit_tensors(lambda t: t.update({"layers.1.weight": np.ones(3, np.float32)})),
        r"unexpected \['layers\.1\.weight'\]",
    ),
    "nan": (edit_tensors(set_nan), r"layers\.2\.weight has non-finite values"),
    "zero std": (
        edit_tensors(lambda t: t["obs_std"].__setitem__(0, 0.0)),
        "obs_std has values <= 0",
    ),
    "float64": (
        edit_tensors(lambda t: t.update({"obs_mean": t["obs_mean"].astype(np.float64)})),
        r"\['obs_mean'\] are not float32",
    ),
    "features count": (edit_tensors(wider_input), f"maps {N + 1} features.*card has {N}"),
    "unknown layer": (
        edit_card(lambda c: c["policy"]["layers"].__setitem__(1, "gelu")),
        r"unknown layer kind\(s\) \['gelu'\]",
    ),
    "layer list off": (
        edit_card(lambda c: c["policy"].update(layers=["linear", "tanh", "linear"])),
        "tensors do not match the layer list",
    ),
    "newer version": (
        edit_card(lambda c: c["policy"].update(version=2)),
        "version 2.*upgrade lrgym",
    ),
    "other format": (
        edit_card(lambda c: c["policy"].update(format="onnx")),
        "policy format 'onnx'",
    ),
    "no policy entry": (edit_card(lambda c: c.pop("policy")), "no 'policy' entry"),
    "truncated": (
        lambda p: (p / POLICY).write_bytes((p / POLICY).read_bytes()[:500]),
        "not a readable safetensors file",
    ),
    "missing file": (lambda p: (p / POLICY).unlink(), "policy.safetensors is missing"),
}


@pytest.mark.parametrize("case", list(TAMPERED))
def test_tampered_agent_is_refused(tmp_path, case):
    path = tmp_path / "agent"
    shutil.copytree(shipped_agent_dirs()[0], path)
    tamper, message = TAMPERED[case]
    tamper(path)
    with pytest.raises(AgentLoadError, match=message):
        load_agent(path)
