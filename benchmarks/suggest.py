"""`lrgym suggest` against TPE, random, grid and the best fixed configuration.

One command, every run cached under ``results/suggest/runs`` (gitignored; rerunning
resumes, delete a file to redo it), summary written to
``docs/results/suggest/summary.md``::

    python benchmarks/suggest.py                       # held-out + local real tasks, 5 seeds
    python benchmarks/suggest.py --seeds 2 --ref-factor 10   # a reduced run

Protocol (CPU budgets). Every configuration run trains ``--steps`` optimizer steps (200;
``rounds`` for XGBoost). ``unit`` = the suggester's probes + one default run. At a budget
of probes + k runs (k = 1 and 3), per task and seed:

* ``suggest``: the suggester's probes, then its top k distinct configurations trained in
  turn (the best by validation is kept); on XGBoost it ranks only configurations of at
  most the default rounds, so each run fits its share of the budget;
* ``tpe``: Optuna's TPESampler with its random start-up fitted to the k runs the budget
  pays for (``lrgym.suggester.search.startup_trials``), one search per budget;
* ``random`` / ``grid``: Optuna's RandomSampler / GridSampler (LR on 1e-4 … 1e-1), whole
  runs while they fit the budget (the probes' steps go to runs instead);
* ``fixed``: the best fixed configuration over the meta-train tasks (the suggester
  card's ``best_fixed``: what the same model without probe features recommends
  everywhere), one run (no probes, so it costs less than the others; on XGBoost its own
  rounds);
* ``fixed_mean``: the configuration of the best predicted mean metric over the
  meta-train tasks (the card's ``best_fixed_mean``, the ridge alone; where the card has
  none, ``best_fixed``), one run likewise.

Reference: the best run (by validation) of TPE given ``--ref-factor`` × unit (30×; start-up
fitted likewise), per seed. Regret = reference test metric − the kept run's test metric
(median over seeds; lower is better). The suggester is the one given (default: the
shipped one, trained on meta-train tasks only); nothing here tunes it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from lrgym.io._atomic import write_text_atomic

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "results" / "suggest"
SUMMARY = ROOT / "docs" / "results" / "suggest" / "summary.md"
DATA = ROOT.parent / "shared" / "data"

HELD_OUT = (
    "lrgym/DigitsCNN-v0",
    "lrgym/WineMLP-v0",
    "lrgym/IllConditionedClassification-v0",
    "lrgym/FriedmanMLP-v0",
    "lrgym/DiabetesXGB-v0",
)
REAL = {  # task id -> local file under ../shared/data (skipped if missing)
    "lrgym/TitanicMLP-v0": "titanic/titanic.csv",
    "lrgym/TitanicXGB-v0": "titanic/titanic.csv",
    "lrgym/ETTh1LSTM-v0": "ett/ETTh1.csv",
}
SLOW_REAL = ("lrgym/ETTh1LSTM-v0",)  # only with --with-lstm (an LSTM on CPU is slow)
METHODS = ("suggest", "tpe", "random", "grid", "fixed", "fixed_mean")
FIXED = {"fixed": "best_fixed", "fixed_mean": "best_fixed_mean"}
"""The fixed-configuration methods and the card entries they run."""
RUNS = (1, 3)
"""Budgets compared: the suggester's probes + this many runs."""


def _make(task_id: str):
    from lrgym.core.registration import make_task

    if task_id in REAL:
        return make_task(task_id, source=str(DATA / REAL[task_id]))
    return make_task(task_id)


def _trial(config: dict, outcome, used: int) -> dict:
    return {
        "config": config,
        "val": outcome.val_metric,
        "test": outcome.test_metric,
        "steps_used": used,
    }


def _run(task_id: str, method: str, seed: int, steps: int, budget: int, suggester) -> dict:
    """One method's runs on one task and seed within ``budget`` optimizer steps."""
    from lrgym.suggester import optuna_search, tunable
    from lrgym.suggester.api import rank
    from lrgym.suggester.probes import run_config

    tt = tunable(_make(task_id))
    start = time.perf_counter()
    if method == "suggest":
        run = tt.steps(tt.space.defaults(), steps)  # XGBoost: rounds that fit one run
        probe_steps, ranked = rank(tt, suggester, seed, top=max(RUNS), max_steps=run)
        used, trials = probe_steps, []
        for r in ranked[: max(RUNS)]:
            out = run_config(tt, r.config, seed, steps)
            used += out.steps
            trials.append({**_trial(r.config, out, used), "pred": r.mean, "std": r.std})
    elif method in FIXED:
        key = "xgboost" if tt.kind == "xgboost" else "plan"
        card = suggester.card
        fixed = card.get(FIXED[method], card["best_fixed"])[key]
        config = tt.space.validate({k: v for k, v in fixed.items() if k in tt.space})
        out = run_config(tt, config, seed, steps)
        trials = [_trial(config, out, out.steps)]
    else:
        result = optuna_search(tt, method.split("@")[0], budget, seed, steps)
        trials = [_trial(t.config, t.outcome, t.steps_used) for t in result.trials]
    return {"trials": trials, "budget": budget, "seconds": time.perf_counter() - start}


