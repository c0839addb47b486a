"""Tokenizers of the text tasks: a pretrained encoder's, or a word vocabulary for the BiLSTM.

Both encoders turn texts into int64 token ids right-padded/truncated to a fixed length.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from lrgym.tasks.text.hub import TEXT_EXTRA_HINT, _from_pretrained, _transformers


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
