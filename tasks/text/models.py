"""Models of the text tasks: a fine-tuned pretrained encoder, or a one-layer BiLSTM.

Both take right-padded token ids and return logits; the factories
(:func:`encoder_classifier`, :func:`bilstm_classifier`) size them from a task's data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from lrgym.tasks.text.hub import _from_pretrained, _transformers

if TYPE_CHECKING:
    from lrgym.tasks.text.data import TextData

_DROPOUT_FIELDS = (
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "classifier_dropout",
    "dropout",
    "attention_dropout",
    "seq_classif_dropout",
)


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

    The head is initialised from torch's RNG, which :class:`~lrgym.core.task.TorchTask` seeds.
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
