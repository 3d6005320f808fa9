r"""Gradient flow through time: ||dL/dh_t|| as a function of the distance to the loss.

For a loss read at the last step T-1 (the adding problem), the gradient reaching the hidden
state k steps earlier is

    dL/dh_{T-1-k} = dL/dh_{T-1} * prod_{s=T-k}^{T-1} dh_s/dh_{s-1}

a product of k Jacobians. For the Elman RNN each factor is diag(tanh') W_hh, and the product
shrinks geometrically (the vanishing gradient, Hochreiter 1991; Bengio et al. 1994); the LSTM's
additive memory path (dc_s/dc_{s-1} = diag(f_s)) and the GRU's interpolation (z_s) carry it
further. dL/dh_t is measured exactly, with autodiff: a zero perturbation e_t is added to each
step's hidden output inside a small scan over `cell.fused_step`, and dL/de_t = dL/dh_t (the
total derivative, through all later steps).

    python -m experiments.studies.long_range.gradient_flow --length=100

reads the trained adding-problem models in workdirs/long_range/adding_<T>_<model> (`--workdirs`;
trained by `python -m experiments run long_range adding`), builds untrained ones from the same
configs, and writes gradient_flow_T<T>.json (per model: mean over test sequences of
||dL/dh_t||_2 for distance k = 0..T-1; commit, hardware and command) into the study's results/
(`--out`) and a log-scale plot into results/figures/ (`--figures`). `--models` takes any
registered cell and the chrono-initialised `lstm_chrono` / `gru_chrono` (Tallec & Ollivier 2018,
chrono_t_max = T); `--run_prefix=long_adding` reads the long-range study's runs instead (the
groups `long_range` and `long_range_cells`); `--name` names the files:

    python -m experiments.studies.long_range.gradient_flow --length=400 --models=all \
        --name=gradient_flow_cells_T400 --run_prefix=long_adding

The study's group `inside` runs these commands for every committed record (gradient_flow_*,
gates_*): `python -m experiments run long_range inside`, after the groups that train the models.
"""

from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags, logging

from experiments.configs import adding as adding_config
from experiments.lab import records
from train import models
from train.tasks import registry

FLAGS = flags.FLAGS
STUDY_DIR = os.path.dirname(os.path.abspath(__file__))

CELLS = ("rnn", "lstm", "gru")
# Models that are a cell with an option: name -> (cell, the option set to T).
CHRONO = {"lstm_chrono": "lstm", "gru_chrono": "gru"}


def model_config_arg(name: str, length: int) -> str:
    """The adding config argument of a model name: a cell, or a chrono variant of one."""
    if name in CHRONO:
        return f"length={length},cell={CHRONO[name]},chrono_t_max={length}"
    return f"length={length},cell={name}"


def hidden_state_grads(cell, params, xs_BxTxI, loss_fn):
    """dL/dh_t for every step: [B, T, H], where L = loss_fn(hs [B, T, H]).

    The scan is `cells.scan`'s fused path (one input GEMM, `fused_step` per step) with an
    additive perturbation e_t on each step's hidden output, which also feeds the next step
    (h is part of the carry); the gradient w.r.t. e at e = 0 is dL/dh_t.
    """
    batch, steps, _ = xs_BxTxI.shape
    xp_TxBxG = jnp.swapaxes(cell.input_projection(params, xs_BxTxI), 0, 1)

    def loss_of_perturbation(eps_TxBxH):
        def body(carry, inputs):
            xp_BxG, eps_BxH = inputs
            carry, h_BxH, _ = cell.fused_step(params, carry, xp_BxG)
            h_BxH = h_BxH + eps_BxH
            return carry._replace(h=h_BxH), h_BxH

        _, hs_TxBxH = jax.lax.scan(body, cell.initial_carry(batch), (xp_TxBxG, eps_TxBxH))
        return loss_fn(jnp.swapaxes(hs_TxBxH, 0, 1))

    zeros = jnp.zeros((steps, batch, cell.output_size), jnp.float32)
    return jnp.swapaxes(jax.grad(loss_of_perturbation)(zeros), 0, 1)


