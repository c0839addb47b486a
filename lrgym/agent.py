"""Trained agents on disk: their card, their torch-only policy, and how to load them.

An agent directory holds

* ``card.json``: how the agent was trained and how it scored (:class:`AgentCard`);
* ``policy.pt``: the policy as TorchScript with observation normalisation folded in,
  so deployment needs torch only;
* ``ppo.zip`` and ``vecnormalize.pkl``: the stable-baselines3 policy and its
  normalisation statistics, to continue training or inspect with SB3.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lrgym._atomic import write_text_atomic
from lrgym.actions import LogLRAction
from lrgym.hyperparams import LR, HyperParamSet
from lrgym.signals import FEATURES, OBS_LAYOUT_VERSION

CARD = "card.json"
POLICY = "policy.pt"
SB3_MODEL = "ppo.zip"
VECNORMALIZE = "vecnormalize.pkl"


class AgentLoadError(ValueError):
    """An agent could not be loaded; the message says why and what to do."""


@dataclass
class AgentCard:
    """What an agent is, how it was made and how it scored.

    Attributes:
        name: Agent name.
        lrgym_version: lrgym version that trained it.
        obs_layout_version: :data:`lrgym.signals.OBS_LAYOUT_VERSION` it was trained with.
        features: Observation feature names, in order.
        action: The action mapping (:class:`~lrgym.actions.LogLRAction` fields).
        tasks: Task ids it was meta-trained on.
        total_timesteps: Environment steps of meta-training.
        selected_timesteps: Timesteps of the exported policy (model selection may pick
            an earlier checkpoint than the last).
        seed: Meta-training seed.
        wall_seconds: Meta-training wall time.
        command: The command that reproduces it.
        config: The full training configuration.
        evaluation: Evaluation tables (markdown) by name, e.g. ``"held-out"``.
        hparams: Hyperparameters it controls, one per action dimension, ``"lr"`` first
            (missing in older cards: ``["lr"]`` only).
        hparam_specs: Bounds and scales of the extra hyperparameters
            (:class:`~lrgym.hyperparams.HyperParam` fields by name).
    """

    name: str
    lrgym_version: str
    obs_layout_version: int
    features: list[str]
    action: dict[str, float]
    tasks: list[str]
    total_timesteps: int
    seed: int
    wall_seconds: float
    command: str
    selected_timesteps: int = 0
    config: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, str] = field(default_factory=dict)
    hparams: list[str] = field(default_factory=lambda: [LR])
    hparam_specs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def save(self, directory: str | Path) -> None:
        """Write ``card.json`` into ``directory`` atomically."""
        write_text_atomic(Path(directory) / CARD, json.dumps(asdict(self), indent=2) + "\n")


class NormalizedPolicy(nn.Module):
    """Deterministic PPO actor with VecNormalize's observation transform folded in.

    ``action = clip(actor(clip((obs - mean) / sqrt(var + eps), ±clip_obs)), -1, 1)``,
    exactly what SB3's ``predict(deterministic=True)`` does behind ``VecNormalize``.
    """

    def __init__(
        self, actor: nn.Module, mean: np.ndarray, var: np.ndarray, eps: float, clip_obs: float
    ) -> None:
        super().__init__()
        self.actor = actor
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.sqrt(torch.as_tensor(var, dtype=torch.float32) + eps))
        self.clip_obs = float(clip_obs)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = torch.clamp((obs - self.mean) / self.std, -self.clip_obs, self.clip_obs)
        return torch.clamp(self.actor(x), -1.0, 1.0)


def export_policy(
    model: Any, vecnormalize: Any, dropped: Sequence[int] = ()
) -> torch.jit.ScriptModule:
    """TorchScript of an SB3 PPO MLP policy's deterministic action, normalisation folded in.

    Args:
        model: A ``stable_baselines3.PPO`` with an ``MlpPolicy`` on a flat Box.
        vecnormalize: The ``VecNormalize`` whose ``obs_rms`` the policy was trained behind.
        dropped: Observation indices the policy was trained without (always 0); their
            input weights are zeroed, so the policy ignores them in deployment too.
    """
    policy = model.policy
    actor = nn.Sequential(policy.mlp_extractor.policy_net, policy.action_net)
    actor = copy.deepcopy(actor).cpu().eval()
    first = next(m for m in actor.modules() if isinstance(m, nn.Linear))
    with torch.no_grad():
        first.weight[:, list(dropped)] = 0.0
    rms = vecnormalize.obs_rms
    module = NormalizedPolicy(actor, rms.mean, rms.var, vecnormalize.epsilon, vecnormalize.clip_obs)
    return torch.jit.script(module.eval())


def _numpy_forward(
    policy: torch.jit.ScriptModule,
) -> Callable[[np.ndarray], float | np.ndarray] | None:
    """The exported policy's forward pass in NumPy, or None if its structure is unfamiliar.

    The forward returns a float for a one-action policy and an array otherwise.

    Written by hand because ``act()`` runs once per decision inside a user's training
    loop, where TorchScript's per-call overhead dominates this tiny MLP (about 30 µs vs
    7 µs). It reads zero-copy views of the module's own float32 tensors and is used only
    for a :class:`NormalizedPolicy` of Linear/Tanh/ReLU layers whose NumPy output matches
    the module's on probe observations.
    """

    def kind(m: Any) -> str:
        return str(getattr(m, "original_name", type(m).__name__))

    if kind(policy) != "NormalizedPolicy":
        return None
    state = {k: v.detach().numpy() for k, v in policy.state_dict().items()}
    mean, std, clip = state.pop("mean"), state.pop("std"), float(policy.clip_obs)
    layers: list[tuple[str, Any, Any]] = []  # (kind, weight, bias)
    for name, m in policy.actor.named_modules(prefix="actor"):
        if kind(m) == "Linear":
            layers.append(("Linear", state.pop(f"{name}.weight"), state.pop(f"{name}.bias")))
        elif kind(m) in ("Tanh", "ReLU"):
            layers.append((kind(m), None, None))
        elif kind(m) != "Sequential":
            return None
    if state:  # tensors the walk did not use: not the structure we know
        return None

    def hidden(obs: np.ndarray) -> np.ndarray:
        x = np.clip((np.asarray(obs, dtype=np.float32).reshape(-1) - mean) / std, -clip, clip)
        for layer, weight, bias in layers:
            if layer == "Linear":
                x = weight @ x + bias
            else:
                x = np.tanh(x) if layer == "Tanh" else np.maximum(x, 0.0)
        return x

    def forward_one(obs: np.ndarray) -> float:
        return min(1.0, max(-1.0, float(hidden(obs)[0])))

    def forward_many(obs: np.ndarray) -> np.ndarray:
        return np.clip(hidden(obs), -1.0, 1.0).astype(np.float64)

    probes = np.random.default_rng(0).uniform(-3, 3, (128, mean.shape[0])).astype(np.float32)
    with torch.no_grad():
        want = policy(torch.as_tensor(probes)).numpy()
    forward = forward_one if want.shape[1] == 1 else forward_many
    got = np.array([forward(o) for o in probes]).reshape(want.shape)
    return forward if np.allclose(got, want, rtol=0.0, atol=1e-5) else None


class Agent:
    """A loaded agent: :meth:`act` maps one observation to its action (deterministic).

    Attributes:
        card: The agent's :class:`AgentCard`.
        path: Its directory.
        action_map: How its actions change the LR (action dimension 0).
        hparams: The hyperparameters it controls (``card.hparams``) and how.
    """

    def __init__(self, path: Path, card: AgentCard, policy: torch.jit.ScriptModule) -> None:
        self.path = path
        self.card = card
        self.policy = policy
        self.action_map = LogLRAction(**card.action)
        self.hparams = HyperParamSet.from_specs(card.hparams, card.hparam_specs)
        self._forward = _numpy_forward(policy)

    def act(self, obs: np.ndarray) -> float | np.ndarray:
        """The action for one observation, each value in [-1, 1].

        A float (the log2 LR multiplier) for an LR-only agent such as the shipped
        ``default``; an array with one value per name in ``card.hparams`` otherwise.
        """
        if self._forward is not None:
            return self._forward(obs)
        with torch.no_grad():
            x = torch.as_tensor(np.asarray(obs, dtype=np.float32)).reshape(1, -1)
            out = self.policy(x)[0]
        if len(self.hparams) == 1:
            return float(out[0])
        return out.numpy().astype(np.float64)


def shipped_agents() -> list[str]:
    """Names of the agents shipped in ``lrgym.trained_agents``."""
    root = resources.files("lrgym.trained_agents")
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / CARD).is_file())


def resolve_agent(name_or_path: str | Path) -> Path:
    """The directory of a shipped agent name or a user's agent path."""
    path = Path(name_or_path)
    if path.is_dir():
        return path
    shipped = resources.files("lrgym.trained_agents") / str(name_or_path)
    if shipped.is_dir():
        return Path(str(shipped))
    raise AgentLoadError(
        f"no agent {str(name_or_path)!r}: not a directory and not a shipped agent "
        f"(shipped: {', '.join(shipped_agents()) or 'none'}). Pass a path written by "
        "`lrgym train --out PATH`."
    )


