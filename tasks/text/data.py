"""Data of the text tasks: load the fixed pools, number the labels, tokenize (cached).

:class:`TextData` is a task's data factory: every run splits the cached evaluation pool at
random (from the run's seed) into validation and test rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from lrgym.core.task import ArraySplits
from lrgym.tasks.columns import pick_column, thaw, train_eval_pools
from lrgym.tasks.sources import DataSourceError, load_splits
from lrgym.tasks.text.tokenizers import (
    _encode_pretrained,
    _encode_words,
    load_tokenizer,
    word_tokenizer,
)

if TYPE_CHECKING:
    from lrgym.tasks.text.config import TextTaskConfig

TEXT_COLUMNS = ("text", "sentence", "review", "content", "document")
"""Text columns tried, in order, when a task names none."""
LABEL_COLUMNS = ("label", "labels", "class", "sentiment")
"""Label columns tried, in order, when a task names none."""

Pool = tuple[list[str], np.ndarray]
"""``(texts, raw labels)`` of one pool."""


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
