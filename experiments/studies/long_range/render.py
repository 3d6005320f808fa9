"""The long-range study's tables (adding problem, copy memory, the long-range grid, gradient flow
and gate statistics), from the records in results/.
"""

from __future__ import annotations

from experiments.lab import tables
from experiments.studies.long_range.grid import (
    LONG_RANGE_BUDGETS,
    LONG_RANGE_EXTRA_SEEDS,
    LONG_RANGE_MODELS,
    LONG_RANGE_SEED_MODELS,
)

CELLS = ("rnn", "lstm", "gru")


def long_range_table(results: dict, task: str) -> str:
    metric = "mse" if task == "adding" else "cross_entropy"
    lengths = sorted(
        {
            r["config"]["data"]["length"]
            for n, r in results.items()
            if n.startswith(f"{task}_") and "config" in r
        }
    )
    if not lengths:
        return f"No {task} run has finished yet.\n"
    extra = "" if task == "adding" else " copy acc |"
    head = (
        f"| T | test-set baseline {metric} |"
        + "".join(
            f" {c.upper()} test {metric} |{extra.replace('copy', c.upper() + ' copy')}"
            f" {c.upper()} steps to solve |"
            for c in CELLS
        )
        + " wall time (s) RNN / LSTM / GRU |\n"
    )
    per_cell = 3 if task == "copy" else 2
    head += "|---|---|" + "---|" * (per_cell * len(CELLS) + 1) + "\n"
    rows = []
    for t in lengths:
        line = [str(t)]
        walls = []
        base = None
        for cell in CELLS:
            r = results.get(f"{task}_{t}_{cell}")
            if r is None:
                line += ["not run"] * per_cell
                walls.append("–")
                continue
            base = r["baseline"]["test"][metric]
            line.append(tables.fmt_value(r["test"][metric], 4))
            if task == "copy":
                line.append(tables.fmt_value(r["test"]["copy_accuracy"], 3))
            solved_at = r.get("steps_to_solve")
            line.append(f"{solved_at}" if solved_at is not None else f"not in {r['steps']}")
            walls.append(f"{r['wall_time_s']:.0f}")
        line.insert(1, tables.fmt_value(base, 4))
        line.append(" / ".join(walls))
        rows.append("| " + " | ".join(line) + " |")
    return head + "\n".join(rows) + "\n"


def long_range_cell(r: dict) -> str:
    """One run of the long-range study: test loss / the test set's trivial baseline, the copy
    accuracy (copy), and the step the validation set was first solved at (or the budget)."""
    if r.get("status") == "diverged":
        step = r["error"].split(" at step ")[-1].split(" ")[0] if " at step " in r["error"] else "?"
        return f"diverged (step {step})"
    text = f"{r['relative_loss']['test']:.3f}"
    if "copy_accuracy" in r["test"]:
        text += f", acc {100 * r['test']['copy_accuracy']:.1f}%"
    solved_at = r.get("steps_to_solve")
    return text + (f", **solved at {solved_at:,}**" if solved_at else f", not in {r['steps']:,}")


def long_range_study_table(results: dict, task: str) -> str:
    """The group long_range: one row per T, one column per model."""
    runs = {n: r for n, r in results.items() if n.startswith(f"long_{task}_")}
    lengths = sorted({int(n.split("_")[2]) for n in runs})
    if not lengths:
        return f"No long-range {task} run has finished yet.\n"
    budgets = {t: max((r.get("num_steps", 0) for n, r in runs.items()
                       if n.startswith(f"long_{task}_{t}_")), default=0)
               for t in lengths}  # fmt: skip
    # The IRNN's rate check (the group long_range_irnn), a column where it ran.
    models = LONG_RANGE_MODELS + tuple(
        sorted({n.split("_", 3)[3] for n in runs if "_irnn_lr" in n})
    )
    names = [m.upper() if "_lr" not in m else f"IRNN, Adam {m.split('_lr')[1]}" for m in models]
    head = "| T | budget (steps) | " + " | ".join(names) + " |\n"
    head += "|---|---|" + "---|" * len(models) + "\n"
    rows = []
    for t in lengths:
        cells = []
        for model in models:
            r = runs.get(f"long_{task}_{t}_{model}")
            cells.append("not run" if r is None else long_range_cell(r))
        rows.append(f"| {t} | {budgets[t]:,} | " + " | ".join(cells) + " |")
    return head + "\n".join(rows) + "\n"


