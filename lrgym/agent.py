"""Trained agents on disk: their card, their NumPy policy, and how to load them.

An agent directory holds

* ``card.json``: how the agent was trained and how it scored (:class:`AgentCard`), and
  under ``policy`` the policy network's structure (format, version, observation clip,
  layer list);
* ``policy.safetensors``: the policy's float32 tensors (``obs_mean``, ``obs_std`` and each
  Linear layer's ``layers.{i}.weight`` / ``layers.{i}.bias``): the deterministic PPO
  actor with observation normalisation folded in (:class:`PolicyWeights`). Loading reads
  plain numbers and runs the network in NumPy: nothing in the directory is executed or
  unpickled;
* ``ppo.zip`` and ``vecnormalize.pkl``: the stable-baselines3 policy and its
  normalisation statistics, to continue training or inspect with SB3 (never read here).

Agents written before this format (``policy.pt``, TorchScript) are refused with the
command that converts them: ``lrgym convert-agent DIR`` (:mod:`lrgym.agent_convert`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from lrgym._atomic import atomic_path, write_text_atomic
from lrgym.actions import LogLRAction
from lrgym.hyperparams import LR, HyperParamSet
from lrgym.signals import FEATURES, OBS_LAYOUT_VERSION

CARD = "card.json"
POLICY = "policy.safetensors"
LEGACY_POLICY = "policy.pt"
SB3_MODEL = "ppo.zip"
VECNORMALIZE = "vecnormalize.pkl"
POLICY_FORMAT = "lrgym-mlp"
POLICY_VERSION = 1
LAYER_KINDS = ("linear", "tanh", "relu")
CONVERT_COMMAND = "lrgym convert-agent"


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
        policy: The structure of ``policy.safetensors`` (:meth:`PolicyWeights.spec`:
            format, version, ``clip_obs``, layer list); empty in cards of agents in the
            old TorchScript format.
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
    policy: dict[str, Any] = field(default_factory=dict)

    def save(self, directory: str | Path) -> None:
        """Write ``card.json`` into ``directory`` atomically."""
        write_text_atomic(Path(directory) / CARD, json.dumps(asdict(self), indent=2) + "\n")


def _array(name: str, value: Any, ndim: int) -> np.ndarray:
    """``value`` as a read-only float32 array of ``ndim`` finite values, or ValueError."""
    arr = np.array(value, dtype=np.float32, copy=True)
    if arr.ndim != ndim:
        raise ValueError(f"{name} has shape {arr.shape}; expected {ndim} dimension(s)")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} has non-finite values (NaN or inf)")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class PolicyWeights:
    """A deterministic MLP policy as plain float32 arrays, with its NumPy forward pass.

    ``action = clip(mlp(clip((obs - mean) / std, ±clip_obs)), -1, 1)``, where ``mlp``
    applies ``layers`` in order: ``"linear"`` (``x @ weight.T + bias``, the next pair of
    :attr:`linear`), ``"tanh"`` or ``"relu"``. :func:`export_policy` builds one from an
    SB3 PPO policy, :meth:`save` writes its tensors, and :meth:`spec` is its structure as
    the card records it. The arrays are read-only copies; construction checks that their
    shapes chain and their values are finite (ValueError otherwise).

    Attributes:
        mean: Observation mean, shape ``(n_features,)``.
        std: Observation scale (``sqrt(var + eps)``), shape ``(n_features,)``, all > 0.
        clip_obs: Normalised observations are clipped to ``[-clip_obs, clip_obs]``
            (``math.inf``: not clipped).
        layers: Layer kinds in order, each one of :data:`LAYER_KINDS`.
        linear: ``(weight, bias)`` of each ``"linear"`` layer in order; ``weight`` has
            shape ``(out, in)``, ``bias`` ``(out,)``.
    """

    mean: np.ndarray
    std: np.ndarray
    clip_obs: float
    layers: tuple[str, ...]
    linear: tuple[tuple[np.ndarray, np.ndarray], ...]

    def __post_init__(self) -> None:
        """Copy into read-only float32 arrays and check the structure (ValueError)."""
        layers = tuple(self.layers)
        unknown = sorted({str(k) for k in layers} - set(LAYER_KINDS))
        if unknown:
            raise ValueError(
                f"unknown layer kind(s) {unknown}; this lrgym knows {', '.join(LAYER_KINDS)}"
            )
        n_linear = layers.count("linear")
        if n_linear == 0 or n_linear != len(self.linear):
            raise ValueError(
                f"the layer list {list(layers)} has {n_linear} linear layer(s) but "
                f"{len(self.linear)} weight/bias pair(s) were given (at least one needed)"
            )
        clip = float(self.clip_obs)
        if not clip > 0:  # NaN fails too
            raise ValueError(f"clip_obs must be > 0, got {self.clip_obs!r}")
        mean, std = _array("obs_mean", self.mean, 1), _array("obs_std", self.std, 1)
        if mean.shape != std.shape:
            raise ValueError(f"obs_mean has shape {mean.shape} but obs_std {std.shape}")
        if not (std > 0).all():
            raise ValueError("obs_std has values <= 0")
        linear, width, i = [], mean.shape[0], 0
        for position, kind in enumerate(layers):
            if kind != "linear":
                continue
            name = f"layers.{position}"
            weight = _array(f"{name}.weight", self.linear[i][0], 2)
            bias = _array(f"{name}.bias", self.linear[i][1], 1)
            if weight.shape[1] != width or bias.shape != (weight.shape[0],):
                raise ValueError(
                    f"{name}: weight {weight.shape} and bias {bias.shape} do not fit an "
                    f"input of {width} value(s) (expected weight (out, {width}), bias (out,))"
                )
            linear.append((weight, bias))
            width, i = weight.shape[0], i + 1
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)
        object.__setattr__(self, "clip_obs", clip)
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "linear", tuple(linear))
        pairs = iter(linear)
        plan = [(k, *next(pairs)) if k == "linear" else (k, None, None) for k in layers]
        object.__setattr__(self, "_plan", plan)
        object.__setattr__(self, "_clip", np.float32(clip))

    @property
    def n_features(self) -> int:
        """Observation size the policy takes."""
        return int(self.mean.shape[0])

    @property
    def n_actions(self) -> int:
        """Action size the policy gives."""
        return int(self.linear[-1][0].shape[0])

    def forward(self, obs: Any) -> np.ndarray:
        """Actions in [-1, 1] (float32) for one observation ``(n_features,)`` or a batch
        ``(n, n_features)``: shape ``(n_actions,)`` or ``(n, n_actions)``."""
        x = np.asarray(obs, dtype=np.float32)
        if x.ndim not in (1, 2) or x.shape[-1] != self.n_features:
            raise ValueError(
                f"observations of shape {x.shape}; the policy takes ({self.n_features},) "
                f"or (n, {self.n_features})"
            )
        return self._run(x)

    def _run(self, x: np.ndarray) -> np.ndarray:
        """:meth:`forward` on a checked float32 array.

        ``act()`` runs once per decision inside a user's training loop, so this skips the
        shape check and uses ``np.minimum``/``np.maximum`` rather than ``np.clip``, whose
        Python-level overhead (µs per call) dominates on arrays this small.
        """
        clip = self._clip  # type: ignore[attr-defined]
        x = np.minimum(np.maximum((x - self.mean) / self.std, -clip), clip)
        one = x.ndim == 1
        for kind, weight, bias in self._plan:  # type: ignore[attr-defined]
            if kind == "linear":
                x = (weight @ x if one else x @ weight.T) + bias
            elif kind == "tanh":
                x = np.tanh(x)
            else:
                x = np.maximum(x, np.float32(0.0))
        return np.minimum(np.maximum(x, np.float32(-1.0)), np.float32(1.0))

    __call__ = forward

    def spec(self) -> dict[str, Any]:
        """The structure as the card's ``policy`` entry records it."""
        return {
            "format": POLICY_FORMAT,
            "version": POLICY_VERSION,
            "clip_obs": self.clip_obs,
            "layers": list(self.layers),
        }

    def tensors(self) -> dict[str, np.ndarray]:
        """The arrays by their ``policy.safetensors`` names."""
        out = {"obs_mean": self.mean, "obs_std": self.std}
        positions = [p for p, kind in enumerate(self.layers) if kind == "linear"]
        for position, (weight, bias) in zip(positions, self.linear, strict=True):
            out[f"layers.{position}.weight"] = weight
            out[f"layers.{position}.bias"] = bias
        return out

    def save(self, directory: str | Path) -> Path:
        """Write ``policy.safetensors`` into ``directory`` atomically and return its path.

        The structure is not in that file: record :meth:`spec` as the card's ``policy``.
        """
        path = Path(directory) / POLICY
        if not math.isfinite(self.clip_obs):
            raise ValueError("a policy with clip_obs=inf cannot be saved; pass a finite clip")
        tensors = {k: np.ascontiguousarray(v) for k, v in self.tensors().items()}
        metadata = {"format": POLICY_FORMAT, "version": str(POLICY_VERSION)}
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=metadata)
        return path

    @classmethod
    def from_tensors(cls, spec: Mapping[str, Any], tensors: Mapping[str, Any]) -> PolicyWeights:
        """Rebuild from a card's ``policy`` entry and the tensors of ``policy.safetensors``.

        Raises:
            ValueError: unknown format or version, an unknown layer kind, tensor names
                that do not match the layer list, non-float32 tensors, shapes that do not
                chain or non-finite values.
        """
        if not isinstance(spec, Mapping):
            raise ValueError(f"the card's policy entry is {type(spec).__name__}, not an object")
        if spec.get("format") != POLICY_FORMAT:
            raise ValueError(f"policy format {spec.get('format')!r} is not {POLICY_FORMAT!r}")
        version = spec.get("version")
        if version != POLICY_VERSION:
            newer = isinstance(version, int) and version > POLICY_VERSION
            raise ValueError(
                f"policy format version {version!r}; this lrgym reads version "
                f"{POLICY_VERSION}" + ("; upgrade lrgym to load it" if newer else "")
            )
        layers, clip = spec.get("layers"), spec.get("clip_obs")
        if not isinstance(layers, list) or not all(isinstance(k, str) for k in layers):
            raise ValueError(f"the policy's layer list {layers!r} is not a list of names")
        unknown = sorted(set(layers) - set(LAYER_KINDS))
        if unknown:
            raise ValueError(
                f"unknown layer kind(s) {unknown}; this lrgym knows {', '.join(LAYER_KINDS)}"
            )
        if isinstance(clip, bool) or not isinstance(clip, int | float):
            raise ValueError(f"the policy's clip_obs {clip!r} is not a number")
        positions = [p for p, kind in enumerate(layers) if kind == "linear"]
        names = ["obs_mean", "obs_std"]
        names += [f"layers.{p}.{part}" for p in positions for part in ("weight", "bias")]
        missing, extra = sorted(set(names) - set(tensors)), sorted(set(tensors) - set(names))
        if missing or extra:
            raise ValueError(
                f"tensors do not match the layer list {layers}: missing {missing}, "
                f"unexpected {extra}"
            )
        wrong = [n for n in names if np.asarray(tensors[n]).dtype != np.float32]
        if wrong:
            raise ValueError(f"tensors {wrong} are not float32")
        return cls(
            mean=tensors["obs_mean"],
            std=tensors["obs_std"],
            clip_obs=float(clip),
            layers=tuple(layers),
            linear=tuple(
                (tensors[f"layers.{p}.weight"], tensors[f"layers.{p}.bias"]) for p in positions
            ),
        )

    def __repr__(self) -> str:
        widths = iter(w.shape[0] for w, _ in self.linear)
        layers = ", ".join(f"linear {next(widths)}" if k == "linear" else k for k in self.layers)
        return (
            f"PolicyWeights(features={self.n_features}, layers=[{layers}], "
            f"clip_obs={self.clip_obs})"
        )


