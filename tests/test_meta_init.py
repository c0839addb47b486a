"""`lrgym meta-init`: split hygiene, determinism, the card, load_init, --init, errors.

Tiny runs on scikit-learn's digits (offline); the text family's MiniLM run is `slow`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import lrgym
from lrgym.cli import app
from lrgym.meta_init import (
    META_SPLITS,
    FamilySettings,
    InitFamily,
    ModelSpec,
    SplitHygieneError,
    SplitPool,
    UnknownFamilyError,
    make_family,
    register_init_family,
)
from lrgym.meta_init.algorithms import MetaInitConfig, meta_train
from lrgym.meta_init.checkpoint import InitCard, InitLoadError, load_init, save_init
from lrgym.meta_init.tasks import task_id

runner = CliRunner()
TINY = {"meta_iterations": 4, "meta_batch": 2, "inner_steps": 2, "val_every": 2, "val_tasks": 2}
UCI = Path(__file__).resolve().parents[2] / "shared" / "data" / "uci_sentiment"


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


pytestmark = pytest.mark.usefixtures("forget_tasks")  # meta-test tasks and groups


@pytest.mark.parametrize("split", ["meta-train", "meta-val"])
def test_digits_meta_test_classes_never_in_training_or_validation(split):
    fam = make_family("digits")
    pools = fam.pools()
    test_classes = set(pools["meta-test"].classes)
    assert not test_classes & set(pools[split].classes)
    assert not pools["meta-test"].sources & pools[split].sources
    rng = np.random.default_rng(0)
    for _ in range(50):  # episodes drawn for training never show a meta-test class
        assert not set(fam.sample_episode(split, rng).classes) & test_classes
    for i in range(25):  # and meta-test tasks use meta-test classes only
        _, episode = fam.meta_test_task(i)
        assert set(episode.classes) <= test_classes


def test_shared_source_between_splits_is_refused():
    class Leaky(InitFamily):
        settings = FamilySettings(2, 1, 1, 1, 1, True, ModelSpec("mlp", (2,), 2, (4,)))

        def load_split(self, split):
            x = np.zeros((8, 2), np.float32)
            y = np.repeat([0, 1], 4)
            sources = {"meta-train": {"a"}, "meta-val": {"b"}, "meta-test": {"a", "c"}}
            return SplitPool(x, y, frozenset(sources[split]))

    with pytest.raises(SplitHygieneError, match="meta-train and meta-test share"):
        Leaky().pools()


def test_uci_domains_must_differ():
    with pytest.raises(SplitHygieneError, match="three different domains"):
        make_family("uci-sentiment", data="somewhere", domains=("imdb", "yelp", "imdb"))


@pytest.mark.parametrize("algorithm", ["fomaml", "reptile", "anil", "multitask"])
def test_meta_train_is_deterministic_under_a_seed(algorithm):
    fam = make_family("digits")
    a = meta_train(fam, MetaInitConfig(algorithm=algorithm, seed=3, **TINY))
    b = meta_train(fam, MetaInitConfig(algorithm=algorithm, seed=3, **TINY))
    c = meta_train(fam, MetaInitConfig(algorithm=algorithm, seed=4, **TINY))
    assert a.state.keys() == b.state.keys()
    assert all(torch.equal(a.state[k], b.state[k]) for k in a.state)
    assert a.val_history == b.val_history
    assert any(not torch.equal(a.state[k], c.state[k]) for k in a.state)


def test_meta_learning_improves_meta_val_accuracy():
    fam = make_family("digits")
    result = meta_train(fam, MetaInitConfig(algorithm="reptile", meta_iterations=30, val_every=30))
    (_, before), (_, after) = result.val_history
    assert after > before
    assert result.selected_iteration == 30


def test_cli_meta_init_end_to_end_card_and_load(tmp_path):
    out = tmp_path / "init"
    result = invoke(
        "meta-init", "--family", "digits", "--algorithm", "reptile", "--out", out,
        "--meta-iterations", 4, "--meta-batch", 2, "--inner-steps", 2, "--val-every", 2,
        "--val-tasks", 2, "--eval-tasks", 2, "--eval-schedulers", "constant,learned:default",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    card = json.loads((out / "card.json").read_text())
    assert card["family"] == "digits" and card["algorithm"] == "reptile"
    assert card["config"]["inner_steps"] == 2 and card["config"]["meta_batch"] == 2
    assert card["config"]["meta_iterations"] == 4 and card["config"]["meta_lr"] == 0.5
    assert card["splits"]["meta-test"]["classes"] == [7, 8, 9]
    assert card["wall_seconds"] > 0 and card["selected_iteration"] in (0, 2, 4)
    rows = {(r["init"], r["scheduler"]) for r in card["evaluation"]}
    assert rows == {(i, s) for i in ("random", "reptile") for s in ("constant", "learned:default")}
    assert not any(p.suffix in (".pkl", ".pt") for p in out.iterdir())

    model = lrgym.load_init(out)
    from safetensors.torch import load_file  # the weights: safetensors, no pickle

    state = load_file(str(out / "init.safetensors"))
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    assert model(torch.zeros(3, 64)).shape == (3, 2)

    again = invoke("meta-init", "--family", "digits", "--out", out, "--eval-tasks", 0)
    assert again.exit_code == 2 and "--overwrite" in again.output


def test_init_into_a_mismatched_model_names_both_shapes(tmp_path):
    fam = make_family("digits")
    result = meta_train(fam, MetaInitConfig(**TINY))
    card = InitCard("digits", fam.settings.model.to_json(), {}, "fomaml", {}, 0, [], 1, 1, {})
    save_init(tmp_path, result.state, card)
    wrong = torch.nn.Sequential(torch.nn.Linear(10, 3))
    with pytest.raises(InitLoadError) as info:
        load_init(tmp_path, wrong)
    message = str(info.value)
    assert "body.1.weight (64, 64)" in message and "0.weight (3, 10)" in message
    with pytest.raises(InitLoadError, match="not an init folder"):
        load_init(tmp_path / "missing")


def test_unknown_family_is_a_clear_error(tmp_path):
    with pytest.raises(UnknownFamilyError, match="registered: cifar10, digits"):
        make_family("digitz")
    result = invoke("meta-init", "--family", "digitz", "--out", tmp_path)
    assert result.exit_code == 2
    assert "unknown meta-init family 'digitz'" in result.output and "digits" in result.output
    missing = invoke("meta-init", "--family", "cifar10", "--out", tmp_path)
    assert missing.exit_code == 2 and "--data" in missing.output
    extra = invoke("meta-init", "--family", "digits", "--data", "x.npz", "--out", tmp_path)
    assert extra.exit_code == 2 and "takes no option(s) ['data']" in extra.output


def test_compare_with_init_fine_tunes_meta_test_tasks(tmp_path, monkeypatch):
    monkeypatch.delenv("LRGYM_IMPORT", raising=False)  # restored after --import below
    init = tmp_path / "init"
    fam = make_family("digits")
    result = meta_train(fam, MetaInitConfig(**TINY))
    card = InitCard("digits", fam.settings.model.to_json(), {}, "fomaml", {}, 0, [], 1, 1, {})
    save_init(init, result.state, card)
    out = tmp_path / "cmp"
    res = invoke(
        "compare", "--tasks", "meta-init-digits:2", "--schedulers", "constant", "--seeds", 1,
        "--total-steps", 20, "--init", init, "--out", out,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert json.loads((out / "init.json").read_text())["init"] == str(init.resolve())
    runs = (out / "runs.csv").read_text()
    assert task_id("digits", 1) in runs
    # the random-init baseline of the same tasks, through --import
    res = invoke(
        "--import", "lrgym.meta_init.builtin_tasks", "compare", "--tasks", "meta-init-digits:1",
        "--schedulers", "constant", "--seeds", 1, "--total-steps", 10, "--out", tmp_path / "rnd",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert not (tmp_path / "rnd" / "init.json").exists()
    # evaluate: the learned agent and the baselines, all from the init
    res = invoke(
        "evaluate", "--tasks", "meta-init-digits:1", "--seeds", 1, "--total-steps", 10,
        "--init", init, "--out", tmp_path / "ev",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "learned:default" in (tmp_path / "ev" / "runs.csv").read_text()
    # resuming a results folder with another init (or none) is refused
    res = invoke(
        "compare", "--tasks", "meta-init-digits:1", "--schedulers", "constant", "--seeds", 1,
        "--total-steps", 10, "--out", tmp_path / "rnd", "--init", init,
    )  # fmt: skip
    assert res.exit_code == 2 and "without --init" in res.output
    # an init whose architecture does not fit the task is refused before any run
    other = tmp_path / "other"
    small = {**result.state, "head.bias": torch.zeros(3), "head.weight": torch.zeros(3, 64)}
    save_init(other, small, card)
    res = invoke(
        "compare", "--tasks", "meta-init-digits:1", "--schedulers", "constant", "--seeds", 1,
        "--init", other, "--out", tmp_path / "cmp2",
    )  # fmt: skip
    assert res.exit_code == 2
    assert "head.weight (3, 64)" in res.output and "head.weight (2, 64)" in res.output


def test_user_family_registration(tmp_path):
    class Blobs(InitFamily):
        settings = FamilySettings(2, 3, 4, 5, 5, True, ModelSpec("mlp", (2,), 2, (8,)))

        def load_split(self, split):
            k = META_SPLITS.index(split)
            rng = np.random.default_rng(k)
            classes = [2 * k, 2 * k + 1]
            y = np.repeat(classes, 20)
            x = (rng.normal(size=(40, 2)) + (y[:, None] % 2) * 3).astype(np.float32)
            return SplitPool(x, y, frozenset(f"class:{c}" for c in classes))

    register_init_family("blobs", Blobs)
    fam = make_family("blobs")
    assert fam.name == "blobs"
    result = meta_train(fam, MetaInitConfig(**TINY))
    assert set(result.state) == {"body.1.weight", "body.1.bias", "head.weight", "head.bias"}
    task = lrgym.make_task(task_id("blobs", 0))
    assert task.build(0, 0.01).evaluate("val").metrics["accuracy"] >= 0
    assert "classes [4, 5]" in task.info.data or "classes [5, 4]" in task.info.data
    trainee = task.build(0, task.info.default_lr)
    trainee.train(task.info.total_steps)
    assert trainee.evaluate("val").metric > 0.8  # the separable blobs are learned


@pytest.mark.slow
@pytest.mark.skipif(not UCI.is_dir(), reason="needs the UCI sentiment files")
def test_uci_sentiment_family_domains_are_held_out(tmp_path):
    fam = make_family("uci-sentiment", data=str(UCI), cache_dir=str(tmp_path))
    splits = fam.describe_splits()
    assert splits["meta-test"]["sources"] == ["domain:imdb"]
    assert splits["meta-train"]["sources"] == ["domain:amazon"]
    result = meta_train(fam, MetaInitConfig(**TINY))
    assert result.state["body.1.weight"].shape == (32, 384)


def test_shipped_init_loads_by_name_and_is_small():
    from lrgym.deploy.agent import shipped_agents
    from lrgym.meta_init.checkpoint import read_init, resolve_init, shipped_inits

    assert "meta-init-digits" in shipped_inits()
    assert "meta-init-digits" not in shipped_agents()  # inits are not agents
    path = resolve_init("meta-init-digits")
    assert sum(f.stat().st_size for f in path.iterdir()) < 2_000_000
    _, card = read_init(path)
    assert card.family == "digits" and card.evaluation
    model = lrgym.load_init("meta-init-digits")
    assert model(torch.zeros(1, 64)).shape == (1, 2)


def test_meta_test_tasks_are_fixed_by_index_and_settings_are_checked():
    fam = make_family("digits")
    a, _ = fam.meta_test_task(4)
    b, _ = make_family("digits").meta_test_task(4)
    assert all(np.array_equal(getattr(a, f), getattr(b, f)) for f in a.__dataclass_fields__)
    assert len(a.y_train) == 10 and set(np.unique(a.y_train)) == {0, 1}
    with pytest.raises(ValueError, match="model with n_way outputs"):
        FamilySettings(3, 5, 15, 40, 100, True, ModelSpec("mlp", (64,), 2))


def test_uci_sentiment_relabel_draws_the_label_assignment_per_task(tmp_path, monkeypatch):
    """Same domains, model, budget and target as ``uci-sentiment``; only the labelling
    differs: fixed (0 negative) there, drawn per task here. Runs on tiny stand-in files
    with a stand-in encoder (the real one is MiniLM)."""
    from dataclasses import replace

    from lrgym.meta_init import families

    for stem in families.UCI_FILES.values():
        lines = [f"{stem} sentence {i}\t{i % 2}" for i in range(60)]
        (tmp_path / f"{stem}_labelled.txt").write_text("\n".join(lines) + "\n")
    rng = np.random.default_rng(0)
    monkeypatch.setattr(
        families,
        "embed_sentences",
        lambda texts, encoder, cache_dir: rng.normal(size=(len(texts), 384)).astype(np.float32),
    )
    fixed = make_family("uci-sentiment", data=str(tmp_path))
    relabel = make_family("uci-sentiment-relabel", data=str(tmp_path))
    assert relabel.settings == replace(fixed.settings, permute_labels=True)
    assert relabel.describe_splits() == fixed.describe_splits()
    assert relabel.pools()["meta-test"].sources == {"domain:imdb"}
    draws = np.random.default_rng(1)
    assignments = {relabel.sample_episode("meta-train", draws).classes for _ in range(20)}
    assert assignments == {(0, 1), (1, 0)}
    assert {fixed.sample_episode("meta-train", draws).classes for _ in range(20)} == {(0, 1)}
    _, episode = relabel.meta_test_task(0)
    assert episode.sources == {"domain:imdb"}
