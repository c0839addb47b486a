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
* ``training.safetensors`` and ``training.json``: the PPO training state (policy and
  value networks, optimizer, normalisation statistics, settings) to continue training
  with ``lrgym train --init-from`` (:mod:`lrgym.agents.training_state`; never read here).
  Nothing in an agent directory is a pickle.

Agents written before this format (``policy.pt``, TorchScript) are refused with the
command that converts them: ``lrgym convert-agent DIR`` (:mod:`lrgym.deploy.agent_convert`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file

from lrgym.core.actions import LogLRAction
from lrgym.core.hyperparams import LR, HyperParamSet
from lrgym.core.signals import FEATURES, OBS_LAYOUT_VERSION
from lrgym.deploy.policy_weights import POLICY, PolicyWeights
from lrgym.io._atomic import write_text_atomic
from lrgym.io.file_checks import MAX_WEIGHTS_BYTES, check_regular_file, read_json
from lrgym.io.shipped import is_shipped as _is_shipped
from lrgym.io.shipped import shipped_names, shipped_path

CARD = "card.json"
LEGACY_POLICY = "policy.pt"
TRAINING = "training"
"""Stem of an agent's training state, ``training.safetensors`` + ``training.json``."""
LEGACY_SB3_FILES = ("ppo.zip", "vecnormalize.pkl")
"""SB3 pickles of earlier lrgym versions (``lrgym convert-agent`` converts them)."""
CONVERT_COMMAND = "lrgym convert-agent"


class AgentLoadError(ValueError):
    """An agent could not be loaded; the message says why and what to do."""


@dataclass
class AgentCard:
    """What an agent is, how it was made and how it scored.

    Attributes:
        name: Agent name.
        lrgym_version: lrgym version that trained it.
        obs_layout_version: :data:`lrgym.core.signals.OBS_LAYOUT_VERSION` it was trained with.
        features: Observation feature names, in order.
        action: The action mapping (:class:`~lrgym.core.actions.LogLRAction` fields).
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
            (:class:`~lrgym.core.hyperparams.HyperParam` fields by name).
        policy: The structure of ``policy.safetensors`` (:meth:`PolicyWeights.spec`:
            format, version, ``clip_obs``, layer list); empty in cards of agents in the
            old TorchScript format.
        notes: What a reader of the card must know that no other field says (e.g. how
            the directory's SB3 files were made).
        members: For an ensemble (:class:`AgentEnsemble`), its members' sub-directories,
            each a complete agent directory; the ensemble acts with their mean action.
            Empty for a single agent.
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
    notes: list[str] = field(default_factory=list)
    members: list[str] = field(default_factory=list)

    def save(self, directory: str | Path) -> None:
        """Write ``card.json`` into ``directory`` atomically, as strict JSON.

        Raises:
            ValueError: a value is NaN or infinite (strict JSON has no such numbers).
        """
        try:
            text = json.dumps(asdict(self), indent=2, allow_nan=False)
        except ValueError:
            raise ValueError(
                f"card of {self.name!r} holds a NaN or infinite number; cards are strict JSON"
            ) from None
        write_text_atomic(Path(directory) / CARD, text + "\n")


_CARD_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "lrgym_version": (str,),
    "obs_layout_version": (int,),
    "features": (list,),
    "action": (dict,),
    "tasks": (list,),
    "total_timesteps": (int,),
    "seed": (int,),
    "wall_seconds": (int, float),
    "command": (str,),
    "selected_timesteps": (int,),
    "config": (dict,),
    "evaluation": (dict,),
    "notes": (list,),
    "hparams": (list,),
    "hparam_specs": (dict,),
    "policy": (dict,),
    "members": (list,),
}
"""JSON type of each card field (lists of names hold strings only)."""


_ACTION_KEYS = {f.name for f in fields(LogLRAction)}


def _check_card(data: object, card_path: Path) -> dict:
    """``data`` if it has the card's fields with their JSON types, else AgentLoadError."""
    if not isinstance(data, dict):
        raise AgentLoadError(f"{card_path} is corrupt (not a JSON object); retrain the agent")
    for key, value in data.items():
        types = _CARD_TYPES.get(key)
        if types is None:
            continue  # AgentCard(**data) names unknown fields
        wrong = isinstance(value, bool) or not isinstance(value, types)
        if not wrong and key in ("features", "tasks", "hparams", "members"):
            wrong = not all(isinstance(v, str) for v in value)
        if not wrong and key == "action":  # known keys; LogLRAction checks the values
            wrong = not set(value) <= _ACTION_KEYS
        if wrong:
            raise AgentLoadError(
                f"{card_path} is corrupt: field {key!r} is {value!r}, expected "
                f"{' or '.join(t.__name__ for t in types)}; retrain or re-download the agent"
            )
    return data


def is_shipped(path: str | Path) -> bool:
    """True if ``path`` is an agent shipped inside the installed lrgym package."""
    return _is_shipped("agent", path)


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


class AgentEnsemble(Agent):
    """Agents of one recipe (its training seeds) acting as one: the mean of their actions.

    Load one with :func:`load_agent` from a directory whose card lists ``members``
    (written by :func:`lrgym.agents.ensemble.write_ensemble`, ``lrgym ensemble``). Each
    member keeps its own observation normalisation; the members must share the features,
    hyperparameters and action mapping, so the mean action means the same thing for each.

    Attributes:
        members: The member agents.
        policy: The first member's policy (its size checks the card); the ensemble's
            action is :meth:`act`'s, not this policy's.
    """

    def __init__(self, path: Path, card: AgentCard, members: list[Agent]) -> None:
        first = members[0]
        for member in members[1:]:
            same = (member.card.features, member.card.hparams, member.action_map)
            if same != (first.card.features, first.card.hparams, first.action_map):
                raise AgentLoadError(
                    f"{path}: ensemble members {first.path.name} and {member.path.name} "
                    "differ in features, hyperparameters or action mapping; an ensemble "
                    "holds seeds of one recipe"
                )
        super().__init__(path, card, first.policy)
        self.members = members

    def act(self, obs: np.ndarray) -> float | np.ndarray:
        """The members' mean action for one observation (see :meth:`Agent.act`)."""
        actions = [member.act(obs) for member in self.members]
        mean = np.mean(np.asarray(actions, dtype=np.float64), axis=0)
        return float(mean) if self._single else mean


def shipped_agents() -> list[str]:
    """Names of the agents shipped in ``lrgym.trained_agents``."""
    return shipped_names("agent")


def resolve_agent(name_or_path: str | Path) -> Path:
    """The directory of a shipped agent name or a user's agent path."""
    path = Path(name_or_path)
    if path.is_dir():
        return path
    shipped = shipped_path("agent", str(name_or_path))
    if shipped is not None:
        return shipped
    raise AgentLoadError(
        f"no agent {str(name_or_path)!r}: not a directory and not a shipped agent "
        f"(shipped: {', '.join(shipped_agents()) or 'none'}). Pass a path written by "
        "`lrgym train --out PATH`."
    )


def load_card(path: str | Path) -> AgentCard:
    """Read and check an agent's card (layout version and features must match this lrgym)."""
    card_path = Path(path) / CARD
    if not card_path.exists() and not card_path.is_symlink():
        raise AgentLoadError(f"{card_path} is missing: is {path} an lrgym agent directory?")
    try:  # a regular file of bounded size, strict JSON (lrgym.io.file_checks)
        data = read_json(card_path, "agent card", error=AgentLoadError, expect=None)
        card = AgentCard(**_check_card(data, card_path))
    except (ValueError, TypeError, OSError) as exc:  # JSONDecodeError is a ValueError
        if isinstance(exc, AgentLoadError):
            raise
        raise AgentLoadError(f"{card_path} is corrupt ({exc}); retrain or re-download it") from None
    try:  # ranges: a negative step, min_lr >= max_lr ... (LogLRAction checks them)
        LogLRAction(**card.action)
    except (ValueError, TypeError) as exc:
        raise AgentLoadError(
            f"{card_path}: its action mapping {card.action} is invalid ({exc}); the card is "
            "corrupt, retrain or re-download the agent"
        ) from None
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
    if not isinstance(name_or_path, str | Path):
        raise TypeError(
            f"load_agent takes a shipped agent's name or an agent directory (str or Path), "
            f"got {type(name_or_path).__name__} {name_or_path!r}"
        )
    path = resolve_agent(name_or_path)
    card = load_card(path)
    if card.members:
        return _load_ensemble(path, card)
    file = path / POLICY
    if not file.exists():
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
    check_regular_file(file, "policy weights", max_bytes=MAX_WEIGHTS_BYTES, error=AgentLoadError)
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
        return Agent(path, card, weights)
    except AgentLoadError:
        raise
    except (ValueError, TypeError, KeyError) as exc:  # a card field of the wrong shape
        raise AgentLoadError(f"{file}: {exc}; retrain the agent or re-export it") from None


def _load_ensemble(path: Path, card: AgentCard) -> AgentEnsemble:
    """The ensemble in ``path``: each member a plain sub-directory holding an agent."""
    members = []
    for name in card.members:
        member = path / name
        if Path(name).name != name or name in ("", ".", "..") or not member.is_dir():
            raise AgentLoadError(
                f"{path / CARD}: ensemble member {name!r} is not a sub-directory of {path}; "
                "the ensemble is incomplete, rebuild it with `lrgym ensemble`"
            )
        agent = load_agent(member)
        if isinstance(agent, AgentEnsemble):
            raise AgentLoadError(f"{member}: an ensemble member cannot itself be an ensemble")
        members.append(agent)
    ensemble = AgentEnsemble(path, card, members)
    first = members[0]
    mine = (card.features, card.hparams, LogLRAction(**card.action))
    if mine != (first.card.features, first.card.hparams, first.action_map):
        raise AgentLoadError(
            f"{path / CARD}: the ensemble's features, hyperparameters or action mapping "
            "differ from its members'; rebuild it with `lrgym ensemble`"
        )
    return ensemble
