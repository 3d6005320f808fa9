"""The budget study's grid: per family and budget, the sizes and learning rates searched (seed
0), steps beyond the grid while its best sits on an edge, then the final runs: the best setting
of every family trained again with the final seeds, all of them in one session; every run is
experiments/configs/shakespeare_budget.py at one (family, size, rate, minutes, seed).

    budget (min)  sizes  rates            extension   final seeds
    1             3      2 per family     yes         0, 1, 2
    5             3      2                yes         0, 1, 2
    15            2      2                yes         0, 1, 2
    45            2      the best at 15   no          0 (one seed: say so)

Why final runs: a run trains for minutes, so its steps follow the machine's speed, and the
same model got 10-27% more steps per minute in one session than in another. A budget's search
and extension take more than one session from 5 minutes up, so the reported numbers come from
the final runs alone, every family's in one session (`final_M`, its own record names: `_final_`
before the seed); the search only chooses.

"Best" is the lowest like-for-like validation loss (every window of 256 characters; the
recurrent families' carried-state score is reported, never used to choose).

The extension (below 45 minutes) steps past the grid where its best sits on an edge, and keeps
stepping while the best of everything tried does: where the best uses the largest (smallest)
rate tried at its size, the same size also runs at the rate one step up (down), the step being
the family's own ratio between its two grid rates, at most MAX_RATE_STEPS steps past the grid's
rates; where it is the smallest (largest) size tried, the next size of the family's ladder
runs at its rate: the family's sizes with half the smallest's width and twice the largest's
added at either end (at 15 minutes the grid leaves out the smallest, so two steps down are
possible). Each step waits for the results of the one before. The same
rule for every family, so no family's best is left on an edge the others were searched past;
a best still on an edge of what was tried (the ladder's end, or MAX_RATE_STEPS rates past the
grid) is marked in the table (`edges`). The 45-minute budget runs the two best sizes at 15
minutes (grid and extension), each at its best rate there.
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
FINAL_SEEDS = {1: (0, 1, 2), 5: (0, 1, 2), 15: (0, 1, 2), 45: (0,)}
MAX_RATE_STEPS = 3  # the extension's rates stay within rate_step**3 of the grid's


def name(family: str, minutes: int, size: Size, rate: float, seed: int) -> str:
    return f"{family}_{minutes}m_{size.key}_lr{rate:g}_s{seed}"


def final_name(family: str, minutes: int, size: Size, rate: float, seed: int) -> str:
    return f"{family}_{minutes}m_{size.key}_lr{rate:g}_final_s{seed}"


def run(family: str, minutes: int, size: Size, rate: float, seed: int, final: bool = False) -> Run:
    """One run of the study: a search run (seed 0), or a final run of the chosen setting."""
    args = f"family={family},minutes={minutes},{size.args()},learning_rate={rate},seed={seed}"
    named = final_name if final else name
    return Run(named(family, minutes, size, rate, seed), config=f"{CONFIG}:{args}")


def ladder(family: str) -> tuple[Size, ...]:
    """The family's sizes, smallest to largest, with one more at each end: half the smallest's
    width and twice the largest's (same depth and heads), the extension's size steps."""
    sizes = SIZES[family]
    smaller = dataclasses.replace(sizes[0], hidden_size=sizes[0].hidden_size // 2)
    larger = dataclasses.replace(sizes[-1], hidden_size=sizes[-1].hidden_size * 2)
    return (smaller, *sizes, larger)


def rate_step(family: str) -> float:
    """The factor between the family's grid rates, the extension's rate step."""
    low, high = RATES[family]
    return high / low


def _rounded(rate: float) -> float:
    return float(f"{rate:.3g}")  # 0.009, not 0.009000000000000001, in names and configs


def loss(record: dict) -> float:
    """The like-for-like validation loss (nats/char); inf for a run without one."""
    value = record.get("valid", {}).get("loss")
    return float(value) if isinstance(value, int | float) else float("inf")


def _lowest(family: str, minutes: int, settings: list, found: dict) -> tuple[Size, float] | None:
    """The setting with the lowest seed-0 loss among `settings`, once all of them are done."""
    records = [found.get(name(family, minutes, s, r, 0)) for s, r in settings]
    if not settings or any(r is None for r in records):
        return None
    return min(zip(settings, records, strict=True), key=lambda p: loss(p[1]))[0]


def searched(family: str, minutes: int, found: dict) -> list[tuple[Size, float]]:
    """The grid's (size, rate) settings at this budget (the 45-minute one needs the 15's
    search and extension done: its two best sizes, each at its best rate)."""
    if minutes < 45:
        sizes = SIZES[family] if minutes <= 5 else SIZES[family][1:]
        return [(s, r) for s in sizes for r in RATES[family]]
    at_15 = tried(family, 15, found)
    if _lowest(family, 15, at_15, found) is None:
        return []
    by_size: dict[Size, tuple[float, float]] = {}  # size -> (loss, rate), its best rate
    for size, rate in at_15:
        value = loss(found[name(family, 15, size, rate, 0)])
        if size not in by_size or value < by_size[size][0]:
            by_size[size] = (value, rate)
    two = sorted(by_size, key=lambda s: by_size[s][0])[:2]
    return [(s, by_size[s][1]) for s in ladder(family) if s in two]


def _within_reach(family: str, rate: float) -> bool:
    """Whether `rate` is at most MAX_RATE_STEPS rate steps past the family's grid rates."""
    low, high = RATES[family]
    reach = rate_step(family) ** MAX_RATE_STEPS * (1 + 1e-6)  # the rounding to 3 figures
    return low / reach <= rate <= high * reach