def norms_by_distance(grads_BxTxH) -> np.ndarray:
    """Mean over the batch of ||dL/dh_t||_2, indexed by distance k = T-1-t: [T]."""
    norms_BxT = jnp.sqrt(jnp.sum(jnp.square(grads_BxTxH), axis=-1))
    return np.asarray(jnp.mean(norms_BxT, axis=0))[::-1]


def adding_norms(task, params, x, y) -> np.ndarray:
    """||dL/dh_t|| of the adding task's squared error (per sequence), by distance to the loss."""
    if len(params["rnn"]) != 1:
        raise ValueError("gradient_flow measures single-layer models (config.model.num_layers=1).")

    def loss_fn(hs_BxTxH):
        pred_B = models.dense(params["head"], hs_BxTxH[:, -1], task.cell.compute_dtype)[:, 0]
        return jnp.sum(jnp.square(pred_B - y))  # a sum: each sequence's own gradient

    grads = jax.jit(hidden_state_grads, static_argnums=(0, 3))(
        task.cell, params["rnn"][0], jnp.asarray(x), loss_fn
    )
    return norms_by_distance(grads)


def load(cell_name: str, length: int, workdirs: str, trained: bool, prefix: str = "adding"):
    """(task, params, workdir or None): trained from WORKDIRS/<prefix>_<T>_<model>, else freshly
    initialised."""
    workdir = os.path.join(workdirs, f"{prefix}_{length}_{cell_name}")
    if trained:
        from train import checkpoint

        trained = checkpoint.load_trained(workdir, "best")
        return trained.task, trained.params, workdir
    config = adding_config.get_config(model_config_arg(cell_name, length))
    task = registry.get_task(config)
    return task, task.init_params(jax.random.key(config.seed)), None


def has_trained(
    workdirs: str, prefix: str, length: int, model: str, required: bool = False
) -> bool:
    """Whether WORKDIRS/<prefix>_<T>_<model> holds checkpoints; without them, a message (the
    model's trained row is skipped) or, when `required`, FileNotFoundError naming the group
    that trains it."""
    workdir = os.path.join(workdirs, f"{prefix}_{length}_{model}")
    if os.path.isdir(os.path.join(workdir, "checkpoints")):
        return True
    if required:
        group = "adding" if prefix == "adding" else "long_range long_range_cells"
        raise FileNotFoundError(
            f"no checkpoints in {workdir}: train the models first "
            f"(python -m experiments run long_range {group})"
        )
    print(f"skipping trained {model}: no checkpoints in {workdir}")
    return False


def output_paths(stem: str) -> tuple[str, str, bool]:
    """(record path, figure path, overwrite) from the flags: --json (the study runner's: the
    figure, named as the record, goes to figures/ beside it, and the runner has already decided
    to replace a record) or --out / --figures with `stem` (an existing record is an error
    unless --force)."""
    if FLAGS.json:
        directory, name = os.path.split(os.path.abspath(FLAGS.json))
        figure = os.path.join(directory, "figures", os.path.splitext(name)[0] + ".png")
        return FLAGS.json, figure, True
    return (
        os.path.join(FLAGS.out, f"{stem}.json"),
        os.path.join(FLAGS.figures, f"{stem}.png"),
        FLAGS.force,
    )


def write_record(record: dict, path: str, overwrite: bool) -> None:
    """The record with its provenance (commit, dirty tree, hardware, date, command)."""
    records.write(path, record | records.provenance(), overwrite=overwrite, allow_dirty=overwrite)


def measure(
    length: int,
    workdirs: str,
    num_sequences: int,
    models: tuple[str, ...] = CELLS,
    prefix: str = "adding",
    require_trained: bool = False,
) -> dict:
    out = {
        "length": length,
        "num_sequences": num_sequences,
        "norm": "mean_b ||dL_b/dh_t||_2",
        "distance": "k = T - 1 - t (0 = the step the loss reads)",
        "cells": {},
    }
    for cell_name in models:
        entry = {}
        for trained in (False, True):
            if trained and not has_trained(workdirs, prefix, length, cell_name, require_trained):
                continue
            task, params, source = load(cell_name, length, workdirs, trained, prefix)
            data = task.examples("test")
            x, y = data["x"][:num_sequences], data["y"][:num_sequences]
            norms = adding_norms(task, params, x, y)
            entry["trained" if trained else "untrained"] = {
                "workdir": source,
                "norms": [float(v) for v in norms],
                "ratio_far_to_near": float(norms[-1] / norms[0]),
            }
        out["cells"][cell_name] = entry
    return out


