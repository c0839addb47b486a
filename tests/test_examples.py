"""Every script in ``examples/`` runs offline, quickly, and trains something that works.

Each runs as a user would run it (a fresh interpreter, from an empty working directory,
with the Hugging Face hub switched off) and must exit cleanly, leave no files behind,
print its final score, and reach a loose floor on it: an integration that silently fed
the scheduler nonsense would show up here as a model that does not learn.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# script -> (module it needs, regex of its final score, floor on that score)
CASES = {
    "plain_loop.py": (None, r"final validation accuracy: ([\d.]+)", 0.85),
    "hf_trainer.py": ("transformers", r"final validation accuracy: ([\d.]+)", 0.85),
    "lightning_module.py": ("lightning", r"final validation accuracy: ([\d.]+)", 0.85),
    "xgboost_native.py": (None, r"test accuracy: learned eta ([\d.]+)", 0.9),
    "xgboost_sklearn.py": (None, r"test accuracy: learned eta ([\d.]+)", 0.85),
    # accuracies and R² (the noisy regression's is about 0.2 at best)
    "your_own_loop.py": (None, r"mean agent score over the cells: ([\d.]+)", 0.6),
}
TIMEOUT_S = 180.0  # a hang guard only; they take ~5-15 s on 2 cores (timings are not tested)


def test_every_example_is_tested():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(CASES)


@pytest.mark.parametrize("script", sorted(CASES))
def test_example_runs_offline_and_learns(script, tmp_path):
    needs, pattern, floor = CASES[script]
    if needs is not None and importlib.util.find_spec(needs) is None:
        pytest.skip(f"{script} needs {needs} (an lrgym extra)")
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONWARNINGS": "ignore",
    }
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    match = re.search(pattern, done.stdout)
    assert match, done.stdout[-2000:]
    assert float(match.group(1)) >= floor, done.stdout[-2000:]
    assert list(tmp_path.iterdir()) == [], "the example left files behind"
