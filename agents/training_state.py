"""A PPO training state as data: ``STEM.safetensors`` (tensors) + ``STEM.json`` (the rest).

What SB3's ``PPO.save`` (a zip of cloudpickled entries) and ``VecNormalize.save`` (a
pickle) keep, without pickle, so loading a run folder or an agent can never run code:

* tensors (``STEM.safetensors``): the policy and value networks (``policy.*``, the
  policy's ``state_dict``), the Adam state (``optimizer.state.<i>.<key>``), the
  observation and return statistics (``obs_rms.*``, ``ret_rms.*``), the running
  returns (``returns``), the last observation and episode starts of the rollout in
  progress (``last_obs``, ``last_episode_starts``), the episode statistics SB3 logs
  (``ep_info.r/l/t``, ``ep_success``) and the torch and NumPy global RNG states
  (``rng.torch``, ``rng.numpy``);
* JSON (``STEM.json``): the PPO hyperparameters, the optimizer's ``param_groups``,
  ``VecNormalize``'s settings and counts, the counters (``num_timesteps``, updates), the
  Python RNG state and whatever the caller adds under ``run`` (a checkpoint's
  environment replay state and next validation).

:func:`build_model` rebuilds a model through SB3's public API: ``PPO(...)`` with the saved
hyperparameters, ``set_parameters`` with the saved ``state_dict``\\ s, and ``VecNormalize``
with its statistics set from arrays. SB3 has no public setter for a rollout in progress
(``_last_obs``, ``_last_episode_starts``, ``_n_updates``, ``ep_info_buffer``): those are
set as the attributes ``BaseAlgorithm.load`` itself sets. Files are written atomically;
callers list them in the folder's manifest (:mod:`lrgym.manifest`), which is verified
before they are read, as an integrity check (the files are data: nothing in them runs).
"""

from __future__ import annotations

import json
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import stable_baselines3
import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file
from stable_baselines3 import PPO
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from lrgym import manifest
from lrgym._atomic import atomic_path, write_text_atomic

FORMAT = "lrgym-training-state"
VERSION = 1
MAX_JSON_BYTES = 64 << 20
"""Largest ``STEM.json`` read (a checkpoint's replay state is well under 1 MB)."""

PPO_SETTINGS = (
    "learning_rate",
    "n_steps",
    "batch_size",
    "n_epochs",
    "gamma",
    "gae_lambda",
    "clip_range",
    "clip_range_vf",
    "normalize_advantage",
    "ent_coef",
    "vf_coef",
    "max_grad_norm",
    "target_kl",
    "stats_window_size",
    "seed",
    "policy_kwargs",
)
"""The ``PPO(...)`` arguments a training state records (constant schedules only)."""

NORM_SETTINGS = ("norm_obs", "norm_reward", "clip_obs", "clip_reward", "gamma", "epsilon")
"""The ``VecNormalize(...)`` arguments a training state records."""


class TrainingStateError(ValueError):
    """A training state cannot be written or read; the message says why and what to do."""


def state_files(stem: str) -> tuple[str, str]:
    """File names of the training state ``stem``: tensors, then JSON."""
    return f"{stem}.safetensors", f"{stem}.json"


@dataclass(frozen=True)
class TrainingState:
    """A training state in memory (see the module docstring for the keys).

    Attributes:
        tensors: Arrays by name (what ``STEM.safetensors`` holds).
        meta: JSON-able settings and counters (what ``STEM.json`` holds).
        source: Where it was read from (for error messages).
    """

    tensors: dict[str, np.ndarray]
    meta: dict[str, Any]
    source: str = "memory"

    @property
    def num_timesteps(self) -> int:
        """The model's timesteps when the state was captured."""
        return int(self.meta["progress"]["num_timesteps"])

    @property
    def run(self) -> dict[str, Any]:
        """What the caller recorded beside the model (e.g. a checkpoint's replay state)."""
        return self.meta.get("run") or {}


# --- capture --------------------------------------------------------------------------