def plot(results: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    colors = {"rnn": "tab:red", "lstm": "tab:blue", "gru": "tab:green"}
    others = iter(plt.get_cmap("tab20").colors)
    colors |= {name: next(others) for name in results["cells"] if name not in colors}
    for ax, which in zip(axes, ("untrained", "trained"), strict=True):
        for cell_name, entry in results["cells"].items():
            if which in entry:
                norms = np.asarray(entry[which]["norms"])
                style = "--" if cell_name in CHRONO else "-"
                ax.semilogy(np.arange(len(norms)), norms, style, label=cell_name,
                            color=colors[cell_name])  # fmt: skip
        ax.set_title(f"{which}, adding problem T={results['length']}")
        ax.set_xlabel("distance to the loss k = T-1-t (steps)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    axes[0].set_ylabel("mean ||dL/dh_t||")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def define_flags(num_sequences: int = 256) -> None:
    """The command-line flags (defined only when run as a script, so importing is side-free);
    gates.py takes the same ones."""
    flags.DEFINE_integer("length", 100, "Adding-problem T.")
    flags.DEFINE_string("workdirs", "workdirs/long_range", "Where the study's runs trained.")
    flags.DEFINE_integer("num_sequences", num_sequences, "Test sequences used.")
    flags.DEFINE_string("out", os.path.join(STUDY_DIR, "results"), "JSON directory.")
    flags.DEFINE_string("figures", os.path.join(STUDY_DIR, "results", "figures"), "PNG directory.")
    flags.DEFINE_bool("force", False, "Replace an existing result file in --out.")
    flags.DEFINE_string(
        "models",
        ",".join(CELLS),
        "Comma-separated cells or chrono variants "
        f"({', '.join(CHRONO)}); 'all' = every registered cell and both.",
    )
    flags.DEFINE_string(
        "run_prefix",
        "adding",
        "Trained workdirs are WORKDIRS/<prefix>_<T>_<model> "
        "(long_adding for the group long_range).",
    )
    flags.DEFINE_string("name", "", "File name stem (default gradient_flow_T<length>).")
    flags.DEFINE_string(
        "json",
        None,
        "Write the record to this path instead (the study runner's; replaced if it exists), "
        "the figure, named as the record, into figures/ beside it.",
    )
    flags.DEFINE_bool(
        "require_trained",
        False,
        "Fail when a model has no trained checkpoints instead of measuring it untrained only.",
    )


def model_names(value: str) -> tuple[str, ...]:
    """--models: 'all' or comma-separated names; UsageError naming the valid ones."""
    import cells

    valid = (*cells.names(grids=False), *CHRONO)
    if value == "all":
        return valid
    names = tuple(v for v in value.split(",") if v)
    unknown = [n for n in names if n not in valid]
    if unknown or not names:
        raise app.UsageError(f"--models={value!r}: valid names are all, {', '.join(valid)}.")
    return names


def measure_from_flags(measure_fn):
    """`measure_fn` (this module's `measure`, or gates') called with the flags both scripts
    share; a model to measure that was never trained is a one-line error."""
    try:
        return measure_fn(
            FLAGS.length,
            os.path.normpath(records.portable_path(FLAGS.workdirs)),
            FLAGS.num_sequences,
            model_names(FLAGS.models),
            FLAGS.run_prefix,
            FLAGS.require_trained,
        )
    except FileNotFoundError as error:
        sys.exit(f"error: {error}")


def main(argv) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)
    results = measure_from_flags(measure)
    path, figure, overwrite = output_paths(FLAGS.name or f"gradient_flow_T{FLAGS.length}")
    write_record(results, path, overwrite)
    os.makedirs(os.path.dirname(figure), exist_ok=True)
    plot(results, figure)
    for cell_name, entry in results["cells"].items():
        for which, e in entry.items():
            print(
                f"{cell_name:13s} {which:9s} ||dL/dh|| at k=0 {e['norms'][0]:.3e}, "
                f"k=T-1 {e['norms'][-1]:.3e}, ratio {e['ratio_far_to_near']:.3e}"
            )
    print(f"wrote {path}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