def _kept(trials: list[dict], budget: float) -> float:
    """Test metric of the best-by-validation run among those that fit ``budget``."""
    fit = [t for t in trials if t["steps_used"] <= budget]
    return max(fit, key=lambda t: t["val"])["test"] if fit else math.nan


def _fmt(v: float, digits: int = 3) -> str:
    return f"{v:.{digits}f}" if math.isfinite(v) else "n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=200, help="steps of every run")
    parser.add_argument("--ref-factor", type=int, default=30, help="reference TPE budget / unit")
    parser.add_argument("--tasks", default="", help="comma-separated ids (default: all)")
    parser.add_argument("--suggester", default=None, help="suggester folder (default: shipped)")
    parser.add_argument("--with-lstm", action="store_true", help="include ETTh1LSTM")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    import lrgym  # noqa: F401 - registers the tasks
    from lrgym.suggester import load_suggester, tunable

    suggester = load_suggester(args.suggester)
    if "best_fixed" not in suggester.card:
        parser.error("the suggester's card has no best_fixed entry; retrain it")
    digest = hashlib.sha1(json.dumps(suggester.to_json()).encode()).hexdigest()[:8]
    tasks = [t for t in args.tasks.split(",") if t] or list(HELD_OUT) + list(REAL)
    skipped, chosen = [], []
    for task_id in tasks:
        if task_id in REAL and not (DATA / REAL[task_id]).is_file():
            skipped.append(f"{task_id} (no {DATA / REAL[task_id]})")
        elif task_id in SLOW_REAL and not args.with_lstm:
            skipped.append(f"{task_id} (slow on CPU; pass --with-lstm)")
        else:
            chosen.append(task_id)
    results: dict[str, dict[str, list[dict]]] = {t: {} for t in chosen}
    for seed in range(args.seeds):  # seed-major: a cut-short run has every task's first seeds
        for task_id in chosen:
            tt = tunable(_make(task_id))
            run = tt.steps(tt.space.defaults(), args.steps)
            unit = suggester.probe.cost_for(tt) + run
            plan = {
                "suggest": unit + (max(RUNS) - 1) * run,
                "random": unit + (max(RUNS) - 1) * run,
                "grid": unit + (max(RUNS) - 1) * run,
                "fixed": run,
                "fixed_mean": run,
                **{f"tpe@{k}": unit + (k - 1) * run for k in RUNS},
                "reference": args.ref_factor * unit,
            }
            for method, budget in plan.items():
                tag = f"{method}-{digest}" if method == "suggest" or method in FIXED else method
                name = f"{task_id.split('/')[-1]}__s{seed}__{tag}__{args.steps}__{budget}.json"
                path = CACHE / "runs" / name.replace("@", "at")
                if path.is_file():
                    record = json.loads(path.read_text())
                else:
                    print(f"{task_id} seed {seed} {method} ({budget} steps) ...", flush=True)
                    which = "tpe" if method == "reference" else method
                    record = _run(task_id, which, seed, args.steps, budget, suggester)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    write_text_atomic(path, json.dumps(record))
                record["unit"], record["run"] = unit, run
                results[task_id].setdefault(method, []).append(record)

    text, headline = _report(results, args, suggester, skipped)
    if args.suggester in (None, "default"):  # the shipped card says how it scored
        from lrgym.suggester.model import default_path

        card_path = default_path() / "card.json"
        card = json.loads(card_path.read_text())
        card["benchmark"] = {
            "command": f"python benchmarks/suggest.py --seeds {args.seeds} "
            f"--ref-factor {args.ref_factor}",
            "summary": "docs/results/suggest/summary.md",
            **headline,
        }
        write_text_atomic(card_path, json.dumps(card, indent=2) + "\n")
    print(text)
    SUMMARY.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(SUMMARY, text)
    return 0


def _regrets(by_method: dict[str, list[dict]], k: int) -> dict[str, list[float]]:
    """Per method, the regret of each seed at a budget of probes + ``k`` runs."""
    out: dict[str, list[float]] = {m: [] for m in METHODS}
    for seed, ref_rec in enumerate(by_method["reference"]):
        ref = _kept(ref_rec["trials"], math.inf)
        budget = ref_rec["unit"] + (k - 1) * ref_rec["run"]
        for method in METHODS:
            key = f"tpe@{k}" if method == "tpe" else method
            trials = by_method[key][seed]["trials"]
            if method == "suggest":
                trials = trials[:k]
            got = _kept(trials, math.inf if method in FIXED else budget)
            out[method].append(ref - got if math.isfinite(got) else math.inf)
    return out


