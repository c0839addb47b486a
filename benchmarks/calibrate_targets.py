"""Measure each task's target: 0.97 × the best static baseline's median final val metric.

Runs every static baseline at each task's default LR over 5 seeds (seeds 100..104, never
used by `lrgym evaluate`'s 0..N-1) and prints the proposed targets. Run once per task
version, before any learned agent is evaluated; paste the values into tasks/builtin.py.

    python benchmarks/calibrate_targets.py [--workers 2] [--tasks all]
"""

from __future__ import annotations

import argparse
import math

from lrgym.compare import grid, run_grid
from lrgym.controllers import BASELINES
from lrgym.registration import select_tasks

SHARE = 0.97


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["all"])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    specs = grid(select_tasks(args.tasks), BASELINES, range(100, 105))
    runs, _ = run_grid(specs, workers=args.workers)
    medians = runs.groupby(["task", "scheduler"])["final_val_metric"].median().unstack()
    print(medians.round(4).to_string())
    print("\nproposed targets (floor to 2 decimals of SHARE × best median):")
    for task, row in medians.iterrows():
        best, scheduler = row.max(), row.idxmax()
        print(
            f"{task:45s} {math.floor(SHARE * best * 100) / 100:.2f}  (best {scheduler} {best:.4f})"
        )


if __name__ == "__main__":
    main()
