"""The `lrgym` command line, end to end through typer's CliRunner.

Success paths run real (tiny) comparisons, training and evaluation and check the files
they write; error paths must exit with code 2 and a message naming the problem, never a
traceback.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from shipped import shipped_agent_dirs
from typer.testing import CliRunner

import lrgym
from lrgym.cli import app
from lrgym.harness.compare import RUN_COLUMNS

runner = CliRunner()
ID = re.compile(r"lrgym/[\w.-]+-v\d+")
XGB_ACC, XGB_R2 = "lrgym/BreastCancerXGB-v0", "lrgym/DiabetesXGB-v0"  # the fastest tasks


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def flat(text: str) -> str:
    """Output with rich's line wrapping undone."""
    return " ".join(text.split())


def assert_usage_error(result, *needles: str) -> None:
    out = flat(result.output)
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert "error" in out.lower()
    for needle in needles:
        assert needle in out, (needle, out)


# --- tasks, check -------------------------------------------------------------------------


def test_tasks_lists_every_id():
    result = invoke("tasks")
    assert result.exit_code == 0, result.output
    assert set(ID.findall(result.output)) == set(lrgym.task_ids(variants=True, superseded=True))


def test_tasks_split_held_out():
    result = invoke("tasks", "--split", "held-out")
    assert result.exit_code == 0, result.output
    listed = set(ID.findall(result.output))
    assert listed == set(lrgym.task_ids("held-out", variants=True))
    assert not listed & set(lrgym.task_ids("meta-train"))


def test_tasks_bad_split():
    assert_usage_error(invoke("tasks", "--split", "test"), "'test'", "held-out", "meta-train")


def test_check_passes_on_builtin_task():
    result = invoke("check", "lrgym/DigitsMLP-v0", "--steps", "20")
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output and "FAIL" not in result.output
    assert result.output.count("PASS") >= 5


def test_check_unknown_task_suggests_close_id():
    assert_usage_error(invoke("check", "lrgym/DigitsMLPP-v0"), "lrgym/DigitsMLP-v0")


# --- compare ------------------------------------------------------------------------------


