"""What a new user meets in the first hour: help texts, task listings, user tasks from the
CLI and in workers, calibration, `lrgym train`'s output, plots, and small courtesies."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from rich.console import Console
from shipped import shipped_agent_dirs
from test_report import _curves, _runs
from typer.testing import CliRunner
from user_tasks_example import TINY_ID, make_tiny, tiny_regression

import lrgym
from lrgym import cli
from lrgym.agents.config import TrainConfig, load_config
from lrgym.agents.train_report import TrainReporter, cli_command, markdown_table, real_total
from lrgym.backends.torch_trainee import TorchTask
from lrgym.cli import app
from lrgym.cli.compare_commands import SCHEDULERS_HELP
from lrgym.cli.train_commands import TRAIN_DEFAULTS
from lrgym.controllers import BASELINES, CONTROLLERS
from lrgym.core.registration import UnknownTaskError
from lrgym.core.targets import TARGETS_FILE
from lrgym.core.task import TaskInfo
from lrgym.harness.calibrate import Calibration, calibrate, target_rule, write_calibration
from lrgym.harness.compare import grid, run_grid
from lrgym.harness.report import write_report

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def flat(text: str) -> str:
    return " ".join(text.split())


# --- import time and the namespace ------------------------------------------------------------


def test_cli_help_imports_no_torch():
    code = (
        "import sys; sys.argv = ['lrgym', '--help']\n"
        "from lrgym.cli import app\n"
        "try:\n    app()\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules, 'xgboost' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False False"


def test_namespace_is_clean_and_lazy_names_load():
    names = dir(lrgym)
    for leaked in ("Any", "annotations", "gymnasium"):
        assert leaked not in names
    assert {"ArraySplits", "XGBoostTask", "TorchTask", "PolicyScheduler"} <= set(names)
    assert lrgym.XGBoostTask.backend == "xgboost"
    assert lrgym.harness.compare.run_grid is run_grid  # submodules load on first use too


def test_agent_repr_names_it():
    text = repr(lrgym.load_agent("default"))
    assert text.startswith("Agent(") and "'default'" in text


# --- CLI help ----------------------------------------------------------------------------------


def test_train_help_defaults_are_the_config_defaults():
    cfg = TrainConfig()
    plain = {k: v for k, v in cfg.to_dict().items() if k != "ppo"}
    values = {**plain, **cfg.to_dict()["ppo"]}
    for key, shown in TRAIN_DEFAULTS.items():
        value = values[key]
        if value is None:
            assert shown == "each task's", key
        elif isinstance(value, list):
            assert shown == (",".join(map(str, value)) or "none"), key
        elif isinstance(value, float):
            assert float(shown) == value, key
        else:
            assert shown == str(value), key
    out = flat(runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"}).output)
    assert "[default: 30000]" in out and "[default: 0.005]" in out


def test_the_shipped_agent_comes_from_its_recipe_file():
    """trained_agents/default (each member, for an ensemble) is its recipe file at its
    seed, and `lrgym train`'s defaults act as it does."""
    for path in shipped_agent_dirs():
        member = json.loads((path / "card.json").read_text())
        recipe = re.sub(r"-seed\d+$", "", member["config"]["name"])  # runs named <recipe>-seedS
        recipe_file = ROOT / "agents" / "recipes" / f"{recipe}.yaml"
        mine = load_config(recipe_file, seed=member["seed"]).to_dict()
        keys = ("tasks", "total_timesteps", "n_envs", "batched", "val_every", "seed")
        for key in (*keys, "eval_every", "val_lrs", "default_lr_share", "hparams", "ppo", "action"):
            assert mine[key] == member["config"][key], key
        assert TrainConfig().action == load_config(recipe_file).action
    assert TrainConfig().checkpoint_every <= 2000  # an interrupted default run can resume


def test_scheduler_help_names_every_controller():
    for name in [*CONTROLLERS, "baselines", "learned:NAME|PATH", "lr-predictor:PATH"]:
        assert name in SCHEDULERS_HELP, name


def test_command_list_descriptions_are_whole_sentences():
    out = runner.invoke(app, ["--help"], env={"COLUMNS": "200"}).output
    for line in out.splitlines():
        text = line.strip("│ ").strip()
        if re.match(r"^(compare|train-predictor|tasks|calibrate)\s", text):
            assert text.endswith("."), text


def test_tasks_fits_80_columns_and_keeps_ids_whole(monkeypatch):
    monkeypatch.setattr(cli.task_commands, "console", Console(width=80, force_terminal=False))
    result = runner.invoke(app, ["tasks"])
    assert result.exit_code == 0, result.output
    assert max(len(line.rstrip()) for line in result.output.splitlines()) <= 80
    listed = set(re.findall(r"lrgym/[\w.-]+-v\d+", result.output))
    assert listed >= set(lrgym.task_ids(variants=True))
    assert "lr, momentum," in result.output  # the controls column of -MultiHP-v0 variants


