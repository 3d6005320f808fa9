"""Do our PTB language models reach Zaremba et al. 2014's perplexities, and how do the cells
compare when each gets the same learning-rate search? (README.md)

A full LM run's record is `lm_record.collect`'s (epochs, tokens/s, the last checkpoint's
metrics, a sample); the one-epoch search runs keep the runner's plain record.
"""

from __future__ import annotations

import os
import textwrap

from experiments.lab import Run, records
from experiments.studies.ptb_zaremba import grid, lm_record, render

README_PATH = "experiments/studies/ptb_zaremba/README.md"


def collect(name: str, workdir: str) -> dict:
    """The LM record of a training run (the runner writes it)."""
    return lm_record.collect(workdir, name)


def _lm_run(name: str, config: str, *overrides: str) -> Run:
    return Run(name, config=config, overrides=overrides, collect=collect)


def ptb_lr(results_dir: str) -> list[Run]:
    """One epoch of ptb_small per cell and rate (the plain record)."""
    return [
        Run(grid.ptb_search_name(cell, rate),
            config=f"ptb_small.py:cell={cell},learning_rate={rate},"
            f"num_epochs={grid.PTB_SEARCH_EPOCHS}")
        for cell in grid.PTB_CELLS
        for rate in grid.PTB_RATES
    ]  # fmt: skip


def ptb_cells(results_dir: str) -> list[Run]:
    """13 epochs of each cell at its searched rate (reads ptb_lr's records)."""
    chosen = {cell: grid.ptb_chosen_rate(cell, results_dir) for cell in grid.PTB_CELLS}
    return [
        _lm_run(grid.ptb_full_name(cell, rate), f"ptb_small.py:cell={cell},learning_rate={rate}")
        for cell, rate in chosen.items()
    ]


def zaremba(results_dir: str) -> list[Run]:
    """The small LSTM to the end; medium and large for one epoch (their full runs do not fit
    this CPU: the timing group says what they would cost)."""
    one_epoch = "--config.train.num_epochs=1"
    return [
        _lm_run("ptb_small_lstm", "ptb_small.py"),
        _lm_run("ptb_medium_lstm", "ptb_medium.py", one_epoch),
        _lm_run("ptb_large_lstm", "ptb_large.py", one_epoch),
    ]


def cells_at_lr1(results_dir: str) -> list[Run]:
    """The GRU and the Elman RNN at the LSTM's rate 1.0, Zaremba's small config otherwise (the
    first runs, before the search; the RNN diverges, so this group is not a default)."""
    return [
        _lm_run(f"ptb_small_{cell}", "ptb_small.py", f"--config.model.cell={cell}")
        for cell in ("gru", "rnn")
    ]


TIMED_STEPS = {"ptb_medium": 10, "ptb_large": 3}


def timing(results_dir: str) -> list[Run]:
    """CPU seconds per training step of the medium and large configs (lm_record.time_config);
    the runner only starts one whose record is missing, or with --force, so it may replace."""
    return [
        Run(f"timing_{config}", command=(
            "-m", "experiments.studies.ptb_zaremba.lm_record", "time", f"--config={config}",
            f"--steps={steps}", "--json={out}", "--force"))
        for config, steps in TIMED_STEPS.items()
    ]  # fmt: skip


GROUPS = {
    "ptb_lr": ptb_lr,
    "ptb_cells": ptb_cells,
    "zaremba": zaremba,
    "cells_at_lr1": cells_at_lr1,
    "timing": timing,
}
DEFAULT_GROUPS = ("ptb_lr", "ptb_cells", "zaremba", "timing")


def _side(results_dir: str, name: str, table) -> str:
    """`table` of a hand-made side record; empty where the records are a new run's (--results)."""
    path = os.path.join(results_dir, f"{name}.json")
    return table(records.read(path)) if os.path.exists(path) else ""


def _timings(results_dir: str) -> list[dict]:
    return list(records.load_all(results_dir, ("timing_ptb_",)).values())


def readme_tables(results_dir: str) -> dict[str, str]:
    runs = render.load(results_dir)
    full = render.full_runs(runs)
    return {
        "runs": render.runs_table(runs),
        "curves": render.curves(runs),
        "versus_paper": render.versus_paper(runs),
        "search": render.search_table(runs),
        "rnn_probe": _side(results_dir, "ptb_small_rnn_lr_probe", render.rnn_probe_table),
        "large_probe": _side(results_dir, "ptb_large_lr_probe", render.large_probe_table),
        "timing": lm_record.timing_table(_timings(results_dir)),
        "epoch_time": _side(results_dir, "ptb_small_epoch_time_cpu", render.epoch_time_table),
        "samples": lm_record.samples([r for r in full if r["name"].endswith("_lstm")]),
        "commands": lm_record.commands(full),
        "provenance": lm_record.provenance(list(runs.values())),
    }


