"""The budget study's grid: per family and budget, the sizes and learning rates searched (seed
0), then the best setting rerun with more seeds; every run is
experiments/configs/shakespeare_budget.py at one (family, size, rate, minutes, seed).

    budget (min)  sizes  rates            seeds of the best
    1             3      2 per family     0, 1, 2
    5             3      2                0, 1, 2
    15            2      2                0, 1, 2
    45            2      the best at 15   0 (one seed: say so)

"Best" is the lowest like-for-like validation loss (every window of 256 characters; the
recurrent families' carried-state score is reported, never used to choose).
"""

from __future__ import annotations

import dataclasses

from experiments.lab import Run

CONFIG = "shakespeare_budget.py"
BUDGETS = (1, 5, 15, 45)  # minutes of training steps
FAMILIES = ("gpt", "lstm", "gru", "mingru", "slstm")
LABELS = {
    "gpt": "GPT (nanoGPT)",
    "lstm": "LSTM",
    "gru": "GRU",
    "mingru": "minGRU, residual blocks",
    "slstm": "sLSTM, residual blocks",
}


@dataclasses.dataclass(frozen=True)
class Size:
    num_layers: int
    hidden_size: int
    num_heads: int = 4  # the GPT's heads and the sLSTM's

    @property
    def key(self) -> str:
        return f"L{self.num_layers}H{self.hidden_size}"

    def args(self) -> str:
        return (f"num_layers={self.num_layers},hidden_size={self.hidden_size},"
                f"num_heads={self.num_heads}")  # fmt: skip


# Smallest to largest; the 15- and 45-minute budgets search the last two.
SIZES = {
    "gpt": (Size(2, 64), Size(4, 128), Size(6, 192, num_heads=6)),
    "lstm": (Size(1, 256), Size(2, 256), Size(2, 512)),
    "gru": (Size(1, 256), Size(2, 256), Size(2, 512)),
    "mingru": (Size(2, 128), Size(3, 192), Size(4, 256)),
    "slstm": (Size(2, 128), Size(2, 256), Size(4, 256)),
}
RATES = {
    "gpt": (1e-3, 3e-3),
    "lstm": (2e-3, 5e-3),
    "gru": (2e-3, 5e-3),
    "mingru": (1e-3, 3e-3),
    "slstm": (1e-3, 3e-3),
}
RERUN_SEEDS = {1: (1, 2), 5: (1, 2), 15: (1, 2), 45: ()}


def name(family: str, minutes: int, size: Size, rate: float, seed: int) -> str:
    return f"{family}_{minutes}m_{size.key}_lr{rate:g}_s{seed}"


def run(family: str, minutes: int, size: Size, rate: float, seed: int) -> Run:
    args = f"family={family},minutes={minutes},{size.args()},learning_rate={rate},seed={seed}"
    return Run(name(family, minutes, size, rate, seed), config=f"{CONFIG}:{args}")


def searched(family: str, minutes: int, found: dict) -> list[tuple[Size, float]]:
    """The (size, rate) settings searched at this budget (the 45-minute one needs the 15's)."""
    sizes = SIZES[family] if minutes <= 5 else SIZES[family][1:]
    if minutes < 45:
        return [(s, r) for s in sizes for r in RATES[family]]
    settings = []
    for size in sizes:
        at_15 = {r: found.get(name(family, 15, size, r, 0)) for r in RATES[family]}
        scored = {r: loss(rec) for r, rec in at_15.items() if rec is not None}
        if len(scored) == len(RATES[family]):  # both rates of this size done at 15 minutes
            settings.append((size, min(scored, key=scored.get)))
    return settings


def loss(record: dict) -> float:
    """The like-for-like validation loss (nats/char); inf for a run without one."""
    value = record.get("valid", {}).get("loss")
    return float(value) if isinstance(value, int | float) else float("inf")


def best(family: str, minutes: int, found: dict) -> tuple[Size, float] | None:
    """The searched setting with the lowest seed-0 validation loss, once all are done."""
    settings = searched(family, minutes, found)
    records = [found.get(name(family, minutes, s, r, 0)) for s, r in settings]
    if not settings or any(r is None for r in records):
        return None
    return min(zip(settings, records, strict=True), key=lambda p: loss(p[1]))[0]
