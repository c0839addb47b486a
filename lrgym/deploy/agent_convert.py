"""Convert an agent from the old TorchScript format (``policy.pt``) to ``policy.safetensors``.

This module is the only place lrgym still loads TorchScript: :func:`convert_agent` runs
the ``policy.pt`` it converts (``torch.jit.load`` executes code the file holds), so
convert only agents you trust. It reads the scripted ``NormalizedPolicy`` (observation
mean, std and clip, then Linear/Tanh/ReLU layers), writes the same numbers as
:class:`~lrgym.deploy.agent.PolicyWeights`, checks on seeded random observations that the NumPy
forward gives the TorchScript's actions, and only then removes ``policy.pt``.

The SB3 pickles of earlier versions (``ppo.zip``, ``vecnormalize.pkl``, ``rl_model_*``
checkpoints; :func:`legacy_training_files` finds them) are converted by
:mod:`lrgym.agents.legacy_sb3`, which needs the training extra.

Command line: ``lrgym convert-agent DIR [--out DIR2]`` (does both).
"""

from __future__ import annotations

import json
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lrgym.deploy.agent import (
    CARD,
    LEGACY_POLICY,
    LEGACY_SB3_FILES,
    TRAINING,
    AgentLoadError,
    load_agent,
    load_card,
)
from lrgym.deploy.policy_weights import LAYER_KINDS, POLICY, PolicyWeights
from lrgym.io._atomic import write_text_atomic
from lrgym.io.file_checks import read_json

CHECK_OBSERVATIONS = 10_000
CHECK_ATOL = 1e-6


LEGACY_CHECKPOINT_GLOB = "checkpoints/rl_model_*_steps.zip"
"""Checkpoints of earlier lrgym versions inside a run folder."""


def legacy_training_files(directory: str | Path) -> list[Path]:
    """The SB3 pickles of earlier lrgym versions in an agent or run folder.

    ``ppo.zip`` / ``vecnormalize.pkl`` in the folder and in its ``best/``, and
    ``checkpoints/rl_model_<N>_steps.zip`` (each with its statistics pickle). Only names
    are looked at; nothing is opened. A ``ppo.zip`` beside a ``training.json`` is the
    agent's stable-baselines3 copy, not an old state.
    """
    root = Path(directory)
    found = [
        folder / name
        for folder in (root, root / "best")
        for name in LEGACY_SB3_FILES
        if (folder / name).is_file() and not (folder / f"{TRAINING}.json").is_file()
    ]
    return found + sorted(root.glob(LEGACY_CHECKPOINT_GLOB))


@dataclass(frozen=True)
class Conversion:
    """What :func:`convert_agent` did.

    Attributes:
        path: The converted agent directory.
        max_abs_diff: Largest |converted action - TorchScript action| on the check.
        observations: How many observations the check used.
    """

    path: Path
    max_abs_diff: float
    observations: int


def check_observations(n_features: int, n: int = CHECK_OBSERVATIONS) -> np.ndarray:
    """The seeded observations conversions are checked on: uniform in [-3, 3], float32."""
    return np.random.default_rng(0).uniform(-3, 3, (n, n_features)).astype(np.float32)


def weights_from_torchscript(module: Any) -> PolicyWeights:
    """The :class:`PolicyWeights` of a scripted ``NormalizedPolicy`` (tensors copied).

    Raises:
        ValueError: the module is not a ``NormalizedPolicy`` of Sequential, Linear, Tanh
            and ReLU modules whose tensors are exactly ``mean``, ``std`` and the Linear
            layers' weights and biases.
    """

    def kind(m: Any) -> str:
        return str(getattr(m, "original_name", type(m).__name__))

    if kind(module) != "NormalizedPolicy":
        raise ValueError(f"policy is a {kind(module)}, not lrgym's NormalizedPolicy")
    state = {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}
    if "mean" not in state or "std" not in state or not hasattr(module, "actor"):
        raise ValueError("policy has no mean, std or actor: not lrgym's NormalizedPolicy")
    mean, std = state.pop("mean"), state.pop("std")
    layers: list[str] = []
    linear: list[tuple[np.ndarray, np.ndarray]] = []
    for name, m in module.actor.named_modules(prefix="actor"):
        if kind(m) == "Linear":
            layers.append("linear")
            linear.append((state.pop(f"{name}.weight"), state.pop(f"{name}.bias")))
        elif kind(m) in ("Tanh", "ReLU"):
            layers.append(kind(m).lower())
        elif kind(m) != "Sequential":
            raise ValueError(
                f"policy layer {name} is a {kind(m)}; only {', '.join(LAYER_KINDS)} convert"
            )
    if state:
        raise ValueError(f"policy has tensors the conversion does not know: {sorted(state)}")
    return PolicyWeights(
        mean=mean,
        std=std,
        clip_obs=float(module.clip_obs),
        layers=tuple(layers),
        linear=tuple(linear),
    )


