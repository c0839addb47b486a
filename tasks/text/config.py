"""Text task configuration: the config dataclass, the presets and the task factories.

:class:`TextTaskConfig` defines a task, :data:`PRESETS` holds the registered ones,
:func:`text_task` builds a preset with overrides and :func:`make_text_task` any config.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from lrgym.core.task import Split, TaskInfo
from lrgym.tasks.columns import freeze
from lrgym.tasks.text.data import TextData

if TYPE_CHECKING:  # torch loads when a task is made, not when the presets register
    from lrgym.backends.torch_trainee import TorchTask


@dataclass(frozen=True)
class TextTaskConfig:
    """Everything that defines a text task: data, tokenization, model and budget.

    Attributes:
        dataset: Display name of the data set (``"SST-2"``).
        source: Hub id (``"stanfordnlp/sst2"``) or local file/folder.
        num_labels: Number of classes.
        model: ``"encoder"`` (pretrained transformer + head) or ``"bilstm"``.
        encoder: ``"minilm"``, ``"auto"``, ``"bert-base-uncased"``, or any hub id/folder.
        text_column: Text column (else the first of
            :data:`~lrgym.tasks.text.data.TEXT_COLUMNS` present).
        label_column: Label column (else the first of
            :data:`~lrgym.tasks.text.data.LABEL_COLUMNS` present).
        train_split: Split that trains.
        eval_split: Split that validates and tests; if absent, ``"validation"`` or
            ``"test"``; with a single split, ``eval_size`` rows are carved from it.
        config: Hub configuration name.
        read_kwargs: Passed to ``datasets.load_dataset`` (``column_names``, ``delimiter``);
            a dict, stored as sorted ``(name, value)`` pairs.
        subset: Rows of the train pool (fixed sample, seed 0); ``None`` keeps all.
        eval_size: Rows of the evaluation pool (fixed sample, seed 0).
        val_size: Validation rows drawn per run from the evaluation pool; the rest test.
        max_seq_len: Tokens per text after truncation/padding (special tokens included).
        vocab_size: Largest word vocabulary of the BiLSTM (specials included).
        embed_dim: BiLSTM embedding width.
        hidden_size: BiLSTM hidden width per direction.
        split: ``"real"`` (the default: data from the hub or your files, kept out of the
            offline suites), ``"meta-train"`` or ``"held-out"``.
        target: Validation accuracy that counts as reaching the target.
        default_lr: Starting LR.
        total_steps: Optimizer steps per run.
        decision_interval: Steps between decisions.
        optimizer: Optimizer name (``"adam"``, ``"adamw"``, ``"sgd"``).
        batch_size: Minibatch size.
        weight_decay: Optimizer weight decay.
    """

    dataset: str
    source: str
    num_labels: int
    model: Literal["encoder", "bilstm"]
    encoder: str = "minilm"
    text_column: str | None = None
    label_column: str | None = None
    train_split: str = "train"
    eval_split: str = "test"
    config: str | None = None
    read_kwargs: tuple[tuple[str, Any], ...] = ()
    subset: int | None = None
    eval_size: int = 1000
    val_size: int = 500
    max_seq_len: int = 64
    vocab_size: int = 20000
    embed_dim: int = 128
    hidden_size: int = 128
    split: Split = "real"
    target: float = 0.8
    default_lr: float = 1e-3
    total_steps: int = 400
    decision_interval: int = 20
    optimizer: str = "adam"
    batch_size: int = 32
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        if self.model not in ("encoder", "bilstm"):
            raise ValueError(f"model must be 'encoder' or 'bilstm', got {self.model!r}")
        if self.num_labels < 2:
            raise ValueError(f"num_labels must be >= 2, got {self.num_labels}")
        if not 1 <= self.val_size < self.eval_size:
            raise ValueError(
                f"need 1 <= val_size < eval_size (the rest is the test set), got "
                f"val_size={self.val_size}, eval_size={self.eval_size}"
            )
        if self.max_seq_len < 4:
            raise ValueError(f"max_seq_len must be >= 4 tokens, got {self.max_seq_len}")
        if self.subset is not None and self.subset < 1:
            raise ValueError(f"subset must be a positive number of rows, got {self.subset}")
        if isinstance(self.read_kwargs, Mapping):  # users pass a dict; keep it hashable
            object.__setattr__(self, "read_kwargs", freeze(dict(self.read_kwargs)))

    @property
    def model_name(self) -> str:
        """Short model description for :class:`~lrgym.core.task.TaskInfo`."""
        if self.model == "bilstm":
            return f"BiLSTM {self.hidden_size}x2 (word vocab, max {self.max_seq_len} tokens)"
        names = {"minilm": "MiniLM-L6 BERT", "auto": "BERT (auto: bert-base or MiniLM)"}
        name = names.get(self.encoder, self.encoder)
        return f"{name} + linear head, fine-tuned (max {self.max_seq_len} tokens)"


_SST2 = {
    "dataset": "SST-2",
    "source": "stanfordnlp/sst2",
    "num_labels": 2,
    "text_column": "sentence",
    "eval_split": "validation",  # the hub's test split has no labels
    "eval_size": 872,
    "val_size": 436,
}
_IMDB = {"dataset": "IMDB", "source": "stanfordnlp/imdb", "num_labels": 2, "text_column": "text"}
_AG_NEWS = {"dataset": "AG News", "source": "fancyzhx/ag_news", "num_labels": 4}
_MINILM = {
    "model": "encoder",
    "encoder": "minilm",
    "optimizer": "adamw",
    "weight_decay": 0.01,
    "default_lr": 5e-5,
    "batch_size": 16,
    "total_steps": 150,
    "decision_interval": 15,
}
_BILSTM = {
    "model": "bilstm",
    "optimizer": "adam",
    "default_lr": 1e-3,
    "batch_size": 64,
    "total_steps": 400,
    "decision_interval": 20,
}

PRESETS: dict[str, TextTaskConfig] = {
    "SST2MiniLM-v0": TextTaskConfig(**_SST2, **_MINILM, subset=4000, max_seq_len=64, target=0.83),
    "IMDBMiniLM-v0": TextTaskConfig(
        **{**_MINILM, "total_steps": 100, "decision_interval": 10},  # long texts: fewer steps
        **_IMDB,
        subset=2000,
        eval_size=768,
        val_size=256,
        max_seq_len=128,
        target=0.75,
    ),
    "AGNewsMiniLM-v0": TextTaskConfig(
        **_AG_NEWS, **_MINILM, subset=4000, eval_size=1000, val_size=400, target=0.8
    ),
    "SST2BiLSTM-v0": TextTaskConfig(**_SST2, **_BILSTM, subset=20000, max_seq_len=64, target=0.75),
    "IMDBBiLSTM-v0": TextTaskConfig(
        **_IMDB,
        **_BILSTM,
        subset=10000,
        eval_size=2000,
        val_size=1000,
        max_seq_len=256,
        target=0.7,
    ),
    "AGNewsBiLSTM-v0": TextTaskConfig(
        **_AG_NEWS, **_BILSTM, subset=20000, eval_size=2000, val_size=1000, target=0.8
    ),
}
"""The registered text tasks by id (without the ``lrgym/`` namespace)."""


def text_task(preset: str, **overrides: Any) -> TorchTask:
    """The text task ``preset`` (a key of :data:`PRESETS`) with fields overridden.

    Args:
        preset: Preset name, e.g. ``"SST2MiniLM-v0"``.
        **overrides: Any :class:`TextTaskConfig` field, e.g. ``source="data/sst2.tsv"``,
            ``subset=1000``, ``max_seq_len=32``, ``encoder="auto"``.

    Returns:
        A :class:`~lrgym.core.task.TorchTask`; data and model load when a run is built.
    """
    try:
        base = PRESETS[preset.removeprefix("lrgym/")]
    except KeyError:
        raise ValueError(f"unknown text preset {preset!r}; use one of {sorted(PRESETS)}") from None
    valid = {f.name for f in dataclasses.fields(TextTaskConfig)}
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise TypeError(f"unknown text task option(s) {unknown}; valid options: {sorted(valid)}")
    return make_text_task(dataclasses.replace(base, **overrides))


def make_text_task(config: TextTaskConfig) -> TorchTask:
    """A :class:`~lrgym.core.task.TorchTask` for ``config`` (cheap: nothing loads yet)."""
    from lrgym.backends.torch_trainee import TorchTask
    from lrgym.tasks.text.models import bilstm_classifier, encoder_classifier

    data = TextData(config)
    if config.model == "encoder":
        model = partial(encoder_classifier, data=data)
    else:
        model = partial(bilstm_classifier, data=data)
    info = TaskInfo(
        "text classification",
        config.model_name,
        f"{config.dataset} ({config.source})",
        "accuracy",
        config.split,
        target=config.target,
        default_lr=config.default_lr,
        total_steps=config.total_steps,
        decision_interval=config.decision_interval,
    )
    return TorchTask(
        info,
        data=data,
        model=model,
        optimizer=config.optimizer,
        batch_size=config.batch_size,
        weight_decay=config.weight_decay,
    )