# --- user tasks: the CLI, workers, calibration ----------------------------------------------


def test_unknown_task_names_the_import_options():
    with pytest.raises(UnknownTaskError) as info:
        lrgym.spec("mylab/Nothing-v0")
    assert "--import" in str(info.value) and "LRGYM_IMPORT" in str(info.value)


def test_import_option_failure_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LRGYM_IMPORT", "")
    result = runner.invoke(app, ["--import", "no_such_module_xyz", "tasks"])
    assert result.exit_code == 2
    assert "no_such_module_xyz" in flat(result.output) and "Traceback" not in result.output


def test_user_task_runs_in_spawned_workers(forget_tasks):
    """A task registered only in this process (no plugin, no import in the worker)."""
    lrgym.register_task(id="testuser/Spawned-v0", entry_point=make_tiny)
    specs = grid(["testuser/Spawned-v0"], ["constant"], [0, 1])
    runs, _ = run_grid(specs, total_steps=10, workers=2)
    assert sorted(runs["seed"]) == [0, 1]


def _thread_probe(n_in: int, n_out: int, rng: np.random.Generator) -> torch.nn.Module:
    THREADS.append(torch.get_num_threads())
    return torch.nn.Linear(n_in, n_out)


THREADS: list[int] = []


def test_one_torch_thread_with_one_worker(forget_tasks):
    lrgym.register_task(id="testuser/Threads-v0", entry_point=_probe_task)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        THREADS.clear()
        run_grid(grid(["testuser/Threads-v0"], ["constant"], [0]), total_steps=5, workers=1)
        assert THREADS == [1]
        assert torch.get_num_threads() == 2  # restored
    finally:
        torch.set_num_threads(before)


def _probe_task() -> TorchTask:
    return replace(make_tiny(), model=_thread_probe)