def _constant(value: Any, name: str) -> float:
    """``value`` as a float; a schedule (callable) must be constant (checked at 3 points)."""
    if callable(value):
        points = {float(value(p)) for p in (1.0, 0.5, 0.0)}
        if len(points) != 1:
            raise TrainingStateError(
                f"PPO's {name} is a schedule; a training state records constant values only"
            )
        return points.pop()
    return float(value)


def _json_able(value: Any, name: str) -> Any:
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError):
        raise TrainingStateError(
            f"PPO's {name} {value!r} is not plain JSON; a training state cannot record it"
        ) from None


def ppo_settings(model: PPO) -> dict[str, Any]:
    """The ``PPO(...)`` arguments that rebuild ``model`` (:data:`PPO_SETTINGS`)."""
    if type(model.policy) is not ActorCriticPolicy:
        raise TrainingStateError(
            f"the model's policy is a {type(model.policy).__name__}; a training state holds "
            "SB3's MlpPolicy (ActorCriticPolicy) only"
        )
    vf = model.clip_range_vf
    return {
        "learning_rate": _constant(model.learning_rate, "learning_rate"),
        "n_steps": int(model.n_steps),
        "batch_size": int(model.batch_size),
        "n_epochs": int(model.n_epochs),
        "gamma": float(model.gamma),
        "gae_lambda": float(model.gae_lambda),
        "clip_range": _constant(model.clip_range, "clip_range"),
        "clip_range_vf": None if vf is None else _constant(vf, "clip_range_vf"),
        "normalize_advantage": bool(model.normalize_advantage),
        "ent_coef": float(model.ent_coef),
        "vf_coef": float(model.vf_coef),
        "max_grad_norm": float(model.max_grad_norm),
        "target_kl": None if model.target_kl is None else float(model.target_kl),
        "stats_window_size": int(model._stats_window_size),
        "seed": None if model.seed is None else int(model.seed),
        "policy_kwargs": _json_able(dict(model.policy_kwargs), "policy_kwargs"),
    }


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().contiguous().numpy().copy()


def _optimizer(state: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], list[dict]]:
    """An optimizer ``state_dict`` as tensors and JSON-able ``param_groups``."""
    tensors: dict[str, np.ndarray] = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if not isinstance(value, torch.Tensor):
                raise TrainingStateError(f"optimizer state {index}.{key} is not a tensor")
            tensors[f"optimizer.state.{int(index)}.{key}"] = _numpy(value)
    groups = [_json_able(dict(g), "optimizer param_groups") for g in state["param_groups"]]
    return tensors, groups


def global_rng() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The torch, NumPy and Python global RNG states: arrays and JSON."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return (
        {"rng.torch": torch.get_rng_state().numpy().copy(), "rng.numpy": np.asarray(keys)},
        {
            "numpy": {
                "name": str(name),
                "pos": int(pos),
                "has_gauss": int(has_gauss),
                "cached_gaussian": float(cached),
            },
            "python": [int(version), [int(x) for x in internal], gauss],
        },
    )


