"""Recurrent vs attention at equal CPU budgets (README.md): character language models on
Tiny Shakespeare, a GPT as nanoGPT writes it against recurrent families, scored on the same
fixed validation windows.

Groups:
  nanogpt     the GPT at nanoGPT's published CPU configuration (experiments/configs/
              shakespeare_gpt.py defaults), 3 seeds: the baseline checked against their
              README's validation loss of about 1.88 nats/char before it is set against anything.
  search_M    every family's sizes x learning rates at a budget of M minutes (M in 1, 5, 15,
              45), seed 0 (grid.py); search_45 needs search_15's and edge_15's records.
  edge_M      steps beyond the grid while a family's best sits on an edge of what was tried
              (grid.extension; M in 1, 5, 15), seed 0; needs search_M's records, and grows as
              its own runs finish (`experiments run` asks a group again until it adds none).
  final_M     each family's best setting at M minutes (grid and extension) trained again
              with seeds 0, 1, 2 (0 alone at 45), every family's in one session: the
              numbers the table reports (grid.py says why).

Run the budget groups with the machine to themselves, two runs at a time, each on one thread:

    XLA_FLAGS=--xla_cpu_multi_thread_eigen=false \
        python -m experiments run recurrent_vs_attention search_1 edge_1 final_1 --jobs=2
"""

from __future__ import annotations

import math
import os

from experiments.lab import Run, records, tables
from experiments.studies.recurrent_vs_attention import grid

SEEDS = (0, 1, 2)
NANOGPT_LOSS = 1.88  # nanoGPT's README, its CPU command (nats/char, validation)
NANOGPT_TOLERANCE = 0.02  # the bar: within 2% of it


def nanogpt_runs(results_dir: str) -> list[Run]:
    del results_dir
    return [Run(f"gpt_nanogpt_s{s}", config=f"shakespeare_gpt.py:seed={s}") for s in SEEDS]


def _budget_records(results_dir: str) -> dict[str, dict]:
    return records.load_all(results_dir, prefixes=tuple(f"{f}_" for f in grid.FAMILIES))


def seed0_runs(minutes: int, settings):
    """The seed-0 runs of every family at settings(family, minutes, records found): the grid
    (grid.searched) or its extension (grid.extension)."""

    def runs(results_dir: str) -> list[Run]:
        found = _budget_records(results_dir)
        return [grid.run(f, minutes, size, rate, 0) for f in grid.FAMILIES
                for size, rate in settings(f, minutes, found)]  # fmt: skip

    return runs


def final_runs(minutes: int):
    def runs(results_dir: str) -> list[Run]:
        found = _budget_records(results_dir)
        out = []
        for family in grid.FAMILIES:
            chosen = grid.best(family, minutes, found)
            if chosen is not None:
                out += [grid.run(family, minutes, *chosen, seed, final=True)
                        for seed in grid.FINAL_SEEDS[minutes]]  # fmt: skip
        return out

    return runs


GROUPS = {"nanogpt": nanogpt_runs}
for _m in grid.BUDGETS:
    GROUPS[f"search_{_m}"] = seed0_runs(_m, grid.searched)
    if _m < 45:
        GROUPS[f"edge_{_m}"] = seed0_runs(_m, grid.extension)
    GROUPS[f"final_{_m}"] = final_runs(_m)
DEFAULT_GROUPS = ("nanogpt",)


def _nanogpt(results_dir: str) -> list[dict]:
    found = records.load_all(results_dir, prefixes=("gpt_nanogpt_s",))
    return [found[f"gpt_nanogpt_s{s}"] for s in SEEDS if f"gpt_nanogpt_s{s}" in found]


def nanogpt_table(results_dir: str) -> str:
    """One row per seed and the mean: validation nats/char on every window of 64, steps, time."""
    runs = _nanogpt(results_dir)
    rows = []
    for r in runs:
        rows.append([f"seed {r['config']['seed']}", f"{r['valid']['loss']:.4f}",
                     f"{r['valid']['bits_per_char']:.4f}", f"{r['steps']:,}",
                     f"{r.get('best_step') or r['steps']:,}", f"{r['params']:,}",
                     f"{r['train_time_s']:.0f} s", r["git_commit"][:7]])  # fmt: skip
    if runs:
        losses = [r["valid"]["loss"] for r in runs]
        mean = tables.mean_std(losses)[0]
        gap = (mean - NANOGPT_LOSS) / NANOGPT_LOSS
        rows.append([f"**mean (n={len(runs)})**", f"**{tables.fmt_mean_std(losses, 4)}**",
                     tables.fmt_mean_std([r["valid"]["bits_per_char"] for r in runs], 4),
                     "", "", "", "", f"{gap:+.1%} from {NANOGPT_LOSS}"])  # fmt: skip
    own = records.load_all(results_dir, prefixes=("nanogpt_own_code",)).get("nanogpt_own_code")
    if own is not None:  # their train.py and model.py, run here (nanogpt_reference.py)
        rows.append([f"nanoGPT's own code (seed 1337; their estimate {own['their_estimate']:.4f})",
                     f"{own['window_loss']:.4f}", f"{own['window_loss'] / math.log(2):.4f}",
                     f"{own['iter_num']:,}", "", "", f"{own['wall_time_s']:.0f} s (wall)",
                     f"nanoGPT {own['nanogpt_commit'][:7]}"])  # fmt: skip
    header = ["run", "valid nats/char", "bits/char", "steps", "best step", "params",
              "train time", "commit"]  # fmt: skip
    return tables.markdown(header, rows, align="lrrrrrrl")


