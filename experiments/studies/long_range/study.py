"""Long-range dependencies: the adding problem and copy memory at growing T, longer budgets with
the IRNN and chrono initialisation, every other cell at T = 400, and what happens inside the
cells (gradient flow, gate statistics). README.md has the protocol and the conclusions."""

from __future__ import annotations

import os

from experiments.lab import records
from experiments.studies.long_range import gradient_flow, grid, render

GROUPS = {
    "adding": lambda results_dir: grid.length_runs("adding"),
    "copy": lambda results_dir: grid.length_runs("copy"),
    "long_range": lambda results_dir: grid.long_range_runs(),
    "long_range_cells": lambda results_dir: grid.long_range_cell_runs(),
    "long_range_irnn": lambda results_dir: grid.long_range_irnn_runs(),
    "inside": lambda results_dir: grid.inside_runs(),  # reads the models the groups above train
}


def readme_tables(results_dir: str) -> dict[str, str]:
    results = records.load_all(results_dir)
    hours = render.long_range_wall_hours(results)
    return {
        "adding": render.long_range_table(results, "adding"),
        "copy": render.long_range_table(results, "copy"),
        "wall_time": f"Summed wall time of the long-range runs: {hours:.2f} h on the 2-core CPU, "
        "up to four runs sharing it.",
        "long_range_adding": render.long_range_study_table(results, "adding"),
        "long_range_cells": render.long_range_cells_table(results),
        "long_range_copy": render.long_range_study_table(results, "copy"),
        "gradient_flow": render.gradient_flow_table(results),
        "gates": render.gates_table(results),
    }


def figures(results_dir: str, workdirs: str, figures_dir: str) -> list[str]:
    """The gradient-flow plots, from their records (the gate heatmaps need the trained models'
    traces: `python -m experiments run long_range inside --force` redraws them)."""
    os.makedirs(figures_dir, exist_ok=True)
    written = []
    for name, record in records.load_all(results_dir, prefixes=("gradient_flow_",)).items():
        path = os.path.join(figures_dir, f"{name}.png")
        gradient_flow.plot(record, path)
        written.append(path)
    return written


def config_results(results_dir: str) -> dict[str, str]:
    results = records.load_all(results_dir)
    out = {}
    for name in ("adding", "copy"):
        text = render.docstring_results(results, name)
        if text is not None:
            out[f"{name}.py"] = text
    return out


def headline(results_dir: str) -> dict:
    results = records.load_all(results_dir, prefixes=("long_adding_750_", "long_copy_500_"))
    solved = sorted(
        name.split("_", 3)[-1]
        for name, r in results.items()
        if r.get("solved") and "_lr" not in name
    )
    return {
        "ours": "solved at the longest T (adding 750, copy 500): " + (", ".join(solved) or "none"),
        "published": "-",
    }
