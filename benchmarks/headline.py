"""The README's headline: the shipped agent against the best other controller, and one plot.

Rebuilt from what ``benchmarks/recipe.py`` recorded in ``docs/results/recipe/summary.md``
(its runs are not committed), for the first agent there (the shipped one):

* one row per held-out and real task: the agent's final test metric (mean ± 95% CI at
  the default LR) beside the best other controller's, and whether it wins, loses within
  the CI or loses beyond it (``heldout.worse_beyond_ci``'s rule: below the best other by
  more than the larger CI half-width);
* the profile scores (steps to target) and the reach over the initial-LR sweep, each
  against the best other controller;
* ``docs/results/recipe/reach.png``: reach per initial LR, the agent against the peers
  with the highest reach and constant LR.

The table replaces the text between the ``headline`` markers of ``--readme``.

    python benchmarks/headline.py
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from lrgym.harness.report import md_table
from lrgym.io._atomic import atomic_path, write_text_atomic

ROOT = Path(__file__).resolve().parents[1]
SUMMARY = ROOT / "docs" / "results" / "recipe" / "summary.md"
START, END = "<!-- headline:start -->", "<!-- headline:end -->"
CELL = re.compile(
    r"^\**(?P<mean>-?[\d.]+) (?:± (?P<ci>[\d.]+)|\[(?P<low>-?[\d.]+), (?P<high>-?[\d.]+)\])"
)
"""A metric cell: ``mean ± ci``, or ``mean [low, high]`` where the interval was clipped to
the metric's range (then the CI half-width is the wider side's)."""
BEST = "**best** (or tied)"
PEERS_IN_PLOT = 4
"""Peers drawn beside the agent: the ones with the highest reach, and constant LR."""


@dataclass(frozen=True)
class Score:
    """One controller's mean ± CI on one task."""

    controller: str
    mean: float
    ci: float


def tables(text: str) -> list[list[list[str]]]:
    """Every markdown table in ``text`` as rows of cells, header first, rule dropped.

    Written by hand: pandas reads no markdown, and the tables here are the plain
    pipe tables ``lrgym.harness.report.md_table`` writes (no escaped pipes, one row per line).
    """
    found, rows = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= set("-: ") for c in cells):
                rows.append(cells)
        elif rows:
            found.append(rows)
            rows = []
    return found


def shipped_section(summary: str) -> tuple[str, str]:
    """The first agent's name and its section (``## NAME`` up to the next agent's)."""
    parts = re.split(r"^## (.+)$", summary, flags=re.M)
    if len(parts) < 3:
        raise SystemExit(f"{SUMMARY} has no '## AGENT' section: run benchmarks/recipe.py first")
    return parts[1].strip(), parts[2]


def _half_width(match: re.Match) -> float:
    if match["ci"] is not None:
        return float(match["ci"])
    mean = float(match["mean"])
    return max(mean - float(match["low"]), float(match["high"]) - mean)


def plain(name: str) -> str:
    return name.strip("*")


def per_task(table: list[list[str]], learned: str, suite: str) -> list[list[str]]:
    """Rows of task, agent, best other, verdict, from a per-controller metric table."""
    header, body = table[0], table[1:]
    rows = []
    for col, task in enumerate(header[2:], start=2):
        scores = []
        for row in body:
            match = CELL.match(row[col])
            if match:
                scores.append(Score(plain(row[0]), float(match["mean"]), _half_width(match)))
        mine = next(s for s in scores if s.controller == learned)
        best = max((s for s in scores if s.controller != learned), key=lambda s: s.mean)
        if mine.mean >= best.mean:
            verdict = BEST
        elif mine.mean < best.mean - max(mine.ci, best.ci):
            verdict = "loses beyond the CI"
        else:
            verdict = "loses within the CI"
        rows.append(
            [
                f"{task} ({suite})",
                f"{mine.mean:.3f} ± {mine.ci:.3f}",
                f"{best.controller} {best.mean:.3f} ± {best.ci:.3f}",
                verdict,
            ]
        )
    return rows


def versus(what: str, table: list[list[str]], column: str, learned: str) -> list[str]:
    """A row comparing one score column (profile, reach) with the best other's."""
    col = table[0].index(column)
    cells = {plain(r[0]): r[col] for r in table[1:]}
    mine = cells.pop(learned)
    best = max(cells, key=lambda c: float(cells[c]))
    verdict = BEST if float(mine) >= float(cells[best]) else "loses"
    return [what, mine, f"{best} {cells[best]}", verdict]


def reach_plot(table: list[list[str]], learned: str, path: Path) -> None:
    """Reach per initial LR: the agent, the peers with the highest reach, constant LR."""
    lrs = [float(c) for c in table[0][1:-1]]
    reach = {plain(r[0]): [float(v) for v in r[1:-1]] for r in table[1:]}
    peers = [c for c in reach if c != learned][:PEERS_IN_PLOT]  # sorted by reach already
    shown = [learned, *peers, *(["constant"] if "constant" not in peers else [])]
    fig = Figure(figsize=(6.4, 3.6))
    ax = fig.subplots()
    for i, name in enumerate(shown):
        label = "shipped agent" if name == learned else name
        width = 2.6 if name == learned else 1.3
        ax.plot(lrs, reach[name], marker="o", linewidth=width, label=label, zorder=10 - i)
    ax.set_xscale("log")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("initial learning rate")
    ax.set_ylabel("runs that end at the target")
    ax.set_title("Held-out tasks: reach from each initial LR (5 seeds per task and LR)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")


def headline(summary: str, plot: Path) -> str:
    """The README's headline table (and the plot beside it) from the recipe summary."""
    first_line = next(line for line in summary.splitlines() if line.startswith("Measured with"))
    learned_name, section = shipped_section(summary)
    learned = f"learned:{learned_name}"
    held_out, reach, real = tables(section)[:3]
    rows = [
        *per_task(held_out, learned, "held-out"),
        *per_task(real, learned, "real"),
        versus("steps to target, profile (held-out)", held_out, "profile", learned),
        versus("steps to target, profile (real)", real, "profile", learned),
        versus("reach over initial LRs 1e-5 … 1e-1", reach, "all", learned),
    ]
    reach_plot(reach, learned, plot)
    table = md_table(
        ["task or measure", "shipped agent", "best other controller", "agent"], rows, "lrrl"
    )
    command = first_line.removeprefix("Measured with ").rstrip(".")
    source = f"Runs: {command}. Table and plot: `python benchmarks/headline.py`."
    return f"{table}\n\n{source}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summary", type=Path, default=SUMMARY)
    parser.add_argument("--plot", type=Path, default=SUMMARY.parent / "reach.png")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = parser.parse_args()
    if not args.summary.is_file():
        sys.exit(f"{args.summary} does not exist: run benchmarks/recipe.py first")
    table = headline(args.summary.read_text(encoding="utf-8"), args.plot)
    print(table)
    readme = args.readme.read_text(encoding="utf-8")
    if START not in readme or END not in readme:
        sys.exit(f"{args.readme} has no {START} ... {END} markers")
    section = f"{START}\n{table}\n{END}"
    readme = re.sub(f"{START}.*?{END}", lambda _: section, readme, flags=re.S)
    write_text_atomic(args.readme, readme)
    print(f"wrote {args.plot} and the table in {args.readme}")


if __name__ == "__main__":
    main()