def load_card(path: str | Path) -> AgentCard:
    """Read and check an agent's card (layout version and features must match this lrgym)."""
    card_path = Path(path) / CARD
    try:
        card = AgentCard(**json.loads(card_path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise AgentLoadError(
            f"{card_path} is missing: is {path} an lrgym agent directory?"
        ) from None
    except (json.JSONDecodeError, TypeError) as exc:
        raise AgentLoadError(f"{card_path} is corrupt ({exc}); retrain or re-download it") from None
    try:
        hparams = HyperParamSet.from_specs(card.hparams, card.hparam_specs)
    except (ValueError, TypeError) as exc:
        raise AgentLoadError(
            f"{card_path}: its hyperparameters {card.hparams} are not ones this lrgym "
            f"controls ({exc}); install lrgym {card.lrgym_version} to use it"
        ) from None
    n = len(FEATURES)
    if card.obs_layout_version != OBS_LAYOUT_VERSION or card.features[:n] != list(FEATURES):
        raise AgentLoadError(
            f"agent {card.name!r} was trained with observation layout "
            f"v{card.obs_layout_version}, this lrgym uses v{OBS_LAYOUT_VERSION}; install "
            f"lrgym {card.lrgym_version} to use it, or retrain it with `lrgym train`"
        )
    if card.features != hparams.features:
        raise AgentLoadError(
            f"{card_path}: features {card.features[n:]} after the standard ones do not "
            f"match its hyperparameters {card.hparams} (expected {hparams.features[n:]}); "
            "the card is corrupt, retrain the agent"
        )
    return card


def load_agent(name_or_path: str | Path = "default") -> Agent:
    """Load a shipped agent by name (``"default"``) or a user's agent directory.

    Raises:
        AgentLoadError: unknown name, missing or corrupt files, or a card whose
            observation-layout version does not match the installed lrgym.
    """
    path = resolve_agent(name_or_path)
    card = load_card(path)
    try:
        policy = torch.jit.load(str(path / POLICY), map_location="cpu")
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        raise AgentLoadError(
            f"{path / POLICY} is missing or corrupt ({str(exc).splitlines()[0]}); "
            "retrain the agent or re-export it"
        ) from None
    n = len(card.hparams)
    try:
        with torch.no_grad():
            out = policy(torch.zeros(1, len(card.features)))
    except RuntimeError as exc:
        raise AgentLoadError(
            f"{path / POLICY} does not take the card's {len(card.features)} features "
            f"({str(exc).splitlines()[0]}); retrain the agent or re-export it"
        ) from None
    if tuple(out.shape) != (1, n) or not bool(torch.isfinite(out).all()):
        raise AgentLoadError(
            f"{path / POLICY} does not map observations to {n} action(s), one per "
            f"hyperparameter {card.hparams}; retrain the agent or re-export it"
        )
    return Agent(path, card, policy)
