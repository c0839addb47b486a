"""Measure each task's target: 0.97 × the best static baseline's median final val metric.

The rule lives in the library (:mod:`lrgym.harness.calibrate`, what `lrgym calibrate` runs):
every static baseline at each task's default LR over seeds 100..104 (never used by
`lrgym evaluate`'s default seeds 0..N-1). This script prints the proposed targets of many
tasks at once without writing anything; paste built-in tasks' values into
tasks/builtin.py. Run once per task version, before any learned agent is evaluated.

    python benchmarks/calibrate_targets.py [--workers 2] [--tasks all]
"""

from __future__ import annotations

import argparse

from lrgym.core.registration import select_tasks
from lrgym.harness.calibrate import calibrate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["all"])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    for cal in calibrate(select_tasks(args.tasks), workers=args.workers):
        medians = ", ".join(f"{k} {v:.4f}" for k, v in sorted(cal.medians.items()))
        print(f"{cal.task:45s} {cal.target:.2f}  (best {cal.best_scheduler} {cal.best_median:.4f})")
        print(f"{'':45s} medians: {medians}")


if __name__ == "__main__":
    main()
