"""A PPO model and its ``VecNormalize`` as a training state, and back.

:func:`capture` takes what SB3's ``PPO.save`` and ``VecNormalize.save`` would pickle
into a :class:`~lrgym.agents.training_state.TrainingState` (data only; its files are
:mod:`lrgym.agents.training_state`'s job). :func:`build_model` rebuilds a model through
SB3's public API: ``PPO(...)`` with the saved hyperparameters, ``set_parameters`` with the
saved ``state_dict``\\ s, and ``VecNormalize`` with its statistics set from arrays. SB3
has no public setter for a rollout in progress (``_last_obs``, ``_last_episode_starts``,
``_n_updates``, ``ep_info_buffer``): those are set as the attributes
``BaseAlgorithm.load`` itself sets.
"""

from __future__ import annotations

import json
import random
import warnings
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import stable_baselines3
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from lrgym.agents.training_state import (
    FORMAT,
    NORM_SETTINGS,
    PPO_SETTINGS,
    VERSION,
    TrainingState,
    TrainingStateError,
    write_state,
)
from lrgym.io import manifest

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
        with warnings.catch_warnings():
            if env.num_envs * settings.get("n_steps", 0) < settings.get("batch_size", 0):
                # a rebuild on fewer environments than training had (the export, on one):
                # its rollout buffer is never filled, so SB3's mini-batch advice is noise
                warnings.filterwarnings("ignore", "You have specified a mini-batch size")
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
    "build_model",
    "build_normalize",
    "capture",
    "global_rng",
    "ppo_settings",
    "restore_global_rng",
    "save_training_state",
]
