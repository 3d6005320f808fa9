"""The PTB study's generated tables, from its records only (results/*.json).

    records_ = render.load(results_dir)       # the run records, name -> record
    render.runs_table(records_)               # the Zaremba configs and the cells, one row a run

No number is typed here: every table is computed from a result file, and the paper's numbers
(Zaremba et al. 2014, Table 1) are the constants below.
"""

from __future__ import annotations

import math
import re

from experiments.lab import records, tables
from experiments.studies.ptb_zaremba import grid, lm_record

# Zaremba, Sutskever & Vinyals 2014, "Recurrent Neural Network Regularization", Table 1: valid
# and test perplexity of the non-regularised ("small"), medium and large LSTMs.
PAPER = {"ptb_small": (120.7, 114.5), "ptb_medium": (86.2, 82.7), "ptb_large": (82.2, 78.4)}
TARGET = 1.02  # a reproduction is within 2% of the paper's test perplexity
SEARCH_PREFIX = "ptb_lr_"  # group ptb_lr: one epoch per cell and rate
UNIFORM_NATS = math.log(10000)  # the loss of a uniform guess over PTB's 10,000 words


def load(results_dir: str) -> dict[str, dict]:
    """The training runs' records (the full runs and the search), name -> record."""
    runs = records.load_all(results_dir, ("ptb_",))
    return {
        name: r
        for name, r in runs.items()
        if r.get("task") == "lm" or name.startswith(SEARCH_PREFIX)  # diverged search runs too
    }


def full_runs(runs: dict[str, dict]) -> list[dict]:
    """The runs trained beyond the search (rows of the main table), by name."""
    return [r for name, r in runs.items() if not name.startswith(SEARCH_PREFIX)]


def _paper(record: dict) -> tuple[float, float] | None:
    """The paper's (valid, test) for an LSTM run of one of Zaremba's configs."""
    if record["config"]["model"]["cell"] != "lstm":
        return None
    return next((v for k, v in PAPER.items() if record["name"].startswith(k)), None)


def runs_table(runs: dict[str, dict]) -> str:
    """One row per run: perplexities at the best and last checkpoints, the paper's, speed."""
    rows = []
    for r in full_runs(runs):
        paper = _paper(r)
        last = r.get("last") or r
        rows.append([
            r["name"], r["config"]["model"]["cell"], f"{r['config']['optim']['learning_rate']:g}",
            f"{r['params']:,}", f"{r['epochs']:.2f}",
            f"{r['valid']['perplexity']:.2f}", f"{r['test']['perplexity']:.2f}",
            f"{last['valid']['perplexity']:.2f} / {last['test']['perplexity']:.2f}",
            f"{paper[0]} / {paper[1]}" if paper else "",
            f"{r['train_tokens_per_s']:,.0f}", lm_record.fmt_duration(r["train_time_s"]),
            lm_record.status(r),
        ])  # fmt: skip
    header = ["run", "cell", "lr", "params", "epochs", "valid ppl (best ckpt)",
              "test ppl (best ckpt)", "valid / test ppl (last ckpt)", "paper valid / test",
              "train tokens/s", "train time", "status"]  # fmt: skip
    return tables.markdown(header, rows, align="llrrrrrrrrrl")


def curves(runs: dict[str, dict]) -> str:
    """Validation perplexity after each epoch of each run."""
    return "\n".join(
        f"- {r['name']}: " + ", ".join(f"{e['perplexity']:.1f}" for e in r.get("valid_curve", []))
        for r in full_runs(runs)
    )


def versus_paper(runs: dict[str, dict]) -> str:
    """Each finished LSTM run's test perplexity (best and last checkpoints) against the paper."""
    out = []
    for r in full_runs(runs):
        paper = _paper(r)
        if paper is None or r["status"] != "complete":
            continue
        for label, rec in (("best", r), ("last", r.get("last") or r)):
            ppl = rec["test"]["perplexity"]
            out.append(
                f"- {r['name']}, {label} checkpoint: test perplexity {ppl:.2f} vs the paper's "
                f"{paper[1]} ({100.0 * (ppl / paper[1] - 1.0):+.1f}%; target: within 2%, <= "
                f"{paper[1] * TARGET:.1f})."
            )
    return "\n".join(out)