def long_range_cells_table(results: dict, length: int = 400) -> str:
    """The group long_range_cells: every other cell on the adding problem at T = `length`."""
    prefix = f"long_adding_{length}_"
    runs = {n[len(prefix) :]: r for n, r in sorted(results.items()) if n.startswith(prefix)}
    runs = {
        c: r
        for c, r in runs.items()
        if c not in LONG_RANGE_MODELS and "_lr" not in c and "_seed" not in c
    }
    if not runs:
        return ""
    return (
        "| cell | " + " | ".join(c.upper() for c in runs) + " |\n"
        "|---|" + "---|" * len(runs) + "\n"
        f"| T = {length} | " + " | ".join(long_range_cell(r) for r in runs.values()) + " |\n"
    )


def long_range_seeds_table(results: dict) -> str:
    """The group long_range_seeds beside the long_range group's seed 0: per T and model, the
    steps to solve the adding problem over seeds 0-2 (mean ± std over the seeds that solved
    it, then each seed's), and how many seeds solved it within the budget."""
    seeds = (0, *LONG_RANGE_EXTRA_SEEDS)
    lengths = sorted(LONG_RANGE_BUDGETS["adding"])
    head = ["T", "budget (steps)", *(m.upper() for m in LONG_RANGE_SEED_MODELS)]
    rows = []
    for t in lengths:
        row = [str(t), f"{LONG_RANGE_BUDGETS['adding'][t]:,}"]
        for model in LONG_RANGE_SEED_MODELS:
            found = [results.get(f"long_adding_{t}_{model}" + (f"_seed{s}" if s else ""))
                     for s in seeds]  # fmt: skip
            if any(r is None for r in found):
                row.append(f"{sum(r is not None for r in found)} / {len(seeds)} seeds run")
                continue
            solved = [r.get("steps_to_solve") for r in found]
            done = [x for x in solved if x]
            shown = ", ".join(f"{x:,}" if x else f"not in {r['steps']:,}"
                              for x, r in zip(solved, found, strict=True))  # fmt: skip
            mean = tables.fmt_mean_std(done, digits=0) if done else "–"
            row.append(f"{mean} ({shown}); {len(done)}/{len(seeds)} solved")
        rows.append(row)
    return tables.markdown(head, rows, align="rr" + "r" * len(LONG_RANGE_SEED_MODELS))


def long_range_wall_hours(results: dict) -> float:
    """Summed wall time of the long-range study's runs, in hours."""
    return (
        sum(r.get("wall_time_s", 0.0) for n, r in results.items() if n.startswith("long_")) / 3600
    )


def gradient_flow_table(results: dict) -> str:
    """One row per (T, model, trained or not), ordered by T; a model measured in two files
    (the same config and seed) is listed once."""
    rows = {}
    for name, r in sorted(results.items()):
        if not name.startswith("gradient_flow_"):
            continue
        t = r["length"]
        for cell, entry in r["cells"].items():
            for which in ("untrained", "trained"):
                if which in entry and (t, cell, which) not in rows:
                    norms = entry[which]["norms"]
                    mid = norms[len(norms) // 2]
                    rows[t, cell, which] = (
                        f"| {t} | {cell.upper()} | {which} | {norms[0]:.2e} | "
                        f"{mid:.2e} | {norms[-1]:.2e} | {norms[-1] / norms[0]:.1e} |"
                    )
    rows = [row for key, row in sorted(rows.items(), key=lambda kv: kv[0][0])]
    if not rows:
        return "Not measured yet.\n"
    return (
        "| T | cell | model | k=0 | k=T/2 | k=T-1 | ratio k=T-1 / k=0 |\n"
        "|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )


def gates_table(results: dict) -> str:
    rows = []
    for name, r in sorted(results.items()):
        if not name.startswith("gates_"):
            continue
        for cell, entry in r["cells"].items():
            for which in ("untrained", "trained"):
                if which in entry:
                    text = ", ".join(
                        f"{g} {s['mean']:.2f} ({100 * s['saturated']:.0f}%)"
                        for g, s in sorted(entry[which].items())
                    )
                    rows.append(f"| {r['length']} | {cell.upper()} | {which} | {text} |")
    if not rows:
        return "Not measured yet.\n"
    return (
        "| T | cell | model | gate: mean activation (saturated share) |\n"
        "|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )


def docstring_results(results: dict, config_name: str) -> str | None:
    """The text for the adding / copy config docstring's [results] block, or None."""
    runs = {n: r for n, r in results.items() if n.startswith(config_name + "_")}
    if not runs:
        return None
    metric = "mse" if config_name == "adding" else "cross_entropy"
    lines = [f"Test {metric} (steps to solve; wall s); baseline per T in the JSONs:"]
    for name, r in sorted(runs.items(), key=lambda kv: (kv[1]["config"]["data"]["length"], kv[0])):
        solved = r.get("steps_to_solve")
        lines.append(
            f"  {name}: {r['test'][metric]:.4f} "
            f"({solved if solved is not None else 'unsolved'}; "
            f"{r['wall_time_s']:.0f} s)"
        )
    return "\n".join(lines) + "\n"
