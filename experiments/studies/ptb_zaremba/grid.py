"""The PTB study's learning-rate search (groups ptb_lr and ptb_cells) and the runs it chooses.

Every cell of ptb_small gets the same rates for one epoch (Zaremba's schedule holds the rate for
4 epochs, so this is the first epoch of the full run); the rate with the lowest validation
perplexity is the one trained for 13 epochs.
"""

from __future__ import annotations

import math
import os

from experiments.lab import records

PTB_CELLS = ("lstm", "gru", "rnn")
PTB_RATES = (0.25, 0.5, 1.0)
PTB_SEARCH_EPOCHS = 1


def ptb_search_name(cell: str, rate: float) -> str:
    return f"ptb_lr_{cell}_{rate:g}"


def ptb_full_name(cell: str, rate: float) -> str:
    """The 13-epoch run's result name (lr 1.0 keeps the name of the first runs)."""
    return f"ptb_small_{cell}" if rate == 1.0 else f"ptb_small_{cell}_lr{rate:g}"


def search_score(record: dict) -> float:
    """A search run's validation perplexity; inf for a run that diverged (never chosen)."""
    value = record.get("valid", {}).get("perplexity")
    return value if isinstance(value, float) and math.isfinite(value) else math.inf


def ptb_chosen_rate(cell: str, out_dir: str) -> float:
    """The searched rate with the lowest validation perplexity (`search_score`; ties go to the
    smaller rate); ValueError if the search has not run."""
    scores = {}
    for rate in PTB_RATES:
        path = os.path.join(out_dir, f"{ptb_search_name(cell, rate)}.json")
        if not os.path.exists(path):
            raise ValueError(
                f"{path} missing: run `python -m experiments run ptb_zaremba ptb_lr` "
                "(same --out) first"
            )
        scores[rate] = search_score(records.read(path))
    return min(PTB_RATES, key=scores.get)