def search_table(runs: dict[str, dict]) -> str:
    """Validation perplexity after the searched epoch per cell and rate, the chosen (lowest)
    rate in bold, and the full run at that rate; then the search's commits."""
    search = {name: r for name, r in runs.items() if name.startswith(SEARCH_PREFIX)}
    rates = grid.PTB_RATES
    rows = []
    for cell in grid.PTB_CELLS:
        cell_runs = [search.get(grid.ptb_search_name(cell, rate)) for rate in rates]
        if not any(cell_runs):
            continue
        scores = [None if r is None else grid.search_score(r) for r in cell_runs]
        runnable = None not in scores and min(scores) < math.inf
        chosen = rates[scores.index(min(scores))] if runnable else None
        shown = []
        for score, rate in zip(scores, rates, strict=True):
            text = "not run" if score is None else f"{score:.2f}"
            text = "diverged" if score == math.inf else text
            shown.append(f"**{text}**" if rate == chosen else text)
        full = runs.get(grid.ptb_full_name(cell, chosen)) if chosen is not None else None
        full_s = (
            f"{full['name']}: {full['valid']['perplexity']:.2f} / {full['test']['perplexity']:.2f}"
            if full and full.get("status") == "complete"
            else "not run yet"
        )
        rows.append([cell, *shown, f"{chosen:g}" if chosen is not None else "", full_s])
    header = ["cell", *(f"valid ppl, lr {r:g}" for r in rates), "chosen",
              "full run at the chosen lr: valid / test ppl (best ckpt)"]  # fmt: skip
    commits = sorted({r.get("git_commit", "unknown")[:10] for r in search.values()})
    table = tables.markdown(header, rows, align="l" + "r" * (len(rates) + 1) + "l")
    return f"{table}\n\nSearch commits: {', '.join(commits)}."


def rnn_probe_table(probe: dict) -> str:
    """The Elman RNN's training loss in its first steps at each rate (ptb_small_rnn_lr_probe)."""
    losses = probe["train_loss"]
    steps = sorted({int(s) for by_step in losses.values() for s in by_step})
    rows = [
        [rate, *(f"{by_step[str(s)]:.2f}" if str(s) in by_step else "stopped" for s in steps)]
        for rate, by_step in losses.items()
    ]
    header = ["lr", *(f"train loss, step {s}" for s in steps)]
    return tables.markdown(header, rows, align="l" + "r" * len(steps))


def large_probe_table(probe: dict) -> str:
    """ptb_large's training loss over its first 90 steps, at the paper's settings and with one
    change each, and PyTorch's same model and update (ptb_large_lr_probe)."""
    rows = []
    steps = None
    for run in probe["runs"].values():
        log = run["log"]
        steps = steps or [e["step"] for e in log]
        label = f"`{run['override']}`" if run["override"] else "the paper's settings"
        rows.append([f"ours, {label}", *(f"{e['train_loss']:.2f}" for e in log)])
    for seed in ("seed0", "seed1"):
        losses = probe["pytorch"][seed]
        rows.append([f"PyTorch, seed {seed[-1]}", *(f"{v:.2f}" for v in losses)])
    header = ["run", *(f"step {s}" for s in steps)]
    return tables.markdown(header, rows, align="l" + "r" * len(steps))


def epoch_time_table(record: dict) -> str:
    """One epoch of ptb_small with and without the host-memory reuse (ptb_small_epoch_time_cpu):
    the training steps' rate and time from the run's last log line, then the train time (the
    steps and the evaluation passes) and the wall time (start-up and compilation as well)."""
    rows = []
    for run in record["runs"]:
        log = run["train_log_last_line"]
        rows.append([
            "on" if run["reuse_host_memory"] else "off (`--noreuse_host_memory`)",
            f"{run['steps']:,}",
            re.search(r"([0-9.]+) steps/s", log).group(1),
            re.search(r"elapsed ([0-9:]+)", log).group(1),
            f"{run['train_time_s']:.0f}",
            f"{run['wall_time_s']:.0f}",
            f"{run['valid']['perplexity']:.2f} / {run['test']['perplexity']:.2f}",
            run["git_commit"][:7],
        ])  # fmt: skip
    header = ["host-memory reuse", "steps", "steps/s", "training steps (h:mm:ss)",
              "train time, s", "wall time, s", "valid / test ppl", "commit"]  # fmt: skip
    return tables.markdown(header, rows, align="lrrrrrrl")