def _report(results, args, suggester, skipped) -> tuple[str, dict]:
    from lrgym.harness.report import md_table

    card = suggester.card
    cv = card.get("cross_validation", {})
    lines = [
        "# `lrgym suggest` against TPE, random, grid and the best fixed configuration",
        "",
        f"Written by `python benchmarks/suggest.py --seeds {args.seeds} --steps {args.steps} "
        f"--ref-factor {args.ref_factor}` ({time.strftime('%Y-%m-%d', time.gmtime())}). "
        f"Every run trains {args.steps} optimizer steps (XGBoost: its `rounds` knob); seeds "
        f"0-{args.seeds - 1}. Suggester: {card.get('trained_on', '?')}; fixed before this "
        "benchmark ran.",
        "",
        f"Regret = test metric of the reference (TPE with {args.ref_factor}× the unit "
        "of compute, start-up fitted to its budget) − test metric of the run a method "
        "keeps (best by validation) within the budget; median over seeds, lower is better. "
        "`unit` = probes + one default run. TPE's start-up is fitted to each budget; "
        "random and grid spend the probes' steps on runs; `fixed` is one run of the card's "
        "best fixed configuration (what the same model without probe features recommends "
        "everywhere) and `fixed_mean` one run of the configuration of the best predicted "
        "mean metric (the ridge alone); both cost less than the others. At probes + 1 run "
        "a search "
        "affords one or two runs, so TPE's start-up is the whole search and TPE and random "
        "coincide (same seed, same first draw).",
        "",
    ]
    if skipped:
        lines += [f"Not run: {', '.join(skipped)}.", ""]
    headline: dict = {"tasks": list(results), "seeds": args.seeds}
    for k in RUNS:
        rows, wins, vs_fixed, vs_mean = [], [], [], []
        for task_id, by_method in results.items():
            reg = _regrets(by_method, k)
            med = {m: float(np.median(reg[m])) for m in METHODS}
            ok = med["suggest"] <= med["tpe"] and med["suggest"] <= med["random"]
            if task_id in HELD_OUT:
                wins.append(ok)
            vs_fixed.append(med["suggest"] - med["fixed"])
            vs_mean.append(med["suggest"] - med["fixed_mean"])
            ref = float(np.median([_kept(r["trials"], math.inf) for r in by_method["reference"]]))
            rows.append(
                [task_id.split("/")[-1], _fmt(ref)]
                + [_fmt(med[m]) for m in METHODS]
                + ["yes" if ok else "**no**"]
            )
        lines += [
            f"## Regret at probes + {k} run{'s' * (k > 1)} (median over seeds)",
            "",
            md_table(
                ["task", "reference", *METHODS, "suggest ≤ TPE and random"],
                rows,
            ),
            "",
            f"Suggest's median regret ≤ TPE's and ≤ random's on **{sum(wins)}/{len(wins)} "
            f"held-out tasks** (bar: 4 of 5 at one run); median over tasks of (suggest − "
            f"fixed) regret: {float(np.median(vs_fixed)):+.4f}, of (suggest − fixed_mean): "
            f"{float(np.median(vs_mean)):+.4f} (negative: suggest is better).",
            "",
        ]
        headline[f"held_out_le_tpe_and_random_at_{k}"] = f"{sum(wins)}/{len(wins)}"
        headline[f"median_regret_minus_fixed_at_{k}"] = round(float(np.median(vs_fixed)), 4)
        headline[f"median_regret_minus_fixed_mean_at_{k}"] = round(float(np.median(vs_mean)), 4)
    if cv:
        rows = [
            [
                name,
                f"{s['within_5pct']:.0%}",
                _fmt(s["median_regret"], 4),
                _fmt(s["mean_regret"], 4),
            ]
            for name, s in (
                ("with probe features", cv["chosen"]),
                ("descriptors only (no probe runs)", cv.get("descriptors_only")),
                ("configuration only (= best fixed)", cv["without_probe_features"]),
                ("ridge alone, with probe features", cv.get("ridge_only")),
                ("ridge alone, configuration only", cv.get("ridge_only_without_probe_features")),
            )
            if s
        ]
        lines += [
            "## Leave-task-out on the meta-train logs (from the suggester's card)",
            "",
            "Per (task, seed) of the training logs, with that task left out of the fit: is "
            "the top-ranked logged configuration within 5% of the best logged one, and its "
            "regret against that best.",
            "",
            md_table(["model", "within 5%", "median regret", "mean regret"], rows),
            "",
        ]
        headline["lto_within_5pct_with_probes"] = round(cv["chosen"]["within_5pct"], 3)
        headline["lto_within_5pct_without"] = round(cv["without_probe_features"]["within_5pct"], 3)
    seconds = {
        m: sum(r["seconds"] for t in results.values() for r in t.get(m, []))
        for m in ("suggest", "tpe@1", "tpe@3", "random", "grid", *FIXED, "reference")
    }
    lines += [
        "Wall seconds, all tasks and seeds: "
        + ", ".join(f"{m} {s:.0f}" for m, s in seconds.items())
        + ".",
        "",
    ]
    return "\n".join(lines), headline


if __name__ == "__main__":
    sys.exit(main())
