r"""The leaderboard: every registered cell on the same tasks, with seeds, in one table.

    python -m experiments run leaderboard --jobs=2                   # the whole board, resumable
    python -m experiments.studies.leaderboard.board --render_only    # summary + figures
    python -m experiments report leaderboard                         # the README's tables
    python -m experiments.studies.leaderboard.board --quick          # 1 seed, tiny budgets
    python -m experiments.studies.leaderboard.board --cells=lstm,gru --tasks=adding --out=/tmp/b

Protocol. Each task fixes its model size, optimiser and step budget (`TASKS`); only the cell
changes, so every cell has the same hidden size within a task (not the same parameter count:
the counts are in the second table). Seeds 0, 1, 2 (`--seeds`); mean ± sample standard
deviation over the seeds; the best mean per column in bold. Each run is one `train.main`
process (the lab's runner): a run whose OUT/<name>.json exists is skipped, an
interrupted one resumes from its workdir's last checkpoint, so the board resumes where it
stopped. `--jobs` runs that many processes at once (2 fills this 2-core machine).

Tasks (the columns):
  adding     the adding problem at T = 200 (H = 32): test MSE / the constant predictor's MSE on
             the same test set (1 = no better than predicting 1; "solved" <= 0.05).
  copy       copy memory at T = 100 (H = 64): accuracy on the 10 recalled symbols (1/8 = chance).
  selective  selective copying, 8 symbols among 100 noise steps (H = 64): recall accuracy.
  mnist1d    MNIST-1D (Greydanus & Kobak 2024), bidirectional, 6 units per direction: test accuracy.
  shakespeare  Tiny Shakespeare characters, 1 x 128, 300 steps of 32 x 50: validation bits/char.
ETTh1 with SegRNN waits for SegRNN's own reproduction (issue 15), so it is not a column yet.
Opt-in columns (`--tasks=spoken_digits,connected_digits`; minutes per run, so not in the default
board): spoken digits with a speaker held out (accuracy, 10 epochs) and connected digits by CTC
(digit error rate, 1,000 steps), both bidirectional with 64 units per direction and each
recording normalised with its own statistics (CMVN; with the training set's statistics the
BiLSTM's validation loss on the held-out speaker is lowest after the first epoch in two of three
seeds: it fits the four training speakers instead).

Output (OUT = --out, the study's results/ by default; --quick writes under
workdirs/ unless --out says otherwise, so it never mixes with the committed board):
OUT/<run>.json per run, OUT/leaderboard.json (the summary: every value, mean, std, the
parameter counts, the CPU time), OUT/leaderboard.md, OUT/figures/leaderboard_<task>.png (bars
with error bars, and the validation curves, mean over seeds). `python -m experiments report
leaderboard` renders the README's tables from OUT/leaderboard.json.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time

from absl import app, flags

from experiments.configs import arguments
from experiments.lab import Run, records, runner, tables
from experiments.studies.long_range import grid as long_range_grid
from train import provenance

FLAGS = flags.FLAGS
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
QUICK_OUT = os.path.join(records.ROOT, "workdirs", "leaderboard_quick")
SEEDS = (0, 1, 2)


@dataclasses.dataclass(frozen=True)
class BoardTask:
    """One column: how to run a cell on it and which test metric it reports.

    `config` is the config argument with {cell} and {seed} to fill; `overrides` are extra
    `--config.x=y` flags (also filled); `quick` replaces budgets for --quick. `metric` names the
    reported number: a key of the record's test metrics, or 'relative_loss' (test loss / the
    same test set's trivial baseline, the long-range study's `grid.long_range_fields`).
    """

    label: str
    config: str
    metric: str
    higher_is_better: bool
    curve_metric: str  # the validation-curve key plotted
    overrides: tuple[str, ...] = ()
    quick: tuple[str, ...] = ()


SHAKESPEARE_HIDDEN = 128
_QUICK_SYNTHETIC = (
    "--config.train.num_steps=20",
    "--config.train.eval_every=10",
    "--config.train.checkpoint_every=10",
    "--config.data.num_valid=64",
    "--config.data.num_test=64",
)
TASKS = {
    "adding": BoardTask(
        "adding T=200: test MSE / baseline",
        "adding.py:length=200,hidden_size=32,num_steps=2000,patience=10,cell={cell},seed={seed}",
        "relative_loss",
        False,
        "mse",
        quick=_QUICK_SYNTHETIC,
    ),
    "copy": BoardTask(
        "copy T=100: recall accuracy",
        "copy.py:length=100,hidden_size=64,num_steps=2000,patience=10,cell={cell},seed={seed}",
        "copy_accuracy",
        True,
        "copy_accuracy",
        quick=_QUICK_SYNTHETIC,
    ),
    "selective": BoardTask(
        "selective copy (8 of 100): accuracy",
        "selective_copy.py:length=100,num_tokens=8,hidden_size=64,num_steps=2000,patience=10,"
        "cell={cell},seed={seed}",
        "copy_accuracy",
        True,
        "copy_accuracy",
        quick=_QUICK_SYNTHETIC,
    ),
    "mnist1d": BoardTask(
        "MNIST-1D: test accuracy",
        "mnist1d.py:cell={cell},seed={seed},num_steps=4000",
        "accuracy",
        True,
        "accuracy",
        quick=(
            "--config.train.num_steps=20",
            "--config.train.eval_every=10",
            "--config.train.checkpoint_every=10",
        ),
    ),  # fmt: skip
    "shakespeare": BoardTask(
        "Tiny Shakespeare: bits/char",
        "shakespeare_char.py",
        "bits_per_char",
        False,
        "bits_per_char",
        overrides=(
            "--config.model.cell={cell}",
            "--config.model.cell_options={options}",
            "--config.seed={seed}",
            f"--config.model.hidden_size={SHAKESPEARE_HIDDEN}",
            "--config.model.num_layers=1",
            "--config.model.dropout=0.0",
            "--config.train.num_steps=300",
            "--config.train.seq_len=50",
            "--config.train.eval_every=300",
            "--config.train.checkpoint_every=300",
            "--config.optim.warmup_steps=30",
        ),
        quick=(
            "--config.train.num_steps=10",
            "--config.train.eval_every=10",
            "--config.train.checkpoint_every=10",
            "--config.optim.warmup_steps=2",
        ),
    ),  # fmt: skip
    # Opt-in columns (--tasks=...): the FSDD speech tasks cost minutes per run on this CPU.
    "spoken_digits": BoardTask(
        "spoken digits (speaker held out): accuracy",
        "spoken_digits.py:split=speaker_independent,normalization=utterance,cell={cell},"
        "seed={seed},epochs=10",
        "accuracy",
        True,
        "accuracy",
        quick=("--config.train.num_epochs=1",),
    ),
    "connected_digits": BoardTask(
        "connected digits, CTC (speaker held out): digit error rate",
        "connected_digits.py:split=speaker_independent,normalization=utterance,cell={cell},"
        "seed={seed},num_steps=1000",
        "digit_error_rate",
        False,
        "digit_error_rate",
        quick=(
            "--config.train.num_steps=10",
            "--config.train.eval_every=10",
            "--config.train.checkpoint_every=10",
            "--config.data.num_valid=16",
            "--config.data.num_test=16",
        ),
    ),  # fmt: skip
}
DEFAULT_TASKS = ("adding", "copy", "selective", "mnist1d", "shakespeare")


def run_name(task: str, cell: str, seed: int) -> str:
    return f"board_{task}_{cell}_s{seed}"


def run_spec(task: str, cell: str, seed: int, quick: bool) -> tuple[str, tuple[str, ...]]:
    """(config argument, override flags) of one run."""
    spec = TASKS[task]
    options = arguments.required_cell_options(cell, SHAKESPEARE_HIDDEN)  # lstmp: proj_size
    fill = {"cell": cell, "seed": seed, "options": repr(options)}
    flags_ = [flag.format(**fill) for flag in spec.overrides]
    if quick:  # a later flag wins: the quick budgets replace the board's
        flags_ += list(spec.quick)
    return spec.config.format(**fill), tuple(flags_)


def plan(cells: list[str], tasks: list[str], seeds: list[int], quick: bool) -> list[tuple]:
    """Every run of the board: (name, config argument, overrides), task by task."""
    return [
        (run_name(task, cell, seed), *run_spec(task, cell, seed, quick))
        for task in tasks
        for cell in cells
        for seed in seeds
    ]


def runs(cells: list[str], tasks: list[str], seeds: list[int], quick: bool) -> list[Run]:
    """The board as the lab's runs (the long-range columns get the long-range record)."""
    return [
        Run(name, config=arg, overrides=overrides, collect=long_range_grid.collect)
        for name, arg, overrides in plan(cells, tasks, seeds, quick)
    ]


