"""The architectures of the procedural task families: drawn per task, and their cost.

:func:`draw_arch` draws one family's architecture (as plain data) from the task
generator's rng, :func:`macs` estimates a forward pass's multiply-accumulates, and
:func:`shrink` narrows a model whose steps would cost too much; the models themselves
are built by :mod:`lrgym.tasks.procedural_nets`. See :mod:`lrgym.tasks.procedural`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

ACTIVATION_NAMES = ("relu", "tanh", "gelu", "silu", "elu", "leaky_relu", "softplus")


def choice(rng: np.random.Generator, options) -> Any:
    """One of ``options``, uniformly (one ``rng.integers`` draw)."""
    return options[int(rng.integers(len(options)))]


# --- architectures --------------------------------------------------------------------------


def _draw_mlp(rng: np.random.Generator) -> dict[str, Any]:
    act = choice(rng, ACTIVATION_NAMES)
    if rng.uniform() < 0.25:
        return {
            "style": "residual",
            "width": int(choice(rng, (16, 32, 64, 128))),
            "blocks": int(rng.integers(1, 4)),
            "activation": act,
        }
    depth = int(rng.integers(1, 5))
    first = int(choice(rng, (16, 32, 64, 128, 256)))
    pattern = choice(rng, ("constant", "taper", "mixed"))
    if pattern == "constant":
        hidden = [first] * depth
    elif pattern == "taper":
        hidden = [max(8, first >> i) for i in range(depth)]
    else:
        hidden = [first] + [int(choice(rng, (16, 32, 64, 128))) for _ in range(depth - 1)]
    return {"style": "plain", "hidden": hidden, "activation": act}


def _draw_cnn(rng: np.random.Generator, size: int) -> dict[str, Any]:
    blocks = int(rng.integers(1, 4))
    width = int(choice(rng, (4, 8, 16)))
    growth = int(choice(rng, (1, 2)))
    channels, pools = [], []
    for _ in range(blocks):
        channels.append(width)
        pool = choice(rng, ("max", "avg", "none")) if size >= 4 else "none"
        pools.append(pool)
        if pool != "none":
            size //= 2
        width = min(64, width * growth)
    return {
        "channels": channels,
        "pools": pools,
        "kernel": int(choice(rng, (3, 5))) if size >= 6 else 3,
        "head": choice(rng, ("flatten", "gap")),
        "fc": int(choice(rng, (0, 0, 32, 64))),
        "activation": choice(rng, ACTIVATION_NAMES),
    }


def _draw_attention(rng: np.random.Generator) -> dict[str, Any]:
    dim = int(choice(rng, (16, 32, 64)))
    heads = int(choice(rng, [h for h in (1, 2, 4) if dim // h >= 8]))
    return {
        "dim": dim,
        "heads": heads,
        "layers": int(rng.integers(1, 3)),
        "ratio": int(choice(rng, (2, 4))),
        "norm": choice(rng, ("pre", "post")),
        "positions": bool(rng.uniform() < 0.85),
        "pool": choice(rng, ("mean", "last")),
        "activation": choice(rng, ("gelu", "relu", "silu")),
    }


def _draw_rnn(rng: np.random.Generator) -> dict[str, Any]:
    return {
        "cell": choice(rng, ("gru", "lstm")),
        "hidden": int(choice(rng, (16, 24, 32, 48, 64))),
        "embed": int(choice(rng, (8, 16, 32))),
        "layers": 2 if rng.uniform() < 0.15 else 1,
        "readout": choice(rng, ("last", "mean")),
    }


def _input_size(data: Mapping[str, Any]) -> int:
    if data["kind"] == "image":
        return int(np.prod(data["shape"]))
    if data["kind"] == "tabular":
        return data["features_kept"] + data["noise_features"]
    return data["length"] * (1 if data["kind"] == "tokens" else data["features"])


def macs(family: str, arch: Mapping[str, Any], data: Mapping[str, Any], n_out: int) -> int:
    """Multiply-accumulates of one sample's forward pass (a cost estimate)."""
    if family == "mlp":
        n_in = _input_size(data)
        if arch["style"] == "residual":
            w = arch["width"]
            return n_in * w + arch["blocks"] * 4 * w * w + w * n_out
        sizes = [n_in, *arch["hidden"], n_out]
        return sum(a * b for a, b in zip(sizes, sizes[1:], strict=False))
    if family == "cnn":
        c, size, _ = data["shape"]
        total = 0
        for out, pool in zip(arch["channels"], arch["pools"], strict=True):
            total += c * out * arch["kernel"] ** 2 * size * size
            size //= 2 if pool != "none" else 1
            c = out
        feat = c if arch["head"] == "gap" else c * size * size
        if arch["fc"]:
            total += feat * arch["fc"]
            feat = arch["fc"]
        return total + feat * n_out
    t = data["length"]
    f = data.get("features", 1)
    if family == "attention":
        d = arch["dim"]
        per_layer = t * (4 * d * d + 2 * arch["ratio"] * d * d) + 2 * t * t * d
        return t * f * d + arch["layers"] * per_layer + d * n_out
    gates = 3 if arch["cell"] == "gru" else 4
    h, e = arch["hidden"], arch["embed"]
    first = t * (f * e + e * gates * h + h * gates * h)
    return first + (arch["layers"] - 1) * t * 2 * h * gates * h + h * n_out


def shrink(family: str, arch: dict[str, Any]) -> bool:
    """Halve the model's widths (none below 8 unless it already was); False when nothing
    can shrink."""
    key = {"cnn": "channels", "attention": "dim", "rnn": "hidden"}.get(family)
    if family == "mlp":
        key = "width" if arch["style"] == "residual" else "hidden"
    value = arch[key]
    if isinstance(value, list):
        smaller = [max(min(v, 8), v // 2) for v in value]
    else:
        smaller = max(min(value, 8), value // 2)
    if smaller == value:
        return False
    arch[key] = smaller
    if family == "attention":
        arch["heads"] = max(h for h in (1, 2, 4) if h <= arch["heads"] and arch["dim"] // h >= 8)
    return True


def draw_arch(rng: np.random.Generator, family: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The architecture of a task of ``family`` on ``data`` (a drawn data description)."""
    if family == "mlp":
        return _draw_mlp(rng)
    if family == "cnn":
        return _draw_cnn(rng, data["shape"][1])
    if family == "attention":
        return _draw_attention(rng)
    return _draw_rnn(rng)


__all__ = ["ACTIVATION_NAMES", "choice", "draw_arch", "macs", "shrink"]