def export_policy(model: Any, vecnormalize: Any, dropped: Sequence[int] = ()) -> PolicyWeights:
    """An SB3 PPO MLP policy's deterministic action as :class:`PolicyWeights`,
    observation normalisation folded in.

    The result computes what ``model.predict(vecnormalize.normalize_obs(obs),
    deterministic=True)`` does: the actor (``mlp_extractor.policy_net`` then
    ``action_net``) on ``clip((obs - mean) / sqrt(var + eps), ±clip_obs)``, clipped to
    [-1, 1].

    Args:
        model: A ``stable_baselines3.PPO`` with an ``MlpPolicy`` on a flat Box.
        vecnormalize: The ``VecNormalize`` whose ``obs_rms`` the policy was trained behind.
        dropped: Observation indices the policy was trained without (always 0); their
            input weights are zeroed, so the policy ignores them in deployment too.

    Raises:
        ValueError: the actor has a layer other than Linear, Tanh and ReLU.
    """
    from torch import nn  # only exporting needs torch; loading and acting are NumPy

    policy = model.policy
    layers: list[str] = []
    linear: list[tuple[np.ndarray, np.ndarray]] = []
    for module in nn.Sequential(policy.mlp_extractor.policy_net, policy.action_net).modules():
        if isinstance(module, nn.Sequential):
            continue
        if isinstance(module, nn.Linear):
            weight = module.weight.detach().cpu().numpy().astype(np.float32, copy=True)
            bias = (
                np.zeros(weight.shape[0], np.float32)
                if module.bias is None
                else module.bias.detach().cpu().numpy().astype(np.float32, copy=True)
            )
            layers.append("linear")
            linear.append((weight, bias))
        elif isinstance(module, nn.Tanh | nn.ReLU):
            layers.append("tanh" if isinstance(module, nn.Tanh) else "relu")
        else:
            raise ValueError(
                f"cannot export a policy with a {type(module).__name__} layer; lrgym agents "
                f"are MLPs of {', '.join(LAYER_KINDS)} layers"
            )
    if not linear:
        raise ValueError("cannot export a policy without a Linear layer")
    linear[0][0][:, list(dropped)] = 0.0
    rms = vecnormalize.obs_rms
    var = np.asarray(rms.var, dtype=np.float32)
    return PolicyWeights(
        mean=np.asarray(rms.mean, dtype=np.float32),
        std=np.sqrt(var + np.float32(vecnormalize.epsilon)),
        clip_obs=float(vecnormalize.clip_obs),
        layers=tuple(layers),
        linear=tuple(linear),
    )


