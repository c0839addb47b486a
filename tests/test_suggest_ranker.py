"""The suggester's ranking head (lrgym.suggester.ranker): labels, fit, format, ranking.

Synthetic logs only (no training runs): which optimizer lands a task within 5% of its best
depends on one probe feature, so only a model that reads the probes can pick it; where
it depends on the feature's size rather than its sign, the ridge's linear ``t ⊗ z`` terms
cannot express it and the trees can.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from lrgym.suggester import ProbeSettings, TrainSettings, load_suggester, train_suggester
from lrgym.suggester.model import FORMAT_VERSION, Suggester
from lrgym.suggester.probes import feature_names
from lrgym.suggester.ranker import RankerSettings, fit_ranker, pick, within_labels

SMALL = RankerSettings(
    n_estimators=60, max_depth=2, learning_rate=0.3, min_child_weight=1.0, members=2
)
"""A ranker small enough for tests (a few trees on a few hundred rows)."""


def test_within_labels_mark_configs_near_each_groups_best():
    val = np.array([0.90, 0.86, 0.80, 0.50, 0.48, 0.40])
    group = np.array([0, 0, 0, 1, 1, 1])
    assert within_labels(val, group).tolist() == [1, 1, 0, 1, 1, 0]  # 5% of 0.9 is 0.045
    assert within_labels(np.array([-0.2, -0.205, -0.3]), np.zeros(3)).tolist() == [1, 1, 0]


def test_pick_ranks_by_the_head_then_the_score():
    assert pick(np.array([0.2, 0.9, 0.9]), np.array([5.0, 1.0, 2.0])) == 2
    assert pick(np.zeros(3), np.array([1.0, 3.0, 3.0])) == 1  # no head: the score, first tie


def _optimizer_logs(n_tasks: int, size: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Synthetic logs: SGD wins on tasks whose probe loss ratio is far from 0 (``size``) or
    positive (not ``size``), Adam elsewhere; LR matters little, so the configuration alone
    cannot say which optimizer to pick."""
    probe = ProbeSettings(1, 10)
    names = feature_names(probe)
    rng = np.random.default_rng(3)
    runs, probes = [], []
    for i in range(n_tasks):
        level = (-1.5, 0.0, 1.5)[i % 3] if size else (-1.0, 1.0)[i % 2]
        sgd_wins = level != 0.0 if size else level > 0
        task = f"lrgym/O{i}-v0"
        feats = {n: 0.0 for n in names}
        feats["p0_log_loss_ratio"] = level + rng.normal(0, 0.2)
        probes.append(
            {
                "task": task, "split": "meta-train", "seed": 0, "anchor": 0.5,
                "n_probes": 1, "probe_steps": 10, "default_optimizer": "adam", **feats,
            }
        )  # fmt: skip
        for j in range(20):
            opt = "sgd" if j % 2 else "adam"
            lr = float(10 ** rng.uniform(-4, -1))
            good = (opt == "sgd") == sgd_wins
            val = (0.9 if good else 0.6) - 0.01 * abs(math.log10(lr) + 2.5) + rng.normal(0, 0.005)
            runs.append(
                {
                    "task": task, "split": "meta-train", "seed": 0, "total_steps": 40,
                    "config": json.dumps({"lr": lr, "optimizer": opt}),
                    "final_val_metric": val, "final_test_metric": val,
                }
            )  # fmt: skip
    return pd.DataFrame(runs), pd.DataFrame(probes)


@pytest.fixture(scope="module")
def trained() -> tuple[Suggester, pd.DataFrame]:
    runs, probes = _optimizer_logs(18)
    settings = TrainSettings(alphas=(1.0, 100.0), members=2, ranker=SMALL)
    return train_suggester(runs, probes, settings), probes


def test_ranking_head_reads_the_probes(trained):
    model, probes = trained
    cv = model.card["cross_validation"]
    assert cv["chosen"]["within_5pct"] >= 0.85  # left-out tasks get their optimizer
    assert cv["without_probe_features"]["within_5pct"] <= 0.75  # SGD for all
    assert cv["probe_gain_within_5pct_points"] >= 15  # 89% against 67% when written
    assert cv["chosen"]["within_5pct"] > cv["ridge_only"]["within_5pct"]  # not linear in t
    assert model.card["ranking_head_kept"] and model.ranker is not None
    assert "ranked by a gradient-boosted within-5% head" in model.card["kind"]
    assert model.card["ranker"]["n_estimators"] == SMALL.n_estimators
    for row, wins in ((0, "sgd"), (1, "adam"), (2, "sgd")):
        t = probes.loc[row, list(model.feature_names)].to_numpy(dtype=float)
        configs = [{"lr": 1e-3, "optimizer": o} for o in ("adam", "sgd")]
        pred = model.predict(t, 0.5, configs, slots=[0, 1], metric="accuracy")
        assert configs[pick(pred.within, pred.score)]["optimizer"] == wins
        assert np.all((0.0 <= pred.mean) & (pred.mean <= 1.0))


def test_ranking_head_is_dropped_where_it_does_not_rank_better():
    runs, probes = _optimizer_logs(10, size=False)  # linear in t: the ridge's t ⊗ z suffice
    model = train_suggester(runs, probes, TrainSettings(alphas=(1.0,), members=2, ranker=SMALL))
    assert model.card["ranking_head_kept"] is False and model.ranker is None
    assert "ranker" not in model.card and "ranking_head_cv" in model.card
    assert model.card["cross_validation"]["chosen"] == model.card["cross_validation"]["ridge_only"]


def test_ranking_head_round_trips_and_rejects_a_corrupt_member(trained, tmp_path):
    model, probes = trained
    data = json.loads((model.save(tmp_path / "s") / "suggester.json").read_text())
    assert data["format_version"] == FORMAT_VERSION == 3 and len(data["ranker"]["members"]) == 2
    loaded = load_suggester(tmp_path / "s")
    t = probes.loc[0, list(model.feature_names)].to_numpy(dtype=float)
    configs = [{"lr": lr, "optimizer": o} for lr in (1e-4, 1e-2) for o in ("adam", "sgd")]
    a, b = model.predict(t, 0.5, configs), loaded.predict(t, 0.5, configs)
    assert np.allclose(a.within, b.within) and np.allclose(a.score, b.score)
    data["ranker"]["members"][1] = {"learner": "not a model"}
    (tmp_path / "s" / "suggester.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"ranker.members\[1\] is not an XGBoost model"):
        load_suggester(tmp_path / "s")
    del data["ranker"]
    (tmp_path / "s" / "suggester.json").write_text(json.dumps(data))
    plain = load_suggester(tmp_path / "s")  # without a head the ridge ranks, as in v2
    assert plain.ranker is None and not plain.predict(t, 0.5, configs).within.any()


def test_fit_ranker_is_seeded_and_checks_its_input():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 3)), (rng.random(200) < 0.4).astype(float)
    a, b = fit_ranker(x, y, SMALL), fit_ranker(x, y, SMALL)
    assert np.array_equal(a.predict(x), b.predict(x))
    with pytest.raises(ValueError, match="rows of 3 columns"):
        a.predict(x[:, :2])


def test_shipped_suggester_has_the_head_its_card_describes():
    model = load_suggester()
    card = model.card
    assert card["ranking_head_kept"] and model.ranker is not None
    assert RankerSettings(**card["ranker"]) == model.ranker.settings
    assert card["cross_validation"]["chosen"] == card["ranking_head_cv"]
    assert len(model.ranker.boosters) == model.ranker.settings.members
    assert card["best_fixed"] and card["best_fixed_mean"]
