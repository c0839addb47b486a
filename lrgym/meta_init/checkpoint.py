"""Init checkpoints: ``init.safetensors`` (the parameters) and ``card.json`` (how it was
made), and :func:`load_init`, which puts them into a model.

Nothing in an init folder is executed when it loads: the weights are safetensors, the
card is JSON, and the architecture is rebuilt from the card's model spec.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lrgym.io._atomic import atomic_path, write_text_atomic
from lrgym.io.file_checks import MAX_WEIGHTS_BYTES, check_keys, check_regular_file, read_json
from lrgym.io.shipped import shipped_names, shipped_path
from lrgym.io.validate import real_number, text, whole_number
from lrgym.meta_init.contract import ModelSpec
from lrgym.meta_init.models import build_model

WEIGHTS = "init.safetensors"
CARD = "card.json"
CARD_FORMAT = "lrgym-meta-init"
CARD_VERSION = 1


class InitLoadError(ValueError):
    """An init folder is missing, malformed, or does not fit the model."""


@dataclass
class InitCard:
    """What an init is and how it was made (``card.json``).

    Attributes:
        family: The task family's registered name.
        family_options: Options the family was built with, other than paths
            (:data:`PATH_OPTIONS` such as ``data`` are never written to or read from a
            card: the command line gives them).
        model: Architecture (``ModelSpec.to_json``).
        splits: Per split (meta-train, meta-val, meta-test): sources, classes, examples.
        algorithm: ``fomaml``, ``reptile``, ``anil`` or ``multitask``.
        config: Every meta-training setting (inner steps and LR, meta-batch, meta-LR,
            meta-iterations, seed ...).
        selected_iteration: Iteration chosen on meta-val.
        val_history: ``[iteration, meta-val accuracy]`` pairs.
        wall_seconds: Meta-training wall time.
        cpu_seconds: Meta-training CPU time.
        finetune: The family's fine-tuning settings (LR, steps, target ...).
        evaluation: Fine-tuning results on meta-test tasks (rows of a table), if run.
        command: The command line that made it.
        lrgym_version: lrgym's version.
    """

    family: str
    model: dict[str, Any]
    splits: dict[str, Any]
    algorithm: str
    config: dict[str, Any]
    selected_iteration: int
    val_history: list[list[float]]
    wall_seconds: float
    cpu_seconds: float
    finetune: dict[str, Any]
    family_options: dict[str, Any] = field(default_factory=dict)
    evaluation: list[dict[str, Any]] = field(default_factory=list)
    command: str = ""
    lrgym_version: str = ""
    format: str = CARD_FORMAT
    version: int = CARD_VERSION

    @property
    def model_spec(self) -> ModelSpec:
        """The architecture as a :class:`ModelSpec`."""
        return ModelSpec.from_json(self.model)

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``card.json`` atomically into ``directory``."""
        path = Path(directory) / CARD
        write_text_atomic(path, json.dumps(asdict(self), indent=2, default=float) + "\n")
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> InitCard:
        """Read ``directory/card.json``.

        Raises:
            InitLoadError: Missing or not an lrgym init card.
        """
        path = Path(directory) / CARD
        if not path.exists():
            shipped = ", ".join(shipped_inits()) or "none"
            raise InitLoadError(
                f"{os.fspath(directory)!r} is not an init folder (no {CARD}) nor a shipped "
                f"init ({shipped}); make one with `lrgym meta-init --family digits --out DIR`"
            )
        data = read_json(path, "init card", error=InitLoadError)  # regular, capped, strict
        try:
            return cls(**_check_card(data))
        except (ValueError, TypeError, KeyError) as exc:
            raise InitLoadError(f"{path} is not a valid init card: {exc}") from None


PATH_OPTIONS = ("data", "cache_dir")
"""Family options that name files or folders: never taken from a card (a card must not
choose where lrgym reads or writes); the user passes them on the command line."""

_REQUIRED = (
    "family", "model", "splits", "algorithm", "config", "selected_iteration", "val_history",
    "wall_seconds", "cpu_seconds", "finetune",
)  # fmt: skip
_OBJECTS = ("model", "splits", "config", "finetune", "family_options")
_MAX_WIDTH = 65_536
"""Largest input size, width or output count of a card's model (its weights must fit the
size cap of :data:`lrgym.io.file_checks.MAX_WEIGHTS_BYTES` anyway)."""