def _edges_of(family: str, chosen: tuple[Size, float], tried: list) -> list[str]:
    """The edges of `tried` that `chosen` sits on: 'largest rate', 'smallest rate' (among the
    rates tried at its size), 'smallest size', 'largest size' (on the family's ladder)."""
    size, rate = chosen
    rates = [r for s, r in tried if s == size]
    at, steps = ladder(family).index(size), ladder(family)
    placed = [steps.index(s) for s, _ in tried]
    names = ("largest rate", "smallest rate", "smallest size", "largest size")
    on = (rate == max(rates), rate == min(rates), at == min(placed), at == max(placed))
    return [n for n, yes in zip(names, on, strict=True) if yes]


def _steps(family: str, chosen: tuple[Size, float], tried: list) -> list[tuple[Size, float]]:
    """The settings one step past each edge of `tried` that `chosen` sits on."""
    size, rate = chosen
    steps, edges_on = ladder(family), _edges_of(family, chosen, tried)
    at = steps.index(size)
    out = []
    if "largest rate" in edges_on:
        out.append((size, _rounded(rate * rate_step(family))))
    if "smallest rate" in edges_on:
        out.append((size, _rounded(rate / rate_step(family))))
    out = [(s, r) for s, r in out if _within_reach(family, r)]
    if "smallest size" in edges_on and at > 0:
        out.append((steps[at - 1], rate))
    if "largest size" in edges_on and at + 1 < len(steps):
        out.append((steps[at + 1], rate))
    return [setting for setting in out if setting not in tried]


def extension(family: str, minutes: int, found: dict) -> list[tuple[Size, float]]:
    """The settings tried past the grid (the module docstring's rule), in the order they were
    called for: the steps from the grid's best, then from the best of everything tried once
    those are done, until the best sits on no edge it can step past. Empty until the grid is
    done, and at 45 minutes."""
    if minutes >= 45:
        return []
    settings = searched(family, minutes, found)
    tried_ = list(settings)
    while (chosen := _lowest(family, minutes, tried_, found)) is not None:
        more = _steps(family, chosen, tried_)
        if not more:
            break
        tried_ += more
    return tried_[len(settings) :]


def tried(family: str, minutes: int, found: dict) -> list[tuple[Size, float]]:
    """Every seed-0 setting of this budget: the grid, then its extension."""
    return searched(family, minutes, found) + extension(family, minutes, found)


def best(family: str, minutes: int, found: dict) -> tuple[Size, float] | None:
    """The tried setting with the lowest seed-0 validation loss, once all are done."""
    return _lowest(family, minutes, tried(family, minutes, found), found)


def edges(family: str, minutes: int, found: dict) -> list[str]:
    """The edges of what was tried that the final best still sits on (the ladder's end, or
    MAX_RATE_STEPS rates past the grid): 'largest rate', 'smallest rate', 'smallest size',
    'largest size'; empty for an interior best, before it is final, and at 45 minutes."""
    chosen = best(family, minutes, found) if minutes < 45 else None
    return [] if chosen is None else _edges_of(family, chosen, tried(family, minutes, found))


def leading(family: str, minutes: int, found: dict) -> tuple[tuple[Size, float], bool] | None:
    """For the report: the best setting and whether it is settled; before the extension is done,
    the grid's best with False (None until the grid itself is done)."""
    chosen = best(family, minutes, found)
    if chosen is not None:
        return chosen, True
    grid_best = _lowest(family, minutes, searched(family, minutes, found), found)
    return (grid_best, False) if grid_best is not None else None