def budget_rows(results_dir: str) -> list[dict]:
    """Per budget and family whose grid is done: the chosen setting (`settled` False while its
    extension is not: the grid's best so far), the edges of what was tried that it still sits
    on (grid.edges), and its final runs; until every final seed has run, `runs` is the search's
    seed-0 record of it and `pending` is True."""
    found = _budget_records(results_dir)
    rows = []
    for minutes in grid.BUDGETS:
        for family in grid.FAMILIES:
            leading = grid.leading(family, minutes, found)
            if leading is None:
                continue
            chosen, settled = leading
            names = [grid.final_name(family, minutes, *chosen, s)
                     for s in grid.FINAL_SEEDS[minutes]]  # fmt: skip
            pending = not settled or any(n not in found for n in names)
            runs = ([found[grid.name(family, minutes, *chosen, 0)]] if pending
                    else [found[n] for n in names])  # fmt: skip
            rows.append({"minutes": minutes, "family": family, "size": chosen[0],
                         "rate": chosen[1], "runs": runs, "settled": settled, "pending": pending,
                         "edges": grid.edges(family, minutes, found)})  # fmt: skip
    return rows


def _tokens(record: dict) -> int:
    t = record["config"]["train"]
    return int(record["steps"]) * int(t["batch_size"]) * int(t["seq_len"])


def budget_table(results_dir: str) -> str:
    body = []
    for row in budget_rows(results_dir):
        runs = row["runs"]
        losses = [r["valid"]["loss"] for r in runs]
        carried = [r["valid_carried"]["loss"] for r in runs if "valid_carried" in r]
        rates = [_tokens(r) / r["time_budget"]["train_s"] for r in runs]
        size = row["size"]
        setting = f"{size.num_layers} x {size.hidden_size}, lr {row['rate']:g}"
        if not row["settled"]:
            setting += " (grid's best; extension pending)"
        elif row["edges"]:
            setting += f" (on an edge of what was tried: {', '.join(row['edges'])})"
        score = f"{tables.fmt_mean_std(losses, 3)} (n={len(runs)})"
        if row["pending"]:
            score = f"{losses[0]:.3f} (search's seed 0; final runs pending)"
        body.append([f"{row['minutes']}", grid.LABELS[row["family"]], setting,
                     f"{runs[0]['params']:,}", f"{sum(map(_tokens, runs)) / len(runs):,.0f}",
                     f"{sum(rates) / len(rates):,.0f}",
                     score,
                     tables.fmt_mean_std(carried, 3) if carried else "-"])  # fmt: skip
    header = ["minutes", "family", "best setting", "params", "tokens seen", "tokens/s",
              "valid nats/char, windows of 256", "carried state"]  # fmt: skip
    return tables.markdown(header, body, align="llllrrll")


def readme_tables(results_dir: str) -> dict[str, str]:
    return {"nanogpt": nanogpt_table(results_dir), "budgets": budget_table(results_dir)}


def figures(results_dir: str, workdirs: str, figures_dir: str) -> list[str]:
    """The frontier: like-for-like validation loss against training minutes, per family, from
    the final runs (none drawn before any budget has them)."""
    rows = [row for row in budget_rows(results_dir) if not row["pending"]]
    if not rows:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(figures_dir, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4))
    for family in grid.FAMILIES:
        points = [r for r in rows if r["family"] == family]
        if not points:
            continue
        stats = [tables.mean_std([x["valid"]["loss"] for x in p["runs"]]) for p in points]
        ax.errorbar([p["minutes"] for p in points], [m for m, _ in stats],
                    yerr=[s for _, s in stats], marker="o", capsize=3,
                    label=grid.LABELS[family])  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("training minutes (2-core CPU)")
    ax.set_ylabel("validation nats/char (windows of 256)")
    ax.legend(fontsize=8)
    path = os.path.join(figures_dir, "frontier.png")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [path]


def headline(results_dir: str) -> dict:
    runs = _nanogpt(results_dir)
    if not runs:
        return {}
    losses = tables.fmt_mean_std([r["valid"]["loss"] for r in runs], 3)
    return {
        "ours": f"GPT at nanoGPT's CPU configuration: valid {losses} nats/char (n={len(runs)})",
        "published": f"nanoGPT README: about {NANOGPT_LOSS}",
    }
