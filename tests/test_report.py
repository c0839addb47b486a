"""Report numbers on hand-built frames, and one end-to-end report on real runs."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lrgym.harness.compare import grid, run_grid
from lrgym.harness.measures import (
    SUMMARY_COLUMNS,
    lr_robustness,
    mean_ci,
    performance_profile,
    summary_table,
)
from lrgym.harness.report import fmt_mean_ci, md_table, write_report

INF = math.inf


def _runs(rows: list[tuple]) -> pd.DataFrame:
    """Runs frame from (task, scheduler, seed, initial_lr, default_lr, steps_to_target,
    final_test_metric, diverged) tuples; the other columns follow from these."""
    records = []
    for task, scheduler, seed, lr, default, steps, test, diverged in rows:
        records.append(
            {
                "task": task,
                "split": "meta-train",
                "scheduler": scheduler,
                "seed": seed,
                "initial_lr": lr,
                "default_lr": default,
                "metric": "accuracy",
                "target": 0.9,
                "final_val_metric": test,
                "best_val_metric": test,
                "final_test_metric": test,
                "reached_target": math.isfinite(steps),
                "steps_to_target": float(steps),
                "seconds_to_target": float(steps) / 100,
                "steps": 100,
                "total_steps": 100,
                "wall_seconds": 1.0,
                "diverged": diverged,
                "test_accuracy": test,
            }
        )
    return pd.DataFrame(records)


def _curves(runs: pd.DataFrame, steps=(0, 50, 100)) -> pd.DataFrame:
    rows = []
    for r in runs.itertuples():
        for i, step in enumerate(steps):
            if r.diverged and i > 0:
                break  # a diverged run's curve ends at its last healthy evaluation
            rows.append(
                {
                    "task": r.task,
                    "scheduler": r.scheduler,
                    "seed": r.seed,
                    "initial_lr": r.initial_lr,
                    "step": step,
                    "lr": r.initial_lr * (1 - step / 200),
                    "train_loss": 1.0 / (1 + step),
                    "val_loss": 1.0 / (1 + step),
                    "val_metric": 0.5 + 0.004 * step + 0.01 * r.seed,
                    "seconds": step / 100,
                }
            )
    return pd.DataFrame(rows)


# --- mean_ci --------------------------------------------------------------------------


def test_mean_ci_matches_hand_computation():
    values = [1.0, 2.0, 3.0, 6.0]
    mean, half = mean_ci(values)
    sd = math.sqrt(((1 - 3) ** 2 + (2 - 3) ** 2 + 0 + (6 - 3) ** 2) / 3)  # sqrt(14/3)
    assert mean == pytest.approx(3.0)
    assert half == pytest.approx(stats.t.ppf(0.975, 3) * sd / 2)
    assert half == pytest.approx(3.182446 * sd / 2, rel=1e-5)


def test_mean_ci_ignores_nan_and_handles_small_samples():
    assert mean_ci([1.0, math.nan, 3.0]) == pytest.approx((2.0, mean_ci([1.0, 3.0])[1]))
    assert mean_ci([5.0]) == (5.0, 0.0)
    assert mean_ci(np.array([5.0, math.nan])) == (5.0, 0.0)
    mean, half = mean_ci([math.nan, math.nan])
    assert math.isnan(mean) and math.isnan(half)
    assert all(math.isnan(x) for x in mean_ci([]))


# --- performance_profile --------------------------------------------------------------


def test_profile_best_everywhere_scores_one_and_never_reached_scores_zero():
    runs = _runs(
        [
            (task, sched, seed, 0.1, True, steps, 0.9, False)
            for task, best in [("a", 10), ("b", 40)]
            for sched, steps in [("fast", best), ("slow", 3 * best), ("never", INF)]
            for seed in (0, 1, 2)
        ]
    )
    score = performance_profile(runs)
    assert list(score.index) == ["fast", "slow", "never"]  # sorted descending
    assert score["fast"] == pytest.approx(1.0)
    assert score["never"] == pytest.approx(0.0)
    assert score["slow"] == pytest.approx((4 - 3) / 3)


def test_profile_ratio_two_on_the_only_task_scores_two_thirds():
    runs = _runs([("t", "best", 0, 0.1, True, 20, 0.9, False)])
    runs = pd.concat([runs, _runs([("t", "half", 0, 0.1, True, 40, 0.9, False)])])
    score = performance_profile(runs, tau_max=4.0)
    assert score["best"] == pytest.approx(1.0)
    assert score["half"] == pytest.approx(2 / 3, abs=2e-3)
    # and it agrees with the numeric integral AlgoPerf uses
    taus = np.linspace(1, 4, 1000)
    numeric = np.trapezoid((2 <= taus).astype(float), taus) / 3
    assert score["half"] == pytest.approx(numeric, abs=2e-3)


def test_profile_uses_median_over_seeds_default_lr_only_and_task_missed_by_all():
    runs = _runs(
        [
            # task a: "x" misses in 2 of 3 seeds -> median inf; "y" median 30
            ("a", "x", 0, 0.1, True, 10, 0.9, False),
            ("a", "x", 1, 0.1, True, INF, 0.5, False),
            ("a", "x", 2, 0.1, True, INF, 0.5, False),
            ("a", "y", 0, 0.1, True, 20, 0.9, False),
            ("a", "y", 1, 0.1, True, 30, 0.9, False),
            ("a", "y", 2, 0.1, True, 90, 0.9, False),
            # task b: everyone missed -> ratio inf for both
            ("b", "x", 0, 0.1, True, INF, 0.5, False),
            ("b", "y", 0, 0.1, True, INF, math.nan, True),
            # non-default LR runs must not count
            ("a", "x", 0, 1.0, False, 1, 0.9, False),
            ("b", "x", 0, 1.0, False, 1, 0.9, False),
        ]
    )
    score = performance_profile(runs)
    assert score["y"] == pytest.approx(0.5)  # best on a, missed b
    assert score["x"] == pytest.approx(0.0)


def test_profile_target_met_at_step_zero_and_validation():
    runs = _runs(
        [("t", "a", 0, 0.1, True, 0, 0.9, False), ("t", "b", 0, 0.1, True, 10, 0.9, False)]
    )
    score = performance_profile(runs)
    assert score["a"] == pytest.approx(1.0)
    assert score["b"] == pytest.approx(0.0)
    assert performance_profile(runs, measure="seconds_to_target")["a"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="tau_max"):
        performance_profile(runs, tau_max=1.0)
    with pytest.raises(ValueError, match="default LR"):
        performance_profile(runs.assign(default_lr=False))


# --- lr_robustness and summary_table --------------------------------------------------


def test_lr_robustness_shares():
    runs = _runs(
        [
            ("a", "s1", 0, 0.01, True, 10, 0.9, False),
            ("a", "s1", 1, 0.01, True, INF, 0.5, False),
            ("a", "s1", 0, 1.0, False, INF, math.nan, True),
            ("b", "s1", 0, 1.0, True, 5, 0.9, False),
            ("a", "s2", 0, 0.01, True, 10, 0.9, False),
            ("a", "s2", 1, 0.01, True, 10, 0.9, False),
            ("a", "s2", 0, 1.0, False, 10, 0.9, False),
            ("b", "s2", 0, 1.0, True, INF, 0.5, False),
        ]
    )
    table = lr_robustness(runs)
    assert list(table.index) == ["s1", "s2"]
    assert list(table.columns) == [0.01, 1.0, "all"]
    assert table.loc["s1", 0.01] == pytest.approx(0.5)
    assert table.loc["s1", 1.0] == pytest.approx(0.5)
    assert table.loc["s1", "all"] == pytest.approx(0.5)
    assert table.loc["s2", 0.01] == pytest.approx(1.0)
    assert table.loc["s2", 1.0] == pytest.approx(0.5)
    assert table.loc["s2", "all"] == pytest.approx(0.75)


def test_summary_table_numbers_and_all_diverged_scheduler():
    runs = _runs(
        [
            ("a", "ok", 0, 0.1, True, 10, 0.90, False),
            ("a", "ok", 1, 0.1, True, 30, 0.94, False),
            ("a", "ok", 2, 0.1, True, INF, 0.86, False),
            ("a", "ok", 0, 1.0, False, 1, 0.10, False),  # non-default: left out
            ("a", "boom", 0, 0.1, True, INF, math.nan, True),
            ("a", "boom", 1, 0.1, True, INF, math.nan, True),
        ]
    )
    table = summary_table(runs)
    assert list(table.columns) == list(SUMMARY_COLUMNS)
    ok = table.loc[("a", "ok")]
    assert (ok["test_mean"], ok["test_ci"]) == pytest.approx(mean_ci([0.90, 0.94, 0.86]))
    assert ok["median_steps_to_target"] == 30
    assert ok["reach_rate"] == pytest.approx(2 / 3)
    assert ok["diverged_share"] == 0 and ok["n_runs"] == 3
    boom = table.loc[("a", "boom")]
    assert math.isnan(boom["test_mean"]) and math.isinf(boom["median_steps_to_target"])
    assert boom["diverged_share"] == 1 and boom["reach_rate"] == 0


# --- write_report ---------------------------------------------------------------------


def _pngs(out) -> set[str]:
    return {p.name for p in (out / "plots").glob("*.png")}


def test_write_report_synthetic_edge_cases(tmp_path):
    """All-diverged scheduler, inf times, a single seed and a single initial LR."""
    runs = _runs(
        [
            ("lrgym/A-v0", "good", 0, 0.1, True, 50, 0.95, False),
            ("lrgym/A-v0", "boom", 0, 0.1, True, INF, math.nan, True),
            ("lrgym/B-v0", "good", 0, 0.01, True, INF, 0.5, False),
            ("lrgym/B-v0", "boom", 0, 0.01, True, INF, math.nan, True),
        ]
    )
    summary = write_report(tmp_path, runs, _curves(runs))
    text = summary.read_text()
    assert summary == tmp_path / "summary.md"
    assert "0.9500 ± 0.0000" in text and "n/a" in text and "not reached" in text
    assert "2 of 4 runs diverged" in text and "1 initial LR per task" in text
    assert _pngs(tmp_path) == {
        "lrgym_A-v0_val_metric.png",
        "lrgym_A-v0_lr.png",
        "lrgym_B-v0_val_metric.png",
        "lrgym_B-v0_lr.png",
    }  # one initial LR per task (two pooled): no robustness plot
    assert not list(tmp_path.rglob("*.tmp*"))  # atomic writes left no temporaries


def test_write_report_end_to_end(tmp_path):
    tasks = ["lrgym/BreastCancerXGB-v0", "lrgym/DiabetesXGB-v0"]
    schedulers = ["constant", "cosine"]
    runs, curves = run_grid(grid(tasks, schedulers, [0, 1], [None, 1.0]), total_steps=50)
    summary = write_report(tmp_path / "report", runs, curves)
    text = summary.read_text()
    for name in [*tasks, *schedulers]:
        assert name in text
    assert "## Profile score" in text and "## LR robustness" in text
    expected = {"robustness.png"} | {
        f"{t.replace('/', '_')}_{kind}.png" for t in tasks for kind in ("val_metric", "lr")
    }
    plots = tmp_path / "report" / "plots"
    assert _pngs(tmp_path / "report") == expected
    for name in expected:
        assert (plots / name).stat().st_size > 1024


# --- intervals within range, table alignment (issue 26 item 5, issue 27 item 5) ------------


def test_summary_intervals_stay_within_the_metric_range(tmp_path):
    """Two seeds far apart give a t-interval past accuracy 1; the table clips it to
    [0, 1] as the plots do (issue 26: "0.9730 ± 0.3434")."""
    runs = _runs(
        [
            ("lrgym/A-v0", "wide", 0, 0.1, True, 50, 1.0, False),
            ("lrgym/A-v0", "wide", 1, 0.1, True, 50, 0.946, False),
            ("lrgym/A-v0", "tight", 0, 0.1, True, 50, 0.90, False),
            ("lrgym/A-v0", "tight", 1, 0.1, True, 50, 0.90, False),
        ]
    )
    mean, half = mean_ci([1.0, 0.946])
    assert mean + half > 1  # the interval runs past the range
    text = write_report(tmp_path, runs, _curves(runs)).read_text()
    row = next(line for line in text.splitlines() if line.startswith("| wide |"))
    assert "0.9730 [" in row and ", 1.0000]" in row and "±" not in row.split("|")[2]
    table = "\n".join(line for line in text.splitlines() if line.startswith("| "))
    for low, high in re.findall(r"\[(-?[\d.]+), (-?[\d.]+)\]", table):
        assert 0 <= float(low) <= float(high) <= 1
    for mean_text, half_text in re.findall(r"([\d.]+) ± ([\d.]+)", table):
        assert 0 <= float(mean_text) - float(half_text) <= float(mean_text) + float(half_text) <= 1
    assert "clipped" in text  # the measures section says so


def test_fmt_mean_ci_clips_only_bounded_metrics():
    assert fmt_mean_ci(0.973, 0.3434, "accuracy") == "0.9730 [0.6296, 1.0000]"
    assert fmt_mean_ci(0.05, 0.1, "macro_f1") == "0.0500 [0.0000, 0.1500]"
    assert fmt_mean_ci(0.9, 0.05, "accuracy") == "0.9000 ± 0.0500"
    assert fmt_mean_ci(0.5, 1.0, "r2") == "0.5000 [-0.5000, 1.0000]"  # R²: no lower bound
    assert fmt_mean_ci(3.0, 5.0, "rmse") == "3.0000 [0.0000, 8.0000]"
    assert fmt_mean_ci(3.0, 5.0, "loss") == "3.0000 ± 5.0000"  # unknown: unbounded
    assert fmt_mean_ci(math.nan, 0.1, "accuracy") == "n/a"
    assert fmt_mean_ci(0.5, math.nan, "accuracy") == "0.5000"
    assert fmt_mean_ci(0.973, 0.3434, "accuracy", digits=3) == "0.973 [0.630, 1.000]"


def test_md_table_aligns_numbers_right_by_default():
    text = md_table(
        ["scheduler", "test", "steps", "note"],
        [["cosine", "0.97 ± 0.01", 50, "ok"], ["constant", "n/a", "not reached", "a|b"]],
    )
    lines = text.splitlines()
    assert lines[0] == "| scheduler | test | steps | note |"
    assert lines[1] == "| :--- | ---: | ---: | :--- |"
    assert lines[3] == "| constant | n/a | not reached | a\\|b |"


def test_md_table_explicit_alignment_and_errors():
    assert md_table(["a", "b", "c"], [[1, 2, 3]], align="lcr").splitlines()[1] == (
        "| :--- | :---: | ---: |"
    )
    assert md_table(["a", "b"], [], align=["right", "left"]).splitlines()[1] == "| ---: | :--- |"
    assert md_table(["a"], []).splitlines()[1] == "| :--- |"  # no rows: left
    with pytest.raises(ValueError, match="align"):
        md_table(["a", "b"], [[1, 2]], align="l")
    with pytest.raises(ValueError, match="align"):
        md_table(["a"], [[1]], align=["middle"])