def capture(
    model: PPO,
    norm: VecNormalize,
    returns: np.ndarray | None = None,
    rng: tuple[dict[str, np.ndarray], dict[str, Any]] | None = None,
    run: dict[str, Any] | None = None,
) -> TrainingState:
    """The training state of ``model`` behind ``norm`` (nothing is written).

    Args:
        model: The PPO model.
        norm: Its ``VecNormalize`` (statistics and settings; need not wrap an env).
        returns: ``norm``'s running returns (default: none recorded).
        rng: Global RNG states from :func:`global_rng` (default: none recorded).
        run: JSON-able state of the caller (e.g. environment replay state).
    """
    tensors = {f"policy.{k}": _numpy(v) for k, v in model.policy.state_dict().items()}
    optim_tensors, groups = _optimizer(model.policy.optimizer.state_dict())
    tensors.update(optim_tensors)
    obs_rms, ret_rms = norm.obs_rms, norm.ret_rms
    if isinstance(obs_rms, dict):
        raise TrainingStateError("dict observations are not supported by a training state")
    tensors["obs_rms.mean"] = np.asarray(obs_rms.mean, dtype=np.float64)
    tensors["obs_rms.var"] = np.asarray(obs_rms.var, dtype=np.float64)
    tensors["ret_rms.mean"] = np.asarray(ret_rms.mean, dtype=np.float64)
    tensors["ret_rms.var"] = np.asarray(ret_rms.var, dtype=np.float64)
    if returns is not None:
        tensors["returns"] = np.asarray(returns, dtype=np.float64)
    if model._last_obs is not None:
        tensors["last_obs"] = np.asarray(model._last_obs)
        tensors["last_episode_starts"] = np.asarray(model._last_episode_starts, dtype=bool)
    if model.ep_info_buffer is not None:
        infos = list(model.ep_info_buffer)
        for key in ("r", "l", "t"):
            tensors[f"ep_info.{key}"] = np.array([i[key] for i in infos], dtype=np.float64)
        success = list(model.ep_success_buffer or ())
        tensors["ep_success"] = np.array(success, dtype=bool)
    meta: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "algorithm": "PPO",
        "stable_baselines3": stable_baselines3.__version__,
        "ppo": ppo_settings(model),
        "optimizer": {"param_groups": groups},
        "vecnormalize": {
            **{k: _json_able(getattr(norm, k), k) for k in NORM_SETTINGS},
            "obs_count": float(obs_rms.count),
            "ret_count": float(ret_rms.count),
        },
        "progress": {
            "num_timesteps": int(model.num_timesteps),
            "n_updates": int(model._n_updates),
        },
        "run": _json_able(run or {}, "run state"),
    }
    if rng is not None:
        rng_tensors, rng_meta = rng
        tensors.update(rng_tensors)
        meta["rng"] = rng_meta
    return TrainingState(tensors, meta)


# --- files ----------------------------------------------------------------------------


def write_state(directory: str | Path, stem: str, state: TrainingState) -> tuple[str, str]:
    """Write ``state`` as ``directory/STEM.safetensors`` + ``.json``, each atomically.

    Returns the two file names; the caller records them in the folder's manifest.
    """
    directory = Path(directory)
    tensors_name, json_name = state_files(stem)
    # np.ascontiguousarray would turn 0-d arrays (Adam's step) into 1-d ones
    arrays = {k: np.array(v, order="C", copy=True) for k, v in state.tensors.items()}
    with atomic_path(directory / tensors_name) as tmp:
        save_file(arrays, str(tmp), metadata={"format": FORMAT, "version": str(VERSION)})
    try:
        text = json.dumps(state.meta, indent=1, allow_nan=False)
    except ValueError:
        raise TrainingStateError(f"{stem}: a setting is NaN or infinite; not saved") from None
    write_text_atomic(directory / json_name, text + "\n")
    return tensors_name, json_name


def save_training_state(
    directory: str | Path,
    stem: str,
    model: PPO,
    norm: VecNormalize,
    run: dict[str, Any] | None = None,
) -> tuple[str, str]:
    """Capture ``model``/``norm`` (with its running returns and the global RNG states) and
    write it as ``stem``.

    The files are written atomically and added to ``directory``'s manifest.
    """
    state = capture(model, norm, getattr(norm, "returns", None), global_rng(), run)
    names = write_state(directory, stem, state)
    manifest.record(directory, names)
    return names


MAX_STEPS = 1 << 20
"""Largest ``n_steps`` / ``batch_size`` a training state may ask for (a forged file must
not make PPO allocate a rollout buffer beyond memory)."""