def test_seed_start_shifts_the_seeds(tmp_path):
    out = tmp_path / "cmp"
    args = ["compare", "--tasks", "lrgym/DiabetesXGB-v0", "--schedulers", "constant"]
    args += ["--seeds", "2", "--seed-start", "7", "--total-steps", "20", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert sorted(pd.read_csv(out / "runs.csv")["seed"]) == [7, 8]
    assert "1 task × 1 scheduler × 2 seeds" in (out / "summary.md").read_text()


def uncalibrated_tiny() -> TorchTask:
    task = make_tiny()
    return replace(task, info=replace(task.info, target=math.inf))


def test_calibrate_writes_the_target_the_task_reads(tmp_path, monkeypatch, forget_tasks):
    module = tmp_path / "calib_user_mod.py"
    module.write_text(
        "import math\nfrom dataclasses import replace\n"
        "from user_tasks_example import make_tiny\n\n"
        "def make():\n    t = make_tiny()\n"
        "    return replace(t, info=replace(t.info, target=math.inf))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    lrgym.register_task(id="testuser/Calib-v0", entry_point="calib_user_mod:make")
    assert lrgym.make_task("testuser/Calib-v0").info.target == math.inf
    (found,) = calibrate(["testuser/Calib-v0"], seeds=[100], total_steps=20)
    assert found.target == target_rule(found.best_median) and found.best_scheduler in BASELINES
    path = write_calibration(found)
    assert path == tmp_path / TARGETS_FILE
    record = json.loads(path.read_text())["testuser/Calib-v0"]
    assert record["target"] == found.target and record["seeds"] == [100]
    assert lrgym.make_task("testuser/Calib-v0").info.target == found.target


def test_a_finite_target_in_code_wins(tmp_path, monkeypatch, forget_tasks):
    lrgym.register_task(id=TINY_ID, entry_point="user_tasks_example:make_tiny")
    cal = Calibration(TINY_ID, "r2", 0.5, "constant", 0.52, {"constant": 0.52}, [100])
    path = write_calibration(cal)
    try:
        assert lrgym.make_task(TINY_ID).info.target == 0.9  # make_tiny's own
    finally:
        path.unlink()


def test_check_says_how_to_calibrate(forget_tasks):
    lrgym.register_task(id="testuser/NoTarget-v0", entry_point=uncalibrated_tiny)
    result = runner.invoke(app, ["check", "testuser/NoTarget-v0", "--steps", "10"])
    assert result.exit_code == 1
    assert "lrgym calibrate testuser/NoTarget-v0" in flat(result.output)


def broken_data_task() -> TorchTask:
    def no_data(rng):
        raise OSError("cannot reach the data set (offline)")

    return replace(make_tiny(), data=no_data)


def test_check_prints_a_repeated_error_once(forget_tasks):
    lrgym.register_task(id="testuser/Offline-v0", entry_point=broken_data_task)
    result = runner.invoke(app, ["check", "testuser/Offline-v0", "--steps", "10"])
    assert flat(result.output).count("cannot reach the data set") == 1
    assert "same error as" in result.output


# --- TorchTask ---------------------------------------------------------------------------------


def _info() -> TaskInfo:
    return make_tiny().info


def test_adamw_gets_a_weight_decay_by_default():
    assert TorchTask(_info(), tiny_regression, make_tiny().model, optimizer="adamw").weight_decay
    assert (
        TorchTask(_info(), tiny_regression, make_tiny().model, optimizer="adam").weight_decay == 0
    )
    explicit = TorchTask(_info(), tiny_regression, make_tiny().model, "mse", "adamw", 16, 0.0)
    assert explicit.weight_decay == 0.0


def test_model_factory_gets_the_input_shape_if_it_asks():
    seen = {}

    def images(rng):
        x = rng.standard_normal((40, 1, 4, 4)).astype(np.float32)
        y = rng.integers(0, 2, 40)
        return lrgym.ArraySplits(x[:20], y[:20], x[20:30], y[20:30], x[30:], y[30:])

    def cnn(n_in, n_out, rng, input_shape):
        seen["shape"], seen["n_in"] = input_shape, n_in
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(n_in, n_out))

    TorchTask(_info(), images, cnn).build(0, 1e-3)
    assert seen == {"shape": (1, 4, 4), "n_in": 16}


# --- PolicyScheduler ---------------------------------------------------------------------------


def test_step_without_a_loss_warns_once():
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)
    sched = lrgym.PolicyScheduler(opt, total_steps=100, decision_interval=5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(30):
            opt.step()
            sched.step()
    assert [str(w.message) for w in caught if "no loss" in str(w.message)].__len__() == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fed = lrgym.PolicyScheduler(opt, total_steps=100, decision_interval=5)
        for _ in range(10):
            opt.step()
            fed.step(loss=1.0)


# --- lrgym train's output ----------------------------------------------------------------------


def test_card_command_is_runnable_anywhere():
    assert cli_command(["/home/me/.venv/bin/lrgym", "train", "--out", "a b"]) == (
        "lrgym train --out 'a b'"
    )
    assert cli_command(["/x/lrgym/__main__.py", "train"]) == "lrgym train"
    assert cli_command(["/x/my_script.py", "--n", "1"]) == "my_script.py --n 1"


def test_bar_ends_at_the_real_total():
    assert real_total(0, 30_000, 512) == 30_208
    assert real_total(4_096, 30_000, 512) == 30_208
    assert real_total(0, 1024, 512) == 1024


def test_summary_shows_the_table_and_next_commands(tmp_path):
    console = Console(width=100, record=True)
    reporter = TrainReporter(console, progress=False)
    table = "| task | learned | constant LR |\n| --- | ---: | ---: |\n| a | 1.000 | 0.500 |"
    card = type(
        "Card",
        (),
        {
            "total_timesteps": 30_208,
            "selected_timesteps": 24_064,
            "wall_seconds": 620.0,
            "evaluation": {"validation slice (meta-train tasks, unseen seeds)": table},
        },
    )()
    reporter.summary(tmp_path / "agent", card)
    text = flat(console.export_text())
    assert "24,064" in text and "1.000" in text and "0.500" in text
    assert f"tensorboard --logdir {tmp_path / 'agent' / 'tb'}" in text
    assert f"lrgym evaluate --agent {tmp_path / 'agent'}" in text
    assert markdown_table(table).row_count == 1


def test_ctrl_c_prints_the_resume_hint_and_exits_130(monkeypatch, tmp_path):
    import lrgym.agents.train as training

    def interrupted(config, **kwargs):
        kwargs["reporter"].out = Path(config.out)
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "train", interrupted)
    monkeypatch.setattr(cli.train_commands, "_newest_checkpoint", lambda out: 4096)
    result = runner.invoke(app, ["train", "--out", str(tmp_path / "run"), "--no-progress"])
    assert result.exit_code == 130
    assert f"lrgym train --resume {tmp_path / 'run'}" in flat(result.output)
    assert "4,096" in result.output


# --- plots -------------------------------------------------------------------------------------


def _plot_axes_limits(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 10_000


def test_ci_bands_are_clipped_to_the_metric_range(tmp_path, monkeypatch):
    from lrgym.harness import plots

    bands: list[np.ndarray] = []
    original = plots._metric_stats

    def spy(g, lo, hi):
        out = original(g, lo, hi)
        bands.extend(out[2:])
        return out

    monkeypatch.setattr(plots, "_metric_stats", spy)
    rows = [("t/A-v0", s, seed, 1e-3, True, 50, acc, False)
            for s in ("a", "b", "c", "d", "e")
            for seed, acc in ((0, 0.2), (1, 0.99))]  # fmt: skip
    runs = _runs(rows)
    write_report(tmp_path, runs, _curves(runs))
    assert bands and all(((b >= 0) & (b <= 1)).all() for b in bands)
    _plot_axes_limits(tmp_path / "plots" / "t_A-v0_val_metric.png")


def test_train_without_the_training_extra_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "stable_baselines3", None)  # import fails
    result = runner.invoke(app, ["train", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert 'pip install "lrgym[train]"' in flat(result.output)
