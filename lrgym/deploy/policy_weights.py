"""A policy as data: float32 tensors in safetensors, a layer list, and a NumPy forward.

:class:`PolicyWeights` is the deterministic PPO actor with the observation normalisation
folded in. It is what an agent directory stores (``policy.safetensors`` beside the card's
``policy`` entry) and what runs in deployment: loading reads numbers and executes
nothing. :func:`export_policy` makes one from a trained stable-baselines3 model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file

from lrgym.io._atomic import atomic_path

POLICY = "policy.safetensors"
"""File name of the policy tensors in an agent directory."""
POLICY_FORMAT = "lrgym-mlp"
POLICY_VERSION = 1
LAYER_KINDS = ("linear", "tanh", "relu")


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
