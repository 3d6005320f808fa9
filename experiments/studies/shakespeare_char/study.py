"""How do the LSTM, the GRU and the Elman RNN compare as character-level language models of
Tiny Shakespeare on a 2-core CPU budget? (README.md)

Runs of experiments/configs/shakespeare_char.py with the cell swapped, at the config's size
(shakespeare_char_<cell>) and at 2 x 128 units for 1,000 steps (shakespeare_small_<cell>); each
record is the LM record of the PTB study's `lm_record.collect`.
"""

from __future__ import annotations

import textwrap

from experiments.lab import Run, records, tables
from experiments.studies.ptb_zaremba import lm_record

CELLS = ("lstm", "gru", "rnn")
SMALL = (
    "--config.model.hidden_size=128",
    "--config.train.num_steps=1000",
    "--config.train.eval_every=250",
    "--config.train.checkpoint_every=250",
)
README_PATH = "experiments/studies/shakespeare_char/README.md"


def collect(name: str, workdir: str) -> dict:
    """The LM record of a training run (the runner writes it)."""
    return lm_record.collect(workdir, name)


def full(results_dir: str) -> list[Run]:
    """The config's model (2 x 256, 3,000 steps) per cell."""
    return [
        Run(f"shakespeare_char_{cell}", config="shakespeare_char.py",
            overrides=(f"--config.model.cell={cell}",), collect=collect)
        for cell in CELLS
    ]  # fmt: skip


def small(results_dir: str) -> list[Run]:
    """2 x 128 units for 1,000 steps per cell."""
    return [
        Run(f"shakespeare_small_{cell}", config="shakespeare_char.py",
            overrides=(f"--config.model.cell={cell}", *SMALL), collect=collect)
        for cell in CELLS
    ]  # fmt: skip


def timing(results_dir: str) -> list[Run]:
    """CPU seconds per training step of the config (lm_record.time_config)."""
    return [
        Run("timing_shakespeare_char", command=(
            "-m", "experiments.studies.ptb_zaremba.lm_record", "time",
            "--config=shakespeare_char", "--steps=10", "--json={out}", "--force"))
    ]  # fmt: skip


GROUPS = {"full": full, "small": small, "timing": timing}


def load(results_dir: str) -> list[dict]:
    """The training runs' records, by name."""
    return [r for r in records.load_all(results_dir, ("shakespeare_",)).values()]


def runs_table(runs: list[dict]) -> str:
    """One row per run: size, steps, validation nats and bits per character, speed."""
    rows = [
        [r["name"], r["config"]["model"]["cell"], f"{r['params']:,}", r["steps"],
         f"{r['valid']['loss']:.3f}", f"{r['valid']['bits_per_char']:.3f}",
         f"{r['train_tokens_per_s']:,.0f}", lm_record.fmt_duration(r["train_time_s"]),
         lm_record.status(r)]
        for r in runs
    ]  # fmt: skip
    header = ["run", "cell", "params", "steps", "valid nats/char", "valid bits/char",
              "train tokens/s", "train time", "status"]  # fmt: skip
    return tables.markdown(header, rows, align="llrrrrrrl")


def curves_table(runs: list[dict]) -> str:
    """Validation bits per character at each evaluation, per run (columns: the steps)."""
    steps = sorted({e["step"] for r in runs for e in r.get("valid_curve", [])})
    rows = []
    for r in runs:
        by_step = {e["step"]: e["bits_per_char"] for e in r.get("valid_curve", [])}
        rows.append([r["name"], *(f"{by_step[s]:.3f}" if s in by_step else "–" for s in steps)])
    header = ["run", *(f"step {s:,}" for s in steps)]
    return tables.markdown(header, rows, align="l" + "r" * len(steps))


def _steps_of_full_run(runs: list[dict]) -> dict[str, int]:
    """The config trains by steps (no epochs): a full run's steps, from its records."""
    steps = {r["steps"] for r in runs if r["name"].startswith("shakespeare_char_")}
    return {"shakespeare_char": max(steps)} if steps else {}


def readme_tables(results_dir: str) -> dict[str, str]:
    runs = load(results_dir)
    full_size = [r for r in runs if r["name"].startswith("shakespeare_char_")]
    small_size = [r for r in runs if r["name"].startswith("shakespeare_small_")]
    shown = [
        r for r in runs
        if r["name"].startswith("shakespeare_char_") or r["name"] == "shakespeare_small_lstm"
    ]  # fmt: skip
    timings = list(records.load_all(results_dir, ("timing_shakespeare_char",)).values())
    return {
        "runs": runs_table(runs),
        "curves_full": curves_table(full_size),
        "curves_small": curves_table(small_size),
        "timing": lm_record.timing_table(timings, _steps_of_full_run(runs)),
        "samples": lm_record.samples(shown),
        "commands": lm_record.commands(runs),
        "provenance": lm_record.provenance(runs),
    }


def _bits(runs: list[dict], prefix: str) -> str:
    by_cell = {r["config"]["model"]["cell"]: r for r in runs if r["name"].startswith(prefix)}
    return ", ".join(
        f"{cell.upper()} {by_cell[cell]['valid']['bits_per_char']:.3f}"
        for cell in CELLS
        if cell in by_cell
    )


def headline(results_dir: str) -> dict:
    return {
        "ours": "Tiny Shakespeare validation bits/char, 2 x 256, 3,000 steps (1 seed): "
        + _bits(load(results_dir), "shakespeare_char_"),
        "published": "-",
    }


def config_results(results_dir: str) -> dict[str, str]:
    """The [results] block of shakespeare_char.py's docstring (ASCII, lines under 100)."""
    runs = load(results_dir)
    lstm = next(r for r in runs if r["name"] == "shakespeare_char_lstm")
    commits = sorted({r["git_commit"][:7] for r in runs})
    text = " ".join([
        "Validation bits/char of this config (3,000 steps, one seed): "
        f"{_bits(runs, 'shakespeare_char_')}; the LSTM trained in "
        f"{lm_record.fmt_duration(lstm['train_time_s'])} on "
        f"{lstm['hardware']['cpu']} {lstm['hardware']['cpu_count']} cores.",
        f"At 2 x 128 units and 1,000 steps: {_bits(runs, 'shakespeare_small_')}.",
        f"Commits {', '.join(commits)}; every run, its samples and the protocol: {README_PATH}.",
    ])  # fmt: skip
    return {"shakespeare_char.py": textwrap.fill(text, width=96, break_on_hyphens=False)}
