r"""Gate statistics from the cell trace, and a heatmap of the gates over one sequence.

    python -m experiments.studies.long_range.gates --length=100

For the adding-problem models in workdirs/long_range/adding_<T>_<cell> (trained) and the same
configs freshly initialised (untrained), `cells.scan(..., return_trace=True)` gives every gate's
activation [B, T, H] over the test sequences. Per gate it reports the mean activation and the
saturation fraction: a sigmoid gate (LSTM i, f, o; GRU r, z) counts as saturated below 0.05 or
above 0.95, a tanh value (LSTM g, GRU n, Elman tanh(a)) when |value| > 0.95, a ReLU unit
(IRNN, IndRNN: relu(a)) when it is 0 (`gate_kinds` reads each cell's names). The heatmap shows
one test sequence: the LSTM forget gate f_t (GRU: update gate z_t, the share of h_{t-1} kept)
of every unit over time, with the two marker positions: units that carry the first marked value
to the end need f (or z) near 1 from that marker on.

Writes gates_T<T>.json (with commit, hardware and command) and gates_T<T>.png. The flags are
`gradient_flow.py`'s (`--models`: every registered cell, the chrono variants; `--run_prefix`,
`--name`, `--out`, `--figures`, `--json`):

    python -m experiments.studies.long_range.gates --length=400 --models=all \
        --name=gates_cells_T400 --run_prefix=long_adding
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags, logging

import cells
from experiments.studies.long_range import gradient_flow

FLAGS = flags.FLAGS

SIGMOID_GATES = {"i", "f", "o", "r", "z"}
TANH_VALUES = {"g", "n"}


def held_gate(cell) -> str | None:
    """The gate that decides how much of the state is kept: the forget gate f (LSTM family,
    MGU, sLSTM, minLSTM), else the update gate z (GRU family, minGRU), else the tanh Elman
    unit's output tanh(a); None for a ReLU unit (IRNN, IndRNN), which has no bounded gate."""
    names = set(cell.gate_names)
    if "f" in names or "z" in names:
        return "f" if "f" in names else "z"
    return "tanh(a)" if getattr(cell, "activation", "tanh") == "tanh" else None


def gate_kinds(cell) -> dict[str, str | None]:
    """How to read each traced value of `cell`: 'sigmoid' (a gate in [0, 1]), 'tanh', 'relu'
    (an Elman unit's input a, read as its output act(a)) or None (a state, skipped). The
    names are shared across cells with different meanings: the sLSTM's z is its tanh
    candidate and n its normaliser state, the GRU's z and n its update gate and candidate;
    the sLSTM's stabilised exponential gates i', f' lie in [0, 1] and are read as gates."""
    from cells import slstm

    kinds = {g: "sigmoid" for g in SIGMOID_GATES} | {g: "tanh" for g in TANH_VALUES}
    kinds["a"] = "relu" if getattr(cell, "activation", "tanh") == "relu" else "tanh"
    if isinstance(cell, slstm.SLSTM):
        kinds |= {"z": "tanh", "n": None}
    return kinds


def gate_statistics(
    trace: dict, low: float = 0.05, high: float = 0.95, kinds: dict | None = None
) -> dict:
    """{gate: {'mean', 'saturated'}} from a trace of [B, T, H] arrays, read by `kinds`
    (`gate_kinds`; default the LSTM/GRU/Elman-tanh names). A sigmoid gate counts as saturated
    below `low` or above `high`, a tanh value when |v| > high, a ReLU unit when it is 0
    (inactive); states ('c', ...) are skipped."""
    if kinds is None:
        kinds = {g: "sigmoid" for g in SIGMOID_GATES} | {g: "tanh" for g in TANH_VALUES}
        kinds["a"] = "tanh"
    stats = {}
    for name, values in trace.items():
        kind = kinds.get(name)
        v = np.asarray(values, np.float64)
        if name == "a":  # the Elman pre-activation: look at the unit's output act(a)
            name, v = f"{kind}(a)", (np.tanh(v) if kind == "tanh" else np.maximum(v, 0.0))
        if kind == "sigmoid":
            saturated = (v < low) | (v > high)
        elif kind == "tanh":
            saturated = np.abs(v) > high
        elif kind == "relu":
            saturated = v == 0.0
        else:
            continue
        stats[name] = {"mean": float(v.mean()), "saturated": float(saturated.mean())}
    return stats


