"""Sentence embeddings from a frozen encoder, cached on disk (the ``uci-sentiment``
families' inputs)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np


def embed_sentences(
    texts: list[str], encoder: str = "minilm", cache_dir: str | os.PathLike[str] | None = None
) -> np.ndarray:
    """Mean-pooled embeddings of ``texts`` from a frozen encoder, cached in ``cache_dir``.

    The cache file is named by a digest of the encoder name and the texts, so a changed
    file is re-encoded. Written atomically.
    """
    digest = hashlib.sha256(encoder.encode())
    for t in texts:
        digest.update(t.encode("utf-8", "replace") + b"\0")
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"embeddings-{digest.hexdigest()[:16]}.npy"
        if path.is_file():
            return np.load(path, allow_pickle=False)
    import torch

    from lrgym.tasks.text.hub import _from_pretrained, _transformers
    from lrgym.tasks.text.tokenizers import load_tokenizer

    tokenizer = load_tokenizer(encoder)
    model = _from_pretrained(_transformers().AutoModel, encoder).eval()
    chunks = []
    with torch.no_grad():
        for i in range(0, len(texts), 64):
            batch = tokenizer(
                texts[i : i + 64], padding=True, truncation=True, max_length=64, return_tensors="pt"
            )
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            chunks.append(((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).numpy())
    x = np.concatenate(chunks).astype(np.float32)
    if path is not None:
        from lrgym.io._atomic import atomic_path

        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.save(f, x)
    return x


__all__ = ["embed_sentences"]