_REAL, _WHOLE, _FLAG = "real", "whole", "flag"
_PPO_TYPES = {
    "learning_rate": _REAL, "n_steps": _WHOLE, "batch_size": _WHOLE, "n_epochs": _WHOLE,
    "gamma": _REAL, "gae_lambda": _REAL, "clip_range": _REAL, "clip_range_vf": (_REAL, None),
    "normalize_advantage": _FLAG, "ent_coef": _REAL, "vf_coef": _REAL,
    "max_grad_norm": _REAL, "target_kl": (_REAL, None), "stats_window_size": _WHOLE,
    "seed": (_WHOLE, None), "policy_kwargs": dict,
}  # fmt: skip
_NORM_TYPES = {
    "norm_obs": _FLAG, "norm_reward": _FLAG, "clip_obs": _REAL, "clip_reward": _REAL,
    "gamma": _REAL, "epsilon": _REAL, "obs_count": _REAL, "ret_count": _REAL,
}  # fmt: skip
_PROGRESS_TYPES = {"num_timesteps": _WHOLE, "n_updates": _WHOLE}


def _fits(value: Any, kind: Any) -> bool:
    if isinstance(kind, tuple):
        return any(_fits(value, k) for k in kind)
    if kind is None:
        return value is None
    if kind == _FLAG:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind == _WHOLE:
        return isinstance(value, int) and 0 <= value <= 1 << 62
    if kind == _REAL:
        return isinstance(value, int | float) and np.isfinite(value)
    return isinstance(value, kind)


def _check_meta(meta: dict[str, Any], path: Path) -> None:
    """Types, ranges and known keys of a training state's JSON; TrainingStateError if not."""
    for section, types in (
        ("ppo", _PPO_TYPES),
        ("vecnormalize", _NORM_TYPES),
        ("progress", _PROGRESS_TYPES),
    ):
        values = meta.get(section)
        if not isinstance(values, dict):
            raise TrainingStateError(f"{path}: {section!r} is missing or not an object")
        unknown = sorted(set(values) - set(types))
        missing = sorted(set(types) - set(values))
        if unknown or missing:
            raise TrainingStateError(
                f"{path}: {section!r} has unknown keys {unknown} / lacks {missing}"
            )
        for key, kind in types.items():
            if not _fits(values[key], kind):
                raise TrainingStateError(f"{path}: {section}.{key} is {values[key]!r}")
    ppo = meta["ppo"]
    if not 1 <= ppo["n_steps"] <= MAX_STEPS or not 2 <= ppo["batch_size"] <= MAX_STEPS:
        raise TrainingStateError(f"{path}: ppo.n_steps or ppo.batch_size out of range")
    arch = ppo["policy_kwargs"].get("net_arch")
    if set(ppo["policy_kwargs"]) - {"net_arch"} or not (
        isinstance(arch, list)
        and 1 <= len(arch) <= 16
        and all(_fits(w, _WHOLE) and 1 <= w <= 4096 for w in arch)
    ):
        raise TrainingStateError(
            f"{path}: ppo.policy_kwargs must be {{'net_arch': [widths 1..4096]}}, got "
            f"{ppo['policy_kwargs']!r}"
        )
    if not isinstance(meta.get("optimizer"), dict):
        raise TrainingStateError(f"{path}: 'optimizer' is missing or not an object")
    if not isinstance(meta.get("run", {}), dict):
        raise TrainingStateError(f"{path}: 'run' is not an object")


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not strict JSON")


