"""Language modelling: Zaremba et al. 2014's PTB LSTMs, the same learning-rate search for every
cell, Kim et al. 2016's LSTM-Word-Small with the AWD-LSTM regularisation ablation, and Tiny
Shakespeare characters (README.md). A full LM run's record is `render.collect`'s (epochs,
tokens/s, the last checkpoint's metrics, a sample); the search runs keep the plain one."""

from __future__ import annotations

from experiments.lab import Run
from experiments.studies.language_models import grid, render

KIM_VARIANTS = ("tied", "variational", "weight_drop", "ar_tar", "nt_asgd", "awd")


def _lm_run(name: str, config: str, *overrides: str) -> Run:
    return Run(name, config=config, overrides=overrides, collect=_collect_lm)


def _collect_lm(name: str, workdir: str) -> dict:
    """The LM record, built without writing (the runner writes it)."""
    return render.collect(workdir, name, out=None)


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
    this CPU: the timing records say what they would cost)."""
    one_epoch = "--config.train.num_epochs=1"
    return [
        _lm_run("ptb_small_lstm", "ptb_small.py"),
        _lm_run("ptb_medium_lstm", "ptb_medium.py", one_epoch),
        _lm_run("ptb_large_lstm", "ptb_large.py", one_epoch),
    ]


def kim2016(results_dir: str) -> list[Run]:
    """LSTM-Word-Small (seeds 0, 1) and each ablation row (seed 0)."""
    baseline = [
        _lm_run(f"ptb_kim_small_baseline_s{seed}", f"ptb_kim_small.py:seed={seed}")
        for seed in (0, 1)
    ]
    return baseline + [
        _lm_run(f"ptb_kim_small_{v}_s0", f"ptb_kim_small.py:variant={v},seed=0")
        for v in KIM_VARIANTS
    ]


SHAKESPEARE_SMALL = (
    "--config.model.hidden_size=128",
    "--config.train.num_steps=1000",
    "--config.train.eval_every=250",
    "--config.train.checkpoint_every=250",
)


def shakespeare(results_dir: str) -> list[Run]:
    """The config's model per cell, and a 128-unit, 1,000-step version of each."""
    cells = ("lstm", "gru", "rnn")
    return [
        _lm_run(f"shakespeare_char_{cell}", "shakespeare_char.py", f"--config.model.cell={cell}")
        for cell in cells
    ] + [
        _lm_run(f"shakespeare_small_{cell}", "shakespeare_char.py",
                f"--config.model.cell={cell}", *SHAKESPEARE_SMALL)
        for cell in cells
    ]  # fmt: skip


GROUPS = {
    "ptb_lr": ptb_lr,
    "ptb_cells": ptb_cells,
    "zaremba": zaremba,
    "kim2016": kim2016,
    "shakespeare": shakespeare,
}


def readme_tables(results_dir: str) -> dict[str, str]:
    return {"lm": render.render_section(render.load_records(results_dir), results_dir)}


def headline(results_dir: str) -> dict:
    records_ = {r["name"]: r for r in render.load_records(results_dir)}
    small = records_["ptb_small_lstm"]["test"]["perplexity"]
    kim = [records_[f"ptb_kim_small_baseline_s{s}"]["test"]["perplexity"] for s in (0, 1)]
    return {
        "ours": f"PTB test perplexity: Zaremba small LSTM {small:.1f}; Kim LSTM-Word-Small "
        f"{min(kim):.1f}-{max(kim):.1f} (2 seeds)",
        "published": f"{render.PAPER['ptb_small'][1]} (Zaremba et al. 2014); "
        f"{render.KIM_PAPER_TEST} (Kim et al. 2016)",
    }