# -- summary ----------------------------------------------------------------------------------
def value_of(task: str, record: dict) -> float | None:
    """The reported number of one run (None for a run without one, e.g. diverged)."""
    metric = TASKS[task].metric
    if metric == "relative_loss":
        value = record.get("relative_loss", {}).get("test")
    else:
        value = record.get("test", {}).get(metric)
    return float(value) if isinstance(value, int | float) else None


def curve_of(task: str, record: dict) -> list[tuple[int, float]]:
    """(step, value) of the validation curve, relative to the valid baseline where the column
    is relative."""
    key = TASKS[task].curve_metric
    scale = 1.0
    if TASKS[task].metric == "relative_loss":
        scale = 1.0 / record["baseline"]["valid"][key]
    return [(e["step"], e[key] * scale) for e in record.get("valid_curve", []) if key in e]


def count_params(record: dict) -> int:
    """Trainable parameters of the run's model (shapes only; nothing is computed)."""
    import jax

    from train import models

    task = long_range_grid.registry_task(record)
    return models.count_params(jax.eval_shape(task.init_params, jax.random.PRNGKey(0)))


def summarize(out: str, cells: list[str], tasks: list[str]) -> dict:
    """Per task and cell: the values, seeds, mean, std, solved runs, wall time, parameters."""
    loaded = records.load_all(out, prefixes=("board_",))
    table: dict = {}
    total_wall = 0.0
    run_commits: set[str] = set()
    for task in tasks:
        table[task] = {}
        for cell in cells:
            runs = {
                int(name.rsplit("_s", 1)[1]): r
                for name, r in loaded.items()
                if name.rsplit("_s", 1)[0] == f"board_{task}_{cell}"
            }
            if not runs:
                continue
            seeds = sorted(runs)
            values = [value_of(task, runs[s]) for s in seeds]
            ok = [v for v in values if v is not None and math.isfinite(v)]
            wall = [float(runs[s].get("wall_time_s", 0.0)) for s in seeds]
            total_wall += sum(wall)
            run_commits.update(str(runs[s].get("git_commit", "?"))[:7] for s in seeds)
            entry = {"seeds": seeds, "values": values, "wall_time_s": wall}
            if ok:
                entry["mean"], entry["std"] = tables.mean_std(ok)
            first = runs[seeds[0]]
            if "config" in first:
                entry["params"] = count_params(first)
            if "solved" in first:
                entry["solved"] = sum(bool(runs[s].get("solved")) for s in seeds)
            table[task][cell] = entry
    return {
        "tasks": {t: dataclasses.asdict(TASKS[t]) for t in tasks},
        "cells": cells,
        "results": table,
        "cpu_wall_time_s": total_wall,
        "run_commits": sorted(run_commits),
        "git_commit": provenance.git_commit(),
        "hardware": provenance.hardware(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def best_cell(task: str, column: dict) -> str | None:
    scored = {c: e["mean"] for c, e in column.items() if "mean" in e}
    if not scored:
        return None
    pick = max if TASKS[task].higher_is_better else min
    return pick(scored, key=scored.get)


def _number(value: float) -> str:
    """Three decimals, or three significant digits for a value that blew up (e.g. 4.02e+24)."""
    return f"{value:.3f}" if abs(value) < 1000 else f"{value:.3g}"


def _fmt(entry: dict | None, bold: bool) -> str:
    if entry is None:
        return "–"
    if "mean" not in entry:
        return "diverged"
    n = len([v for v in entry["values"] if v is not None])
    text = _number(entry["mean"]) + (f" ± {_number(entry['std'])}" if n > 1 else "")
    if n < len(entry["seeds"]):
        text += f" ({len(entry['seeds']) - n} diverged)"
    return f"**{text}**" if bold else text


def render(summary: dict) -> str:
    """The Markdown body: results (mean ± std, best in bold), parameters, solved runs."""
    tasks, cells, table = list(summary["tasks"]), summary["cells"], summary["results"]
    arrows = {t: "↑" if TASKS[t].higher_is_better else "↓" for t in tasks}
    head = "| cell | " + " | ".join(f"{TASKS[t].label} {arrows[t]}" for t in tasks) + " |\n"
    head += "|---|" + "---|" * len(tasks) + "\n"
    best = {t: best_cell(t, table[t]) for t in tasks}
    rows = [
        f"| {cell} | " + " | ".join(_fmt(table[t].get(cell), best[t] == cell) for t in tasks) + " |"
        for cell in cells
    ]
    params_head = "| cell | " + " | ".join(t for t in tasks) + " |\n"
    params_head += "|---|" + "---|" * len(tasks) + "\n"
    params_rows = [
        f"| {cell} | "
        + " | ".join(f"{table[t][cell]['params']:,}" if "params" in table[t].get(cell, {})
                     else "–" for t in tasks)
        + " |"
        for cell in cells
    ]  # fmt: skip
    solved = [
        f"{t} {c} {e['solved']}/{len(e['seeds'])}"
        for t in tasks
        for c, e in table[t].items()
        if e.get("solved")
    ]
    seeds_of = {t: sorted({s for e in table[t].values() for s in e["seeds"]}) for t in tasks}
    seeds = sorted({s for t in tasks for s in seeds_of[t]})
    fewer = [f"{t}: {', '.join(map(str, seeds_of[t]))}" for t in tasks
             if seeds_of[t] and seeds_of[t] != seeds]  # fmt: skip
    hw = summary["hardware"]
    return (
        head
        + "\n".join(rows)
        + "\n\nParameters per model (the whole model; the same hidden size for every cell "
        "within a task, so the gated cells have more):\n\n"
        + params_head
        + "\n".join(params_rows)
        + f"\n\nSeeds {', '.join(map(str, seeds))}"
        + (f" ({'; '.join(fewer)})" if fewer else "")
        + "; mean ± sample std. "
        + "Runs counted as solved (loss <= 5% of the test set's trivial baseline): "
        + (", ".join(solved) if solved else "none")
        + f". CPU wall time of all runs: {summary['cpu_wall_time_s'] / 3600:.2f} h on "
        + f"{hw.get('cpu_count')} cores ({hw.get('cpu', hw.get('processor', ''))}), "
        + f"runs at commit {', '.join(summary.get('run_commits', [])) or '?'}, rendered at "
        + f"{summary['git_commit'][:7]}.\n"
    )


def plot(summary: dict, out: str) -> list[str]:
    """Per task: bars (mean ± std per cell) and validation curves (mean over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    loaded = records.load_all(out, prefixes=("board_",))
    paths = []
    os.makedirs(os.path.join(out, "figures"), exist_ok=True)
    for task, column in summary["results"].items():
        cells = [c for c in summary["cells"] if "mean" in column.get(c, {})]
        if not cells:
            continue
        fig, (bars, curves) = plt.subplots(1, 2, figsize=(12, 4))
        means = [column[c]["mean"] for c in cells]
        # A cell that blew up (e.g. the IRNN's loss on characters) would flatten every other
        # bar: values beyond 3x the median are drawn at that cap and labelled with their value.
        cap = 3.0 * float(np.median(np.abs(means))) or 1.0
        shown = [min(m, cap) for m in means]
        errors = [0.0 if m > cap else column[c]["std"] for m, c in zip(means, cells, strict=True)]
        bars.bar(range(len(cells)), shown, yerr=errors, capsize=3, color="tab:blue")
        for x, m in enumerate(means):
            if m > cap:
                bars.text(x, 0.97 * cap, f"{m:.3g}", ha="center", va="top", fontsize=7,
                          rotation=90, color="white")  # fmt: skip
        bars.set_xticks(range(len(cells)), cells, rotation=60, ha="right")
        bars.set_title(TASKS[task].label)
        for cell in cells:
            if column[cell]["mean"] > cap:
                continue  # off the scale of the others (its value is on the bar)
            by_step: dict[int, list[float]] = {}
            for seed in column[cell]["seeds"]:
                for step, value in curve_of(task, loaded[run_name(task, cell, seed)]):
                    by_step.setdefault(step, []).append(value)
            steps = sorted(by_step)
            mean_curve = [sum(by_step[s]) / len(by_step[s]) for s in steps]
            curves.plot(steps, mean_curve, ".-", label=cell)
        curves.set_xlabel("step")
        curves.set_title(f"validation {TASKS[task].curve_metric} (mean over seeds)")
        curves.legend(fontsize=6, ncol=2)
        fig.tight_layout()
        path = os.path.join(out, "figures", f"leaderboard_{task}.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths


# -- command line -----------------------------------------------------------------------------
def _names(flag: str, value: str, valid: tuple[str, ...]) -> list[str]:
    chosen = [v for v in value.split(",") if v] if value else list(valid)
    unknown = [v for v in chosen if v not in valid]
    if unknown or not chosen:
        raise app.UsageError(f"--{flag}={value!r}: valid names are {', '.join(valid)}.")
    return chosen


def tasks_with_records(out: str) -> list[str]:
    """The tasks of which `out` holds at least one run record (board_<task>_<cell>_s<seed>)."""
    names = os.listdir(out) if os.path.isdir(out) else []
    return [t for t in TASKS if any(n.startswith(f"board_{t}_") for n in names)]


def define_flags() -> None:
    """The command-line flags (defined only when run as a script, so importing is side-free)."""
    flags.DEFINE_string("out", None, "Result directory (default the study's results/,"
                        " or workdirs/leaderboard_quick with --quick).")  # fmt: skip
    flags.DEFINE_string("workdirs", None, "Workdir root (default OUT/workdirs; for the committed "
                        "board workdirs/leaderboard/runs).")  # fmt: skip
    flags.DEFINE_string("cells", "", "Comma-separated cells (default: every registered cell).")
    flags.DEFINE_string("tasks", "", f"Comma-separated tasks of {', '.join(TASKS)} (default "
                        f"{', '.join(DEFAULT_TASKS)}).")  # fmt: skip
    flags.DEFINE_string("seeds", ",".join(map(str, SEEDS)), "Comma-separated seeds.")
    flags.DEFINE_bool("quick", False, "One seed and tiny budgets: a smoke test of the board.")
    flags.DEFINE_integer("jobs", 2, "Training processes at once.")
    flags.DEFINE_bool("render_only", False, "Only the summary, tables and figures.")
    flags.DEFINE_bool("force", False, "Rerun and replace results that exist in --out.")


def main(argv) -> None:
    import cells as cells_lib

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    chosen_cells = _names("cells", FLAGS.cells, cells_lib.names(grids=False))
    tasks = _names("tasks", FLAGS.tasks, tuple(TASKS)) if FLAGS.tasks else list(DEFAULT_TASKS)
    try:
        seeds = [int(s) for s in FLAGS.seeds.split(",") if s]
    except ValueError:
        raise app.UsageError(f"--seeds={FLAGS.seeds!r}: comma-separated integers.") from None
    if FLAGS.quick and FLAGS.seeds == ",".join(map(str, SEEDS)):
        seeds = [0]
    if FLAGS.jobs < 1:
        raise app.UsageError(f"--jobs={FLAGS.jobs}: at least 1.")
    out = FLAGS.out or (QUICK_OUT if FLAGS.quick else DEFAULT_OUT)
    # A named --out keeps its own workdirs (a finished workdir is collected, not retrained, so
    # two boards must not share them); the committed board's live under workdirs/.
    default_workdirs = os.path.join(records.ROOT, "workdirs", "leaderboard", "runs")
    workdirs = FLAGS.workdirs or (os.path.join(out, "workdirs") if FLAGS.out or FLAGS.quick
                                  else default_workdirs)  # fmt: skip
    if not FLAGS.render_only:
        board = runs(chosen_cells, tasks, seeds, FLAGS.quick)
        print(f"[board] {len(board)} runs, {FLAGS.jobs} at a time -> {out}", flush=True)
        runner.run_all(board, out, workdirs, FLAGS.jobs, FLAGS.force)
    # The summary keeps every column the board holds, not only the tasks named (or run) now: the
    # opt-in speech columns stay when the default ones are rerun or rendered.
    shown = [t for t in TASKS if t in tasks or t in tasks_with_records(out)]
    summary = summarize(out, chosen_cells, shown)
    summary["quick"] = FLAGS.quick
    records.write(os.path.join(out, "leaderboard.json"), summary, overwrite=True)
    body = render(summary)
    with open(os.path.join(out, "leaderboard.md"), "w") as f:
        f.write(body)
    for path in plot(summary, out):
        print(f"[board] wrote {path}")
    print(body)


if __name__ == "__main__":
    define_flags()
    app.run(main)