def headline(results_dir: str) -> dict:
    small = render.load(results_dir)["ptb_small_lstm"]
    last = (small.get("last") or small)["test"]["perplexity"]
    return {
        "ours": f"PTB test perplexity, small LSTM (13 epochs, 1 seed): "
        f"{small['test']['perplexity']:.2f} (best checkpoint), {last:.2f} (last)",
        "published": f"{render.PAPER['ptb_small'][1]} (Zaremba et al. 2014)",
    }


def _wrap(*sentences: str) -> str:
    """A docstring paragraph under 100 characters a line."""
    return textwrap.fill(" ".join(sentences), width=96, break_on_hyphens=False)


def _one_epoch(run: dict, config: str, timing_: dict) -> str:
    """A config trained for one epoch here: its perplexities, and what the full run costs."""
    paper = render.PAPER[config]
    hours = timing_["cpu_s_per_epoch"] * timing_["epochs"] / 3600
    return _wrap(
        f"One epoch only ({run['name']}, status {run['status']}, commit "
        f"{run['git_commit'][:7]}, {run['hardware']['cpu']} {run['hardware']['cpu_count']} "
        f"cores, train time {lm_record.fmt_duration(run['train_time_s'])}): valid "
        f"{run['valid']['perplexity']:.2f} / test {run['test']['perplexity']:.2f}; the paper "
        f"after {timing_['epochs']} epochs: {paper[0]} / {paper[1]}.",
        f"{timing_['cpu_s_per_step']:.2f} CPU s per step x {timing_['steps_per_epoch']:,} steps "
        f"per epoch: about {hours:.1f} CPU hours for the {timing_['epochs']} epochs "
        f"({timing_['params']:,} parameters; `python -m experiments run ptb_zaremba timing`).",
        f"Every run and the protocol: {README_PATH}.",
    )


def config_results(results_dir: str) -> dict[str, str]:
    """The [results] blocks of the Zaremba configs' docstrings (ASCII, lines under 100)."""
    runs = render.load(results_dir)
    timings = {t["config"]: t for t in _timings(results_dir)}
    small = runs["ptb_small_lstm"]
    last = small.get("last") or small
    paper = render.PAPER["ptb_small"]
    chosen = []
    for cell in grid.PTB_CELLS:
        rate = grid.ptb_chosen_rate(cell, results_dir)
        r = runs[grid.ptb_full_name(cell, rate)]
        chosen.append(
            f"{cell} at lr {rate:g} {r['valid']['perplexity']:.2f} / {r['test']['perplexity']:.2f}"
        )
    ptb_small = _wrap(
        f"LSTM, 13 epochs (ptb_small_lstm, commit {small['git_commit'][:7]}, "
        f"{small['hardware']['cpu']} {small['hardware']['cpu_count']} cores, train time "
        f"{lm_record.fmt_duration(small['train_time_s'])}): valid "
        f"{small['valid']['perplexity']:.2f} / test {small['test']['perplexity']:.2f} at the "
        f"best checkpoint, {last['valid']['perplexity']:.2f} / {last['test']['perplexity']:.2f} "
        f"at the last; paper {paper[0]} / {paper[1]}.",
        "Each cell at the rate one search on validation chose (groups ptb_lr and ptb_cells), "
        "valid / test: " + "; ".join(chosen) + ".",
        f"Every run and the protocol: {README_PATH}.",
    )
    large_start = _wrap(
        f"With seed 0 the loss stayed above the uniform {render.UNIFORM_NATS:.2f} nats after the "
        "violent first updates of lr 1.0 / clip 10; the README's probe of the first 90 steps "
        "shows seed 1, lr 0.5 or clip 5 recovering."
    )
    large = _one_epoch(runs["ptb_large_lstm"], "ptb_large", timings["ptb_large"])
    return {
        "ptb_small.py": ptb_small,
        "ptb_medium.py": _one_epoch(runs["ptb_medium_lstm"], "ptb_medium", timings["ptb_medium"]),
        "ptb_large.py": f"{large}\n{large_start}",
    }
