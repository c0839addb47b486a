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

This module holds the format and its files (:func:`write_state`, :func:`read_training_state`,
which checks every setting's type and range); :mod:`lrgym.agents.ppo_state` captures a
PPO model as a training state and rebuilds one from it. Files are written atomically;
callers list them in the folder's manifest (:mod:`lrgym.io.manifest`), which is verified
before they are read, as an integrity check (the files are data: nothing in them runs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from lrgym.io import manifest
from lrgym.io._atomic import atomic_path, write_text_atomic

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


__all__ = [
    "FORMAT",
    "MAX_STEPS",
    "NORM_SETTINGS",
    "PPO_SETTINGS",
    "VERSION",
    "TrainingState",
    "TrainingStateError",
    "read_training_state",
    "state_files",
    "write_state",
]