def read_training_state(directory: str | Path, stem: str) -> TrainingState:
    """Read the training state ``stem`` in ``directory``, after verifying its manifest.

    Raises:
        manifest.ManifestError: a file is missing, not listed or does not match.
        TrainingStateError: a file is not a readable training state of this format.
    """
    directory = Path(directory)
    tensors_name, json_name = state_files(stem)
    manifest.verify(directory, (tensors_name, json_name))
    json_path = directory / json_name
    if json_path.stat().st_size > MAX_JSON_BYTES:
        raise TrainingStateError(f"{json_path} is larger than {MAX_JSON_BYTES} bytes")
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TrainingStateError(f"{json_path} is not strict JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise TrainingStateError(f"{json_path} is not an lrgym training state")
    if meta.get("version") != VERSION:
        raise TrainingStateError(
            f"{json_path} is training-state version {meta.get('version')!r}; this lrgym "
            f"reads version {VERSION}"
        )
    _check_meta(meta, json_path)
    try:
        tensors = load_file(str(directory / tensors_name))
    except (SafetensorError, OSError, ValueError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise TrainingStateError(f"{directory / tensors_name} is not readable ({reason})") from None
    for key in ("obs_rms.mean", "obs_rms.var", "ret_rms.mean", "ret_rms.var"):
        if key not in tensors:
            raise TrainingStateError(f"{directory / tensors_name} has no {key!r}")
    bad = [
        k
        for k, v in tensors.items()
        if k.startswith(("policy.", "optimizer.", "obs_rms.", "ret_rms."))
        and v.dtype.kind == "f"
        and not np.all(np.isfinite(v))
    ]
    if bad:
        raise TrainingStateError(
            f"{directory / tensors_name} holds NaN or infinite values in {bad[:3]}; the "
            "training state is damaged, use an earlier checkpoint or retrain"
        )
    return TrainingState(tensors, meta, str(directory / stem))


# --- rebuild --------------------------------------------------------------------------


def _prefixed(tensors: Mapping[str, np.ndarray], prefix: str) -> dict[str, torch.Tensor]:
    return {
        k[len(prefix) :]: torch.from_numpy(np.array(v))
        for k, v in tensors.items()
        if k.startswith(prefix)
    }


def _optimizer_state(state: TrainingState) -> dict[str, Any]:
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in _prefixed(state.tensors, "optimizer.state.").items():
        index, _, name = key.partition(".")
        per_param.setdefault(int(index), {})[name] = value
    groups = state.meta["optimizer"].get("param_groups")
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise TrainingStateError(f"{state.source}: optimizer param_groups are not a list")
    return {"state": per_param, "param_groups": [dict(g) for g in groups]}


def build_normalize(state: TrainingState, venv: VecEnv, training: bool = True) -> VecNormalize:
    """A ``VecNormalize`` on ``venv`` with the state's settings and statistics."""
    settings = state.meta["vecnormalize"]
    try:
        norm = VecNormalize(venv, training=training, **{k: settings[k] for k in NORM_SETTINGS})
    except (KeyError, TypeError) as exc:
        raise TrainingStateError(f"{state.source}: vecnormalize settings: {exc}") from None
    mean, var = state.tensors["obs_rms.mean"], state.tensors["obs_rms.var"]
    if mean.shape != norm.obs_rms.mean.shape or var.shape != mean.shape:
        raise TrainingStateError(
            f"{state.source} normalises {mean.shape[0] if mean.ndim else 0} observation "
            f"values; this environment has {norm.obs_rms.mean.shape[0]}: the agent was "
            "trained with other features or hyperparameters"
        )
    if np.any(var < 0) or np.any(state.tensors["ret_rms.var"] < 0):
        raise TrainingStateError(f"{state.source}: a normalisation variance is negative")
    norm.obs_rms.mean, norm.obs_rms.var = mean.astype(np.float64), var.astype(np.float64)
    norm.obs_rms.count = float(settings["obs_count"])
    norm.ret_rms.mean = np.asarray(state.tensors["ret_rms.mean"], dtype=np.float64)
    norm.ret_rms.var = np.asarray(state.tensors["ret_rms.var"], dtype=np.float64)
    norm.ret_rms.count = float(settings["ret_count"])
    return norm


def build_model(
    state: TrainingState,
    env: VecNormalize,
    seed: int | None = None,
    tensorboard_log: str | None = None,
    resume: bool = False,
    rollout: bool = True,
    device: str = "auto",
) -> PPO:
    """A PPO on ``env`` (from :func:`build_normalize`) with the state's settings and weights.

    Args:
        state: The training state.
        env: The normalised environment to learn on.
        seed: PPO's seed (default: the state's).
        tensorboard_log: TensorBoard folder.
        resume: Also restore the rollout in progress and the counters (a checkpoint's
            ``num_timesteps``, last observation, episode statistics, running returns);
            otherwise the model starts at 0 timesteps, as a new run.
        rollout: With ``resume``, also put back the last observation (``False`` when the
            environments start fresh episodes instead of replaying theirs).
        device: Torch device.
    """
    settings = dict(state.meta["ppo"])
    if seed is not None:
        settings["seed"] = seed
    unknown = set(settings) - set(PPO_SETTINGS)
    if unknown:
        raise TrainingStateError(f"{state.source}: unknown PPO settings {sorted(unknown)}")
    try:
        model = PPO(
            "MlpPolicy",
            env,
            tensorboard_log=tensorboard_log,
            verbose=0,
            device=device,
            **settings,
        )
        model.set_parameters(
            {
                "policy": _prefixed(state.tensors, "policy."),
                "policy.optimizer": _optimizer_state(state),
            },
            exact_match=True,
            device=device,
        )
    except (RuntimeError, ValueError, TypeError, KeyError, AssertionError) as exc:
        if isinstance(exc, TrainingStateError):
            raise
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise TrainingStateError(
            f"{state.source} does not fit this run's PPO ({reason}); it was made for other "
            "observations, actions or network sizes"
        ) from None
    if resume:
        try:
            _restore_progress(state, model, env, rollout)
        except (KeyError, ValueError, TypeError) as exc:
            if isinstance(exc, TrainingStateError):
                raise
            raise TrainingStateError(
                f"{state.source}: its rollout state is damaged ({exc})"
            ) from None
    return model


def _restore_progress(state: TrainingState, model: PPO, env: VecNormalize, rollout: bool) -> None:
    tensors, progress = state.tensors, state.meta["progress"]
    model.num_timesteps = int(progress["num_timesteps"])
    model._n_updates = int(progress.get("n_updates", 0))
    if rollout and "last_obs" in tensors:
        if tensors["last_obs"].shape[0] != env.num_envs:
            raise TrainingStateError(
                f"{state.source} has {tensors['last_obs'].shape[0]} environment(s), the run "
                f"{env.num_envs}"
            )
        model._last_obs = np.array(tensors["last_obs"])
        model._last_episode_starts = np.array(tensors["last_episode_starts"], dtype=bool)
    if "ep_info.r" in tensors:
        window = model._stats_window_size
        model.ep_info_buffer = deque(
            (
                {"r": float(r), "l": int(n), "t": float(t)}
                for r, n, t in zip(
                    tensors["ep_info.r"], tensors["ep_info.l"], tensors["ep_info.t"], strict=True
                )
            ),
            maxlen=window,
        )
        model.ep_success_buffer = deque((bool(s) for s in tensors["ep_success"]), maxlen=window)
    if "returns" in tensors and tensors["returns"].shape == env.returns.shape:
        env.returns = np.array(tensors["returns"], dtype=np.float64)


def restore_global_rng(state: TrainingState) -> None:
    """Put back the torch, NumPy and Python global RNG states the state recorded.

    Raises:
        TrainingStateError: the state holds no RNG states.
    """
    meta = state.meta.get("rng")
    if not isinstance(meta, dict) or "rng.torch" not in state.tensors:
        raise TrainingStateError(f"{state.source} records no RNG states; it cannot be resumed")
    try:
        np_meta = meta["numpy"]
        np.random.set_state(
            (
                np_meta["name"],
                np.asarray(state.tensors["rng.numpy"], dtype=np.uint32),
                int(np_meta["pos"]),
                int(np_meta["has_gauss"]),
                float(np_meta["cached_gaussian"]),
            )
        )
        version, internal, gauss = meta["python"]
        random.setstate((int(version), tuple(int(x) for x in internal), gauss))
        torch.set_rng_state(torch.from_numpy(np.array(state.tensors["rng.torch"], np.uint8)))
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise TrainingStateError(f"{state.source}: its RNG states are damaged ({exc})") from None


__all__ = [
    "FORMAT",
    "TrainingState",
    "TrainingStateError",
    "build_model",
    "build_normalize",
    "capture",
    "global_rng",
    "ppo_settings",
    "read_training_state",
    "restore_global_rng",
    "save_training_state",
    "state_files",
    "write_state",
]
