"""The LR predictor's network, and saving and loading it (``weights_only`` files)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lrgym.controllers.lr_predictor.features import PREDICTOR_FEATURES
from lrgym.io._atomic import atomic_path

FORMAT = "lrgym-lr-predictor"
FORMAT_VERSION = 1
"""Saved predictors carry this format name and version; loading checks both."""

MAX_LOG10_CHANGE = 1.0
"""Largest |log10 LR change| per decision (targets are clipped to it, predictions too)."""

HIDDEN = (64, 64)
"""Hidden layer widths of the predictor network."""


def make_network(n_features: int = len(PREDICTOR_FEATURES)) -> nn.Sequential:
    """The predictor network: 2 hidden layers of 64 ReLU units, linear output."""
    layers: list[nn.Module] = []
    width = n_features
    for hidden in HIDDEN:
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


@dataclass
class LRPredictor:
    """A trained predictor: network, feature standardisation and a record of its training.

    Attributes:
        network: The MLP (standardised features → log10 LR change).
        mean: Feature means used for standardisation.
        std: Feature standard deviations used for standardisation.
        info: How it was trained (tasks, rows, seed, validation errors).
    """

    network: nn.Sequential
    mean: np.ndarray
    std: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    @torch.no_grad()
    def predict(self, features: np.ndarray) -> np.ndarray:
        """Predicted ``log10(lr_next / lr)`` for a batch (or one row) of features."""
        x = np.atleast_2d(np.asarray(features, dtype=np.float32))
        z = torch.from_numpy((x - self.mean) / self.std)
        out = self.network(z).squeeze(-1).numpy()
        return np.clip(out, -MAX_LOG10_CHANGE, MAX_LOG10_CHANGE)

    def save(self, path: str | Path) -> Path:
        """Write the predictor to ``path`` atomically (a ``weights_only``-loadable file)."""
        payload = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "features": list(PREDICTOR_FEATURES),
            "hidden": list(HIDDEN),
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "state_dict": self.network.state_dict(),
            "info": self.info,
        }
        path = Path(path)
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
        return path


class PredictorLoadError(ValueError):
    """A predictor file is missing, unreadable or of another format/feature layout."""


def load_predictor(path: str | Path) -> LRPredictor:
    """Load a predictor written by :meth:`LRPredictor.save` (``lrgym train-predictor``)."""
    path = Path(path)
    if not path.is_file():
        raise PredictorLoadError(
            f"no LR predictor at {path}; train one with `lrgym train-predictor --out {path}`"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same message
        raise PredictorLoadError(f"cannot read LR predictor {path}: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise PredictorLoadError(f"{path} is not an lrgym LR predictor file")
    if payload.get("version") != FORMAT_VERSION or payload.get("features") != list(
        PREDICTOR_FEATURES
    ):
        raise PredictorLoadError(
            f"{path} was written for another predictor format or feature layout "
            f"(version {payload.get('version')}); retrain it with `lrgym train-predictor`"
        )
    network = make_network()
    network.load_state_dict(payload["state_dict"])
    network.eval()
    mean = np.asarray(payload["mean"], dtype=np.float32)
    std = np.asarray(payload["std"], dtype=np.float32)
    return LRPredictor(network, mean, std, dict(payload.get("info", {})))