def convert_agent(directory: str | Path, out: str | Path | None = None) -> Conversion:
    """Convert an old-format agent directory (``card.json`` + ``policy.pt``) in place or
    into ``out``.

    **This executes the TorchScript in ``policy.pt``: convert only agents you trust.**

    Steps: load ``policy.pt`` once, extract its tensors, compare the NumPy forward with
    the TorchScript on :data:`CHECK_OBSERVATIONS` seeded observations (uniform in
    [-3, 3]; at most :data:`CHECK_ATOL` apart, or nothing is written), write
    ``policy.safetensors`` and then the card with its new ``policy`` entry (each
    atomically; the card's other entries are kept as they are), load the result with
    :func:`~lrgym.deploy.agent.load_agent` and compare again, and finally remove ``policy.pt``
    (in place) or leave the source untouched (``out`` given: everything else in the
    directory is copied there).

    Args:
        directory: The agent directory to convert.
        out: Where to write the converted agent (an empty or new directory); default:
            convert in place.

    Raises:
        AgentLoadError: no ``policy.pt``, an unreadable card or TorchScript, a policy of
            a structure the format cannot hold, a check that fails, or a non-empty ``out``.
    """
    import torch

    src = Path(directory)
    dst = src if out is None else Path(out)
    in_place = dst.resolve() == src.resolve()
    legacy = src / LEGACY_POLICY
    card = load_card(src)
    if not legacy.is_file():
        if (src / POLICY).is_file():
            raise AgentLoadError(f"{src} is already in the {POLICY} format; nothing to convert")
        raise AgentLoadError(f"{legacy} is missing: nothing to convert")
    if not in_place and dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise AgentLoadError(f"--out {dst} exists and is not an empty directory")
    try:
        with warnings.catch_warnings():  # this is the one deliberate use of torch.jit
            warnings.filterwarnings("ignore", r"`torch\.jit", DeprecationWarning)
            module = torch.jit.load(str(legacy), map_location="cpu")
    except (RuntimeError, ValueError) as exc:
        raise AgentLoadError(
            f"{legacy} is not a readable TorchScript archive ({str(exc).splitlines()[0]})"
        ) from None
    try:
        weights = weights_from_torchscript(module)
    except (ValueError, KeyError) as exc:
        raise AgentLoadError(f"{legacy} cannot be converted: {exc}") from None

    obs = check_observations(len(card.features))
    with torch.no_grad():
        want = module(torch.as_tensor(obs)).numpy()

    def max_diff(got: np.ndarray) -> float:
        if got.shape != want.shape:
            raise AgentLoadError(
                f"converted policy gives actions of shape {got.shape}, TorchScript {want.shape}"
            )
        return float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))

    diff = max_diff(weights.forward(obs))
    if not diff <= CHECK_ATOL:
        raise AgentLoadError(
            f"{legacy}: the converted policy differs from the TorchScript by up to {diff:.3g} "
            f"(> {CHECK_ATOL:g}) on {len(obs)} observations; nothing was written"
        )

    if not in_place:
        top = src.resolve()
        shutil.copytree(
            src,
            dst,
            ignore=lambda d, names: [LEGACY_POLICY, CARD] if Path(d).resolve() == top else [],
            dirs_exist_ok=True,
        )
    weights.save(dst)
    raw = read_json(src / CARD, "agent card")  # regular, size-capped, strict JSON
    raw["policy"] = weights.spec()
    write_text_atomic(dst / CARD, json.dumps(raw, indent=2) + "\n")

    diff = max(diff, max_diff(load_agent(dst).policy.forward(obs)))
    if not diff <= CHECK_ATOL:  # pragma: no cover - the same numbers were just checked
        raise AgentLoadError(f"{dst}: the written policy differs from the TorchScript")
    if in_place:
        legacy.unlink()
    return Conversion(path=dst, max_abs_diff=diff, observations=len(obs))
