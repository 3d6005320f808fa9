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
    "long_range_seeds": lambda results_dir: grid.long_range_seed_runs(),
    "inside": lambda results_dir: grid.inside_runs(),  # reads the models the groups above train
}


def provenance_table(results: dict[str, dict]) -> str:
    """Per group: its records against its runs, the commits, hardware and summed wall time they
    recorded (the gradient-flow and gate records predate provenance in records)."""
    rows = []
    for group, runs in GROUPS.items():
        names = [r.name for r in runs("unused")]
        found = [results[n] for n in names if n in results]
        commits = sorted({r["git_commit"][:7] for r in found if r.get("git_commit")})
        cpus = sorted(
            {f"{r['hardware']['cpu']}, {r['hardware']['cpu_count']} cores" for r in found
             if r.get("hardware")}
        )  # fmt: skip
        wall = sum(r.get("wall_time_s", 0.0) for r in found)
        diverged = sum(r.get("status") == "diverged" for r in found)
        rows.append(
            f"| `{group}` | {len(found)} / {len(names)}"
            + (f" ({diverged} diverged)" if diverged else "")
            + f" | {', '.join(commits) or 'not recorded'} | {'; '.join(cpus) or 'not recorded'}"
            + f" | {f'{wall / 3600:.2f} h' if wall else 'not recorded'} |"
        )
    return (
        "| group | records / runs | commits | hardware | summed wall time |\n"
        "|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )


def readme_tables(results_dir: str) -> dict[str, str]:
    results = records.load_all(results_dir)
    hours = render.long_range_wall_hours(results)
    return {
        "provenance": provenance_table(results),
        "adding": render.long_range_table(results, "adding"),
        "copy": render.long_range_table(results, "copy"),
        "wall_time": f"Summed wall time of the long-range runs: {hours:.2f} h on the 2-core CPU, "
        "up to four runs sharing it.",
        "long_range_adding": render.long_range_study_table(results, "adding"),
        "long_range_cells": render.long_range_cells_table(results),
        "long_range_seeds": render.long_range_seeds_table(results),
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
    """Who solves the longest adding problem, and the best recall at the longest copy task."""
    results = records.load_all(results_dir, prefixes=("long_adding_750_", "long_copy_500_"))

    def model(name: str) -> str:
        return name.split("_", 3)[-1]

    # The IRNN's rate check and the extra seeds aside: the headline is the seed-0 grid.
    plain = {n: r for n, r in results.items() if "_lr" not in n and "_seed" not in n}
    solved = sorted(
        model(n) for n, r in plain.items() if n.startswith("long_adding_") and r.get("solved")
    )
    copy = {
        model(n): r["test"]["copy_accuracy"]
        for n, r in plain.items()
        if n.startswith("long_copy_") and "test" in r
    }
    copy_solved = sorted(
        model(n) for n, r in plain.items() if n.startswith("long_copy_") and r.get("solved")
    )
    best = max(copy, key=copy.get) if copy else None
    text = f"seed 0: adding T = 750 solved by {', '.join(solved) or 'none'}; copy T = 500 by "
    text += ", ".join(copy_solved) or "none"
    if best:
        text += f" (best recall: {best} {100 * copy[best]:.1f}%)"
    return {"ours": text, "published": "-"}