class Agent:
    """A loaded agent: :meth:`act` maps one observation to its action (deterministic).

    Build one with :func:`load_agent`, or directly from a card and
    :class:`PolicyWeights` (e.g. a synthetic policy in tests).

    Attributes:
        card: The agent's :class:`AgentCard`.
        path: Its directory.
        policy: Its :class:`PolicyWeights` (``policy(obs_batch)`` gives actions).
        action_map: How its actions change the LR (action dimension 0).
        hparams: The hyperparameters it controls (``card.hparams``) and how.

    Raises:
        AgentLoadError: the policy's input or output size does not match the card's
            features or hyperparameters.
    """

    def __init__(self, path: Path, card: AgentCard, policy: PolicyWeights) -> None:
        self.path = Path(path)
        self.card = card
        self.policy = policy
        self.action_map = LogLRAction(**card.action)
        self.hparams = HyperParamSet.from_specs(card.hparams, card.hparam_specs)
        if policy.n_features != len(card.features) or policy.n_actions != len(self.hparams):
            raise AgentLoadError(
                f"{self.path}: the policy maps {policy.n_features} features to "
                f"{policy.n_actions} action(s), but the card has {len(card.features)} "
                f"features and {len(self.hparams)} hyperparameter(s) {card.hparams}; "
                "retrain the agent or re-export it"
            )
        self._single = len(self.hparams) == 1

    def act(self, obs: np.ndarray) -> float | np.ndarray:
        """The action for one observation, each value in [-1, 1].

        A float (the log2 LR multiplier) for an LR-only agent such as the shipped
        ``default``; a float64 array with one value per name in ``card.hparams`` otherwise.
        """
        x = np.asarray(obs, dtype=np.float32).reshape(-1)
        if x.shape[0] != self.policy.n_features:
            raise ValueError(
                f"observation has {x.shape[0]} values; agent {self.card.name!r} takes "
                f"{self.policy.n_features} ({', '.join(self.card.features)})"
            )
        out = self.policy._run(x)
        return float(out[0]) if self._single else out.astype(np.float64)

    def __repr__(self) -> str:
        return (
            f"Agent(name={self.card.name!r}, hparams={list(self.card.hparams)}, "
            f"path={str(self.path)!r})"
        )


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

    Reads ``card.json`` and ``policy.safetensors`` as data only (no TorchScript, no
    pickle) and checks the tensors against the card.

    Raises:
        AgentLoadError: unknown name, missing or corrupt files, tensors that do not match
            the card's network structure, features or hyperparameters, a card whose
            observation-layout version does not match the installed lrgym, or an agent in
            the old TorchScript format (the message names ``lrgym convert-agent``).
    """
    path = resolve_agent(name_or_path)
    card = load_card(path)
    file = path / POLICY
    if not file.is_file():
        if (path / LEGACY_POLICY).is_file():
            raise AgentLoadError(
                f"{path} holds an agent in the old TorchScript format ({LEGACY_POLICY}), "
                f"which this lrgym no longer loads; convert it once with "
                f"`{CONVERT_COMMAND} {path}` (it runs that TorchScript: convert only "
                "agents you trust)"
            )
        raise AgentLoadError(f"{file} is missing; retrain the agent or re-export it")
    if not card.policy:
        raise AgentLoadError(
            f"{path / CARD} has no 'policy' entry describing {POLICY}; the agent directory "
            "is incomplete, retrain the agent or re-export it"
        )
    try:
        tensors = load_file(file)
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise AgentLoadError(
            f"{file} is not a readable safetensors file ({reason}); retrain the agent or "
            "re-export it"
        ) from None
    try:
        weights = PolicyWeights.from_tensors(card.policy, tensors)
    except ValueError as exc:
        raise AgentLoadError(f"{file}: {exc}; retrain the agent or re-export it") from None
    return Agent(path, card, weights)
