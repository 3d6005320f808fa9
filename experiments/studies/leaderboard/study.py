"""The leaderboard: every registered cell on the same tasks (the adding problem, copy memory,
selective copying, MNIST-1D, Tiny Shakespeare), same model size per task, 3 seeds (README.md).
The runs' summary, results/leaderboard.json, is what the tables render; `board.py --render_only`
rebuilds it (and the figures) from the run records."""

from __future__ import annotations

import os

import cells
from experiments.lab import records
from experiments.studies.leaderboard import board

GROUPS = {
    task: (lambda results_dir, task=task: board.runs(list(cells.names()), [task],
                                                     list(board.SEEDS), quick=False))
    for task in board.TASKS
}  # fmt: skip
DEFAULT_GROUPS = board.DEFAULT_TASKS


def _summary(results_dir: str) -> dict:
    return records.read(os.path.join(results_dir, "leaderboard.json"))


def readme_tables(results_dir: str) -> dict[str, str]:
    return {"leaderboard": board.render(_summary(results_dir))}


def headline(results_dir: str) -> dict:
    summary = _summary(results_dir)
    best = {t: board.best_cell(t, summary["results"][t]) for t in summary["tasks"]}
    return {
        "ours": "best mean per task: " + ", ".join(f"{t} {c}" for t, c in best.items()),
        "published": "-",
    }