def test_compare_end_to_end(tmp_path):
    out = tmp_path / "cmp"
    result = invoke(
        "compare",
        "--tasks", f"{XGB_ACC},{XGB_R2}",
        "--schedulers", "constant,cosine",
        "--seeds", "2",
        "--total-steps", "30",
        "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output

    runs = pd.read_csv(out / "runs.csv")
    assert list(runs.columns[: len(RUN_COLUMNS)]) == list(RUN_COLUMNS)
    assert all(c.startswith("test_") for c in runs.columns[len(RUN_COLUMNS) :])
    assert len(runs) == 8
    assert set(runs["task"]) == {XGB_ACC, XGB_R2}
    assert set(runs["scheduler"]) == {"constant", "cosine"}
    assert set(runs["seed"]) == {0, 1}
    assert (runs["total_steps"] == 30).all() and runs["default_lr"].all()
    ok = runs[~runs["diverged"]]
    assert len(ok) > 0 and (ok["steps"] == 30).all()
    acc = runs[runs["metric"] == "accuracy"]
    assert set(acc["task"]) == {XGB_ACC}
    for col in ("final_val_metric", "best_val_metric", "final_test_metric"):
        assert acc[col].between(0, 1).all(), acc[col]
    assert (runs["best_val_metric"] >= runs["final_val_metric"] - 1e-12).all()
    assert (runs[runs["task"] == XGB_R2]["final_val_metric"] <= 1).all()
    assert dict(zip(runs["task"], runs["split"], strict=False)) == {
        XGB_ACC: "meta-train",
        XGB_R2: "held-out",
    }

    curves = pd.read_csv(out / "curves.csv")
    assert len(curves) > len(runs)
    assert curves.groupby(["task", "scheduler", "seed"]).ngroups == 8
    assert curves["step"].max() == 30
    lrs = curves.groupby(["task", "scheduler", "seed"])["lr"].nunique().unstack("scheduler")
    assert (lrs["constant"] == 1).all() and (lrs["cosine"] > 2).all()

    summary = (out / "summary.md").read_text()
    assert XGB_ACC in summary and XGB_R2 in summary
    plots = sorted((out / "plots").glob("*.png"))
    assert len(plots) == 4
    for png in plots:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000


# --- error paths --------------------------------------------------------------------------


def test_compare_unknown_task(tmp_path):
    out = tmp_path / "out"
    assert_usage_error(invoke("compare", "--tasks", "lrgym/NopeXGB-v0", "--out", out), "NopeXGB")
    assert not out.exists()  # validated before anything is written


@pytest.mark.parametrize("lr", ["0", "-1", "nan", "abc"])
def test_compare_bad_initial_lr(tmp_path, lr):
    result = invoke("compare", "--tasks", XGB_R2, "--initial-lrs", lr, "--out", tmp_path / "o")
    assert_usage_error(result, f"'{lr}'", "initial LR")


def test_compare_zero_seeds(tmp_path):
    result = invoke("compare", "--tasks", XGB_R2, "--seeds", "0", "--out", tmp_path / "o")
    assert_usage_error(result, "--seeds")


def test_compare_out_is_a_file(tmp_path):
    existing = tmp_path / "results.txt"
    existing.write_text("keep me")
    result = invoke("compare", "--tasks", XGB_R2, "--seeds", "1", "--out", existing)
    assert_usage_error(result, "--out", "results.txt")
    assert existing.read_text() == "keep me"


def test_compare_unknown_scheduler(tmp_path):
    result = invoke("compare", "--tasks", XGB_R2, "--schedulers", "cosin", "--out", tmp_path)
    assert_usage_error(result, "'cosin'", "cosine")


def test_train_held_out_task(tmp_path):
    out = tmp_path / "agent"
    result = invoke("train", "--tasks", "lrgym/WineMLP-v0", "--out", out, "--no-progress")
    assert_usage_error(result, "lrgym/WineMLP-v0", "held-out")
    assert not out.exists()


def test_train_real_task_refused(tmp_path):
    result = invoke("train", "--tasks", "lrgym/TitanicMLP-v0", "--out", tmp_path / "a")
    assert_usage_error(result, "lrgym/TitanicMLP-v0", "cannot be trained on")


def test_train_negative_n_steps(tmp_path):
    result = invoke("train", "--tasks", "lrgym/DigitsMLP-v0", "--n-steps", "-1", "--out", tmp_path)
    assert_usage_error(result, "n_steps", "-1")


@pytest.mark.parametrize(
    ("flag", "value", "words"),
    [
        ("--hparams", "lr,nope", ("hparams", "nope")),
        ("--drop-features", "nope", ("drop_features", "nope")),
        ("--default-lr-share", "2", ("default_lr_share", "2")),
    ],
)
def test_train_bad_setting(tmp_path, flag, value, words):
    result = invoke("train", "--tasks", "lrgym/DigitsMLP-v0", flag, value, "--out", tmp_path)
    assert_usage_error(result, *words)


def test_evaluate_unknown_agent(tmp_path):
    assert_usage_error(invoke("evaluate", "--agent", "nope", "--out", tmp_path), "'nope'")


def test_train_resume_without_config(tmp_path):
    assert_usage_error(invoke("train", "--resume", tmp_path), "config.yaml", str(tmp_path))


def test_error_message_with_brackets_is_printed_verbatim(tmp_path):
    (tmp_path / "res[").mkdir()
    existing = tmp_path / "res[" / "final]"  # the path holds "[/final]", a markup closing tag
    existing.write_text("")
    assert_usage_error(invoke("compare", "--tasks", XGB_R2, "--out", existing), "res[/final]")


# --- train, then evaluate -----------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_agent(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "agent"
    result = invoke(
        "train",
        "--tasks", "lrgym/DigitsMLP-v0",
        "--total-timesteps", "128",
        "--n-envs", "1",
        "--n-steps", "64",
        "--batch-size", "32",
        "--episode-steps", "60",
        "--decision-interval", "10",
        "--batched", "0",
        "--val-every", "1",
        "--out", out,
        "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 0, (result.output, result.exception)
    assert str(out) in flat(result.output)
    return out


def test_train_through_cli(cli_agent):
    agent = lrgym.load_agent(cli_agent)
    assert agent.card.tasks == ["lrgym/DigitsMLP-v0"]
    assert agent.card.total_timesteps >= 128
    cfg = agent.card.config
    assert (cfg["episode_steps"], cfg["decision_interval"], cfg["n_envs"]) == (60, 10, 1)
    assert (cfg["ppo"]["n_steps"], cfg["ppo"]["batch_size"]) == (64, 32)
    assert (cli_agent / "config.yaml").is_file()


def test_evaluate_updates_card(cli_agent, tmp_path):
    before = json.loads((cli_agent / "card.json").read_text())["evaluation"]
    out = tmp_path / "eval"
    result = invoke(
        "evaluate",
        "--agent", cli_agent,
        "--tasks", XGB_R2,
        "--seeds", "1",
        "--total-steps", "30",
        "--out", out,
        "--update-card",
    )  # fmt: skip
    assert result.exit_code == 0, (result.output, result.exception)
    after = json.loads((cli_agent / "card.json").read_text())["evaluation"]
    assert set(before) < set(after)
    (key,) = set(after) - set(before)
    assert key == XGB_R2
    assert after[key] == (out / "summary.md").read_text()
    runs = pd.read_csv(out / "runs.csv")
    assert f"learned:{cli_agent}" in set(runs["scheduler"])
    assert len(runs) == 1 + len(lrgym.controllers.BASELINES)
    lrgym.load_agent(cli_agent)  # the updated card still loads


# --- issue 26: inputs checked at the door, clean errors ---------------------------------------

TINY = ["--tasks", XGB_R2, "--schedulers", "constant", "--seeds", "1", "--total-steps", "10"]


@pytest.mark.parametrize(
    ("source", "needles"),
    [
        ("x = (\n", ["syntax_mod", "SyntaxError", "line 1"]),
        ("raise RuntimeError('boom at import')\n", ["raising_mod", "RuntimeError", "boom"]),
    ],
    ids=["syntax-error", "raises"],
)
def test_import_of_a_broken_module_names_it_and_its_error_line(
    tmp_path, monkeypatch, source, needles
):
    name = needles[0]
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("LRGYM_IMPORT", raising=False)
    result = invoke("--import", name, "tasks")
    assert_usage_error(result, "--import", *needles, f"{name}.py")


@pytest.mark.parametrize("value", ["", " , ", "a/b.py"])
def test_import_of_no_module_or_a_path_is_refused(value, monkeypatch):
    monkeypatch.delenv("LRGYM_IMPORT", raising=False)
    assert_usage_error(invoke("--import", value, "tasks"), "--import")


def test_output_path_with_markup_brackets_is_printed_as_is(tmp_path):
    out = tmp_path / "r[bold]x[/bold]"
    result = invoke("compare", *TINY, "--out", out)
    assert result.exit_code == 0, (result.output, result.exception)
    unwrapped = "".join(result.output.split())  # rich wraps long paths mid-word
    assert str(out / "runs.csv") in unwrapped  # brackets kept, no markup error
    assert (out / "summary.md").is_file()


def test_journal_that_is_a_directory_is_a_clean_error(tmp_path):
    (tmp_path / "out" / "runs.jsonl").mkdir(parents=True)
    result = invoke("compare", *TINY, "--out", tmp_path / "out")
    assert_usage_error(result, "runs.jsonl", "is a directory", "another output folder")


@pytest.mark.parametrize("name", ["runs.jsonl", "plots", "summary.md"])
def test_links_in_the_output_folder_are_refused_and_nothing_outside_changes(tmp_path, name):
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / ("dir" if name == "plots" else "file")
    if name == "plots":
        target.mkdir()
        (target / ".keep.abcdefgh.tmp.png").write_text("keep")  # a temp-like name
    else:
        target.write_text("keep")
    before = {p: p.read_bytes() for p in outside.rglob("*") if p.is_file()}
    out = tmp_path / "out"
    out.mkdir()
    (out / name).symlink_to(target)
    result = invoke("compare", *TINY, "--out", out)
    assert_usage_error(result, "symbolic link", name)
    assert {p: p.read_bytes() for p in outside.rglob("*") if p.is_file()} == before


def test_init_card_naming_a_path_is_refused(tmp_path):
    from lrgym.meta_init.checkpoint import resolve_init

    init = tmp_path / "init"
    shutil.copytree(resolve_init("meta-init-digits"), init)
    card = json.loads((init / "card.json").read_text())
    card["family_options"] = {"cache_dir": str(tmp_path / "elsewhere")}
    (init / "card.json").write_text(json.dumps(card))
    out = tmp_path / "out"
    grid = ["--tasks", "meta-init-digits", "--schedulers", "constant", "--seeds", "1"]
    result = invoke("compare", *grid, "--total-steps", "10", "--init", init, "--out", out)
    assert_usage_error(result, "family_options names a path", "cache_dir", "command line")
    assert not (tmp_path / "elsewhere").exists() and not out.exists()


def test_init_data_needs_init(tmp_path):
    result = invoke("compare", *TINY, "--init-data", tmp_path, "--out", tmp_path / "o")
    assert_usage_error(result, "--init-data needs --init")


def test_calibrate_refuses_when_every_run_diverged(monkeypatch):
    """A task whose every baseline run diverges gets no target from its untrained model."""
    import lrgym.harness.calibrate as calibration

    def all_diverged(specs, **kwargs):
        rows = [
            {"task": s.task, "scheduler": s.scheduler, "seed": s.seed, "metric": "r2",
             "final_val_metric": 0.1, "diverged": True}
            for s in specs
        ]  # fmt: skip
        return pd.DataFrame(rows), pd.DataFrame()

    monkeypatch.setattr(calibration, "run_grid", all_diverged)
    with pytest.raises(ValueError, match="no run of any static schedule ended without diverging"):
        calibration.calibrate([XGB_R2], seeds=[100])
    result = invoke("calibrate", XGB_R2, "--seeds", "1", "--no-write")
    assert_usage_error(result, "without diverging", XGB_R2)


def test_calibrate_leaves_diverged_and_non_finite_runs_out(monkeypatch):
    import lrgym.harness.calibrate as calibration

    def some_diverged(specs, **kwargs):
        rows = []
        for s in specs:
            value, diverged = 0.8, False
            if s.scheduler == "constant":
                value, diverged = 0.99, True  # its untrained model's metric: not a target
            elif s.scheduler == "cosine":
                value = math.nan
            row = {"task": s.task, "scheduler": s.scheduler, "seed": s.seed, "metric": "r2"}
            rows.append({**row, "final_val_metric": value, "diverged": diverged})
        return pd.DataFrame(rows), pd.DataFrame()

    monkeypatch.setattr(calibration, "run_grid", some_diverged)
    (found,) = calibration.calibrate([XGB_R2], seeds=[100, 101])
    assert "constant" not in found.medians and "cosine" not in found.medians
    assert found.best_median == pytest.approx(0.8) and found.target == pytest.approx(0.77)


def test_journal_fingerprint_covers_card_and_weights_not_later_results(tmp_path):
    """A rerun after a card or weights change runs again; a summary or notes written into
    the card afterwards (evaluate --update-card) do not make the recorded runs stale."""
    from lrgym.harness.compare import RunSpec
    from lrgym.harness.results_store import folder_fingerprint, run_key, scheduler_fingerprint
    from lrgym.meta_init.checkpoint import resolve_init

    agent = tmp_path / "agent"
    shutil.copytree(shipped_agent_dirs()[0], agent)
    name = f"learned:{agent}"
    original = scheduler_fingerprint(name)
    assert original and original == folder_fingerprint(agent)
    card = json.loads((agent / "card.json").read_text())
    card["evaluation"]["later"] = "| a table written after the runs |"
    card["notes"] = [*card.get("notes", []), "prose added after the runs"]
    (agent / "card.json").write_text(json.dumps(card))
    assert scheduler_fingerprint(name) == original
    card["action"]["max_log2_step"] = 0.5  # changes every decision
    (agent / "card.json").write_text(json.dumps(card))
    changed_card = scheduler_fingerprint(name)
    assert changed_card != original
    weights = bytearray((agent / "policy.safetensors").read_bytes())
    weights[-1] ^= 1
    (agent / "policy.safetensors").write_bytes(bytes(weights))
    assert scheduler_fingerprint(name) not in (original, changed_card)

    init = tmp_path / "init"
    shutil.copytree(resolve_init("meta-init-digits"), init)
    spec = RunSpec("meta-init/digits-0-v0", "constant", 0, None, str(init))
    key = run_key(spec, 10, {f"init:{init}": folder_fingerprint(init)})
    card = json.loads((init / "card.json").read_text())
    card["selected_iteration"] += 1
    (init / "card.json").write_text(json.dumps(card))
    assert run_key(spec, 10, {f"init:{init}": folder_fingerprint(init)}) != key
    plain = RunSpec("meta-init/digits-0-v0", "constant", 0)
    assert len(json.loads(run_key(plain, 10, {}))) == 7  # without --init: the earlier key


@pytest.mark.parametrize("name", ["checkpoints", "best", "tb"])
def test_links_in_a_train_run_folder_are_refused(tmp_path, name):
    """`lrgym train --overwrite/--resume` writes and removes checkpoints, best/ and the
    agent's files in place: a planted link there must not lead outside the folder."""
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "dir" / "keep.txt").write_text("keep")
    out = tmp_path / "run"
    out.mkdir()
    (out / name).symlink_to(outside / "dir")
    result = invoke(
        "train", "--tasks", "lrgym/DigitsMLP-v0", "--out", out, "--overwrite", "--no-progress"
    )
    assert_usage_error(result, "symbolic link", name)
    assert [p.name for p in (outside / "dir").iterdir()] == ["keep.txt"]
    assert (outside / "dir" / "keep.txt").read_text() == "keep"