def trace_of(task, params, x) -> dict:
    """The top-layer trace of an adding-task model on inputs x [B, T, 2]."""
    if len(params["rnn"]) != 1:
        raise ValueError("gates inspects single-layer models (config.model.num_layers=1).")
    run = jax.jit(lambda p, xs: cells.scan(task.cell, p, xs, return_trace=True)[2])
    return {k: np.asarray(v) for k, v in run(params["rnn"][0], jnp.asarray(x)).items()}


def measure(
    length: int,
    workdirs: str,
    num_sequences: int,
    models: tuple[str, ...] = gradient_flow.CELLS,
    prefix: str = "adding",
    require_trained: bool = False,
) -> tuple[dict, dict]:
    rule = "sigmoid gate < 0.05 or > 0.95; tanh value |v| > 0.95"
    out = {"length": length, "num_sequences": num_sequences, "saturation": rule, "cells": {}}
    heat = {}
    for cell_name in models:
        entry = {}
        for trained in (False, True):
            if trained and not gradient_flow.has_trained(
                workdirs, prefix, length, cell_name, require_trained
            ):
                continue
            task, params, _ = gradient_flow.load(cell_name, length, workdirs, trained, prefix)
            x = task.examples("test")["x"][:num_sequences]
            trace = trace_of(task, params, x)
            stats = gate_statistics(trace, kinds=gate_kinds(task.cell))
            entry["trained" if trained else "untrained"] = stats
            held = held_gate(task.cell)
            if trained and held is not None:
                values = np.tanh(trace["a"]) if held == "tanh(a)" else trace[held]
                heat[cell_name] = (held, values[0], x[0])
        out["cells"][cell_name] = entry
    return out, heat


def plot_heatmaps(heat: dict, length: int, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(heat), 1, figsize=(11, 2.6 * len(heat)), squeeze=False)
    for ax, (cell_name, (gate, values_TxH, x_Tx2)) in zip(axes[:, 0], heat.items(), strict=True):
        markers = np.flatnonzero(x_Tx2[:, 1])
        # Units sorted by their mean activation between the markers (held units at the top).
        order = np.argsort(-values_TxH[markers[0] : markers[1] + 1].mean(0))
        vmin = -1.0 if gate == "tanh(a)" else 0.0
        image = ax.imshow(
            values_TxH[:, order].T,
            aspect="auto",
            cmap="viridis",
            vmin=vmin,
            vmax=1.0,
            interpolation="nearest",
        )
        for m in markers:
            ax.axvline(m, color="red", lw=1.2)
        ax.set_title(
            f"{cell_name.upper()} {gate}_t on one test sequence (T={length}); "
            f"red: the two marked steps"
        )
        ax.set_ylabel("unit (sorted)")
        fig.colorbar(image, ax=ax, fraction=0.02)
    axes[-1, 0].set_xlabel("time step t")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)
    results, heat = gradient_flow.measure_from_flags(measure)
    path, figure, overwrite = gradient_flow.output_paths(FLAGS.name or f"gates_T{FLAGS.length}")
    gradient_flow.write_record(results, path, overwrite)
    if heat:
        os.makedirs(os.path.dirname(figure), exist_ok=True)
        plot_heatmaps(heat, FLAGS.length, figure)
    for cell_name, entry in results["cells"].items():
        for which, stats in entry.items():
            text = ", ".join(
                f"{g} mean {s['mean']:.2f} sat {s['saturated']:.2f}" for g, s in stats.items()
            )
            print(f"{cell_name:13s} {which:9s} {text}")
    print(f"wrote {path}")


if __name__ == "__main__":
    gradient_flow.define_flags(num_sequences=500)
    app.run(main)