def _check_card(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` if it is a complete init card of this lrgym: format and version, known
    keys, JSON types, finite numbers, a model spec of sane size, and family options that
    name no path (:data:`PATH_OPTIONS`). ValueError naming the key otherwise."""
    if data.get("format") != CARD_FORMAT:
        raise ValueError(f"format is {data.get('format')!r}, not {CARD_FORMAT!r}")
    version = whole_number("version", data.get("version", CARD_VERSION), 1)
    if version > CARD_VERSION:
        raise ValueError(f"card version {version} is newer than this lrgym's")
    check_keys(data, "the card", required=_REQUIRED, known=tuple(InitCard.__dataclass_fields__))
    text("family", data["family"])
    text("algorithm", data["algorithm"])
    for key in _OBJECTS:
        if key in data and not isinstance(data[key], dict):
            raise ValueError(f"{key} must be an object, got {data[key]!r}")
    for key in ("command", "lrgym_version"):
        if key in data and not isinstance(data[key], str):
            raise ValueError(f"{key} must be text, got {data[key]!r}")
    _check_family_options(data.get("family_options", {}))
    _check_model(data["model"])
    whole_number("selected_iteration", data["selected_iteration"], 0)
    real_number("wall_seconds", data["wall_seconds"], 0.0)
    real_number("cpu_seconds", data["cpu_seconds"], 0.0)
    history = data["val_history"]
    if not isinstance(history, list) or not all(
        isinstance(row, list) and len(row) == 2 for row in history
    ):
        raise ValueError("val_history must be a list of [iteration, accuracy] pairs")
    for i, (iteration, accuracy) in enumerate(history):
        whole_number(f"val_history[{i}] iteration", iteration, 0)
        real_number(f"val_history[{i}] accuracy", accuracy)
    evaluation = data.get("evaluation", [])
    if not isinstance(evaluation, list) or not all(isinstance(r, dict) for r in evaluation):
        raise ValueError("evaluation must be a list of table rows (objects)")
    return data


def _check_family_options(options: dict[str, Any]) -> None:
    """Refuse a path option (:data:`PATH_OPTIONS`, or text that looks like a path) and
    any value that is not a plain number, boolean or name."""
    for key, value in options.items():
        looks_like_path = isinstance(value, str) and (
            "/" in value or "\\" in value or value.startswith(("~", "."))
        )
        if key in PATH_OPTIONS or key.endswith(("_dir", "_path", "_file")) or looks_like_path:
            raise ValueError(
                f"family_options names a path ({key}={value!r}); a card never chooses where "
                "lrgym reads or writes: remove it from the card and pass it on the command "
                "line (lrgym compare --init DIR --init-data PATH)"
            )
        if value is not None and not isinstance(value, str | int | float | bool):
            raise ValueError(f"family_options.{key} must be a number or a name, got {value!r}")


def _check_model(model: dict[str, Any]) -> None:
    """A model spec of a known kind whose sizes are whole numbers in a sane range."""
    check_keys(model, "model", required=_MODEL_KEYS, known=_MODEL_KEYS)
    if model["kind"] not in ("mlp", "cnn"):
        raise ValueError(f"model.kind must be 'mlp' or 'cnn', got {model['kind']!r}")
    for key in ("input_shape", "hidden"):
        sizes = model.get(key, [])
        if not isinstance(sizes, list) or len(sizes) > 16:
            raise ValueError(f"model.{key} must be a list of at most 16 sizes, got {sizes!r}")
        for i, size in enumerate(sizes):
            whole_number(f"model.{key}[{i}]", size, 1, _MAX_WIDTH)
    if not model["input_shape"]:
        raise ValueError("model.input_shape is empty")
    whole_number("model.n_out", model["n_out"], 1, _MAX_WIDTH)


_MODEL_KEYS = ("kind", "input_shape", "n_out", "hidden")


def save_init(
    directory: str | os.PathLike[str], state: dict[str, torch.Tensor], card: InitCard
) -> Path:
    """Write an init: weights (safetensors) first, then the card (both atomically)."""
    from safetensors.torch import save_file

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to(torch.float32).contiguous().clone() for k, v in state.items()}
    with atomic_path(out / WEIGHTS) as tmp:
        save_file(tensors, str(tmp), metadata={"format": CARD_FORMAT, "family": card.family})
    card.save(out)
    return out


def read_init(directory: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], InitCard]:
    """The weights and card of an init folder (no model built)."""
    from safetensors.torch import load_file

    card = InitCard.load(directory)
    path = Path(directory) / WEIGHTS
    if not path.exists():
        raise InitLoadError(f"{os.fspath(directory)!r} has a card but no {WEIGHTS}")
    check_regular_file(path, "init weights", max_bytes=MAX_WEIGHTS_BYTES, error=InitLoadError)
    try:
        state = load_file(str(path))
    except Exception as exc:  # noqa: BLE001 - a corrupt file becomes one clear error
        raise InitLoadError(f"cannot read {path}: {exc}") from None
    for name, tensor in state.items():
        if not tensor.is_floating_point() or not torch.isfinite(tensor).all():
            raise InitLoadError(
                f"{path}: tensor {name!r} holds NaN, infinite or non-float values; the init "
                "is corrupt, make it again with `lrgym meta-init`"
            )
    return state, card


def _shapes(named: dict[str, torch.Tensor]) -> str:
    return ", ".join(f"{k} {tuple(v.shape)}" for k, v in named.items())


def load_state_into(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> nn.Module:
    """Copy ``state`` into ``model``'s parameters in place (optimizers keep working).

    Raises:
        InitLoadError: Names or shapes differ; the message gives both architectures.
    """
    own = dict(model.state_dict())
    mismatch = set(own) != set(state) or any(
        tuple(own[k].shape) != tuple(state[k].shape) for k in own
    )
    if mismatch:
        raise InitLoadError(
            f"the init {source} does not match the model ({type(model).__name__}): the init "
            f"has [{_shapes(state)}], the model has [{_shapes(own)}]. Fine-tune the task the "
            "init was made for, or build the model with lrgym.load_init(DIR)."
        )
    with torch.no_grad():
        for k, t in own.items():
            t.copy_(state[k].to(dtype=t.dtype, device=t.device))
    return model


def load_init(directory: str | os.PathLike[str], model: nn.Module | None = None) -> nn.Module:
    """A model initialized from an init folder, ready to fine-tune on a new task.

    Args:
        directory: An init folder (``lrgym meta-init --out DIR``) or a shipped init's
            name (e.g. ``"meta-init-digits"``).
        model: Load into this model (same architecture) instead of building the card's.

    Raises:
        InitLoadError: Not an init folder, or ``model``'s architecture differs (both
            shapes named).
    """
    path = resolve_init(directory)
    state, card = read_init(path)
    if model is None:
        model = build_model(card.model_spec)
    return load_state_into(model, state, repr(os.fspath(path)))


def shipped_inits() -> list[str]:
    """Names of the inits shipped with lrgym (e.g. ``meta-init-digits``)."""
    return shipped_names("init")


def resolve_init(name: str | os.PathLike[str]) -> Path:
    """A folder path, or the name of a shipped init (:func:`shipped_inits`)."""
    path = Path(name).expanduser()
    if path.is_dir() or os.sep in os.fspath(name):
        return path
    return shipped_path("init", os.fspath(name)) or path


def apply_init(trainee: Any, directory: str | os.PathLike[str]) -> Any:
    """Load an init into a freshly built torch trainee's model (``--init`` of compare).

    Raises:
        InitLoadError: The trainee has no torch model, or its architecture differs.
    """
    model = getattr(trainee, "model", None)
    if not isinstance(model, nn.Module):
        raise InitLoadError(
            f"--init applies to torch tasks only; this run's trainee is {type(trainee).__name__}"
        )
    load_init(directory, model)
    loaded = getattr(trainee, "weights_loaded", None)
    if loaded is not None:  # update sizes are measured from the loaded weights
        loaded()
    return trainee
