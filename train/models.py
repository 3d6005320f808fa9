"""The model layer: every task builds its recurrent cells, stacks and dense heads here.

    cell = models.make_cell(config)          # config.model.cell + cell_options, train.dtype
    stack = models.make_stack(config, cell)  # model.num_layers of it, model.dropout between
    head = models.dense_init(key, H, K);  y_BxK = models.dense(head, h_BxH, cell.compute_dtype)

`config.model.cell` is a registered cell name (`cells.names()`: lstm, gru, rnn, ...) or the
import path 'package.module:Class' of a `cells.Cell` subclass in the user's own code, so any
task runs a new cell with no change to this repository. `config.model.cell_options` holds
keyword arguments of that class (its dataclass fields; the defaults live in the class alone):

    --config.model.cell=rnn --config.model.cell_options="{'activation': 'relu'}"
    --config.model.cell_options.forget_bias=0.0      # when the config file already sets the key

The cell's width is `config.model.hidden_size` and its matmul dtype `config.train.dtype`
('bfloat16' -> compute_dtype bfloat16; parameters stay float32); neither is a cell option.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

import cells
from cells import base as cells_base
from train.errors import ConfigError, check_type

# Cell constructor arguments that other config fields set.
GOVERNED_OPTIONS = {
    "hidden_size": "config.model.hidden_size",
    "compute_dtype": "config.train.dtype",
    "param_dtype": "the trainer (float32 parameters)",
}
_SCALAR_TYPES = (bool, int, float, str)


def compute_dtype(config: ml_collections.ConfigDict) -> str | None:
    """The cells' and heads' matmul dtype: None (inputs' dtype) for float32, else train.dtype;
    'auto' is float32 on CPU and bfloat16 on GPU / TPU (`jax.default_backend()`)."""
    dtype = config.train.dtype
    if dtype == "auto":
        dtype = "float32" if jax.default_backend() == "cpu" else "bfloat16"
    return None if dtype == "float32" else dtype


def cell_class(config: ml_collections.ConfigDict) -> type[cells.Cell]:
    """The class config.model.cell names; ConfigError (one line) when there is none."""
    try:
        return cells.get(config.model.cell)
    except ValueError as e:
        raise ConfigError(f"config.model.cell: {e}") from None


def configurable_options(cls: type[cells.Cell]) -> dict[str, Any]:
    """name -> default of the constructor arguments a config may set (fields whose default is
    a scalar or a tuple, e.g. the ConvLSTM's spatial_shape)."""
    return {
        f.name: f.default
        for f in dataclasses.fields(cls)
        if f.init
        and f.name not in GOVERNED_OPTIONS
        and f.default is not dataclasses.MISSING
        and (f.default is None or isinstance(f.default, _SCALAR_TYPES + (tuple,)))
    }


def make_cell(config: ml_collections.ConfigDict) -> cells.Cell:
    """The cell of config.model (cell, hidden_size, cell_options) computing in train.dtype."""
    cls = cell_class(config)
    options = config.model.cell_options.to_dict()
    valid = configurable_options(cls)
    for key, value in options.items():
        field = f"config.model.cell_options.{key}"
        if key in GOVERNED_OPTIONS:
            raise ConfigError(f"{field}: set by {GOVERNED_OPTIONS[key]}, not as a cell option.")
        if key not in valid:
            listed = ", ".join(f"{k} (default {v!r})" for k, v in valid.items()) or "none"
            raise ConfigError(f"{field}: {cls.__name__} has no such option; valid: {listed}.")
        if valid[key] is not None:
            check_type(field, value, valid[key])
        if isinstance(value, list):  # a tuple option read back from config.json
            options[key] = tuple(value)
    try:
        return cls(int(config.model.hidden_size), compute_dtype=compute_dtype(config), **options)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"config.model.cell_options: {str(e).splitlines()[0]}") from None


def make_stack(
    config: ml_collections.ConfigDict, cell: cells.Cell | None = None, bidirectional: bool = False
):
    """config.model.num_layers copies of `cell` (default `make_cell(config)`).

    bidirectional=True: each layer is a `cells.Bidirectional` of two copies of the cell (the
    backward one over each sequence's valid part), outputs concatenated; plain stacks only.

    model.block='stack': a `cells.Stack`, model.dropout between layers; 'residual': a
    `cells.ResidualStack` (pre-norm residual blocks, model.block_norm, a gated FFN of width
    model.block_ffn_factor * hidden when > 0), model.dropout on each branch; 'hawk': the same
    with Hawk's recurrent block (`cells.HawkBlock`, width hidden) for the cell 'rglru' (Griffin
    uses block_ffn_factor=3). Each is
    variational (one dropout mask per sequence) with model.locked_dropout (the LM's switch).
    """
    cell = make_cell(config) if cell is None else cell
    m = config.model
    block = m.get("block", "stack")
    if bidirectional:
        if block != "stack":
            raise ConfigError(
                f"config.model.block={block!r} has no bidirectional form; use 'stack'."
            )
        layer = cells.Bidirectional(cell, cell)
        return cells.Stack((layer,) * int(m.num_layers), dropout=m.dropout)
    locked = bool(m.get("locked_dropout", False))  # the LM's variational-dropout switch
    if block == "hawk":  # Griffin's final-layer init scale, 2 / num_layers (De et al. 2024)
        cell = cells.HawkBlock(
            cell.hidden_size,
            final_init_scale=2.0 / int(m.num_layers),
            compute_dtype=cell.compute_dtype,
        )
    if block in ("residual", "hawk"):
        try:
            return cells.ResidualStack.uniform(
                cell,
                m.num_layers,
                norm=m.get("block_norm", "rms"),
                ffn_factor=float(m.get("block_ffn_factor", 0.0)),
                dropout=m.dropout,
                locked_dropout=locked,
            )
        except ValueError as e:
            raise ConfigError(f"config.model.block={block!r}: {e}") from None
    return cells.Stack.uniform(cell, m.num_layers, dropout=m.dropout, locked_dropout=locked)


def check_model(config: ml_collections.ConfigDict, task_cls) -> None:
    """Refuses model settings that would not take effect, before any compute.

    Builds the cell (name, options and their types) and refuses dropout that a task applies
    only between recurrent layers when there is one layer (it would be silently ignored).
    """
    cell = make_cell(config)
    _check_recurrent_regularizers(config, cell)
    _check_scan_backend(config, cell)
    m = config.model
    between_layers = m.get("block", "stack") == "stack"  # residual blocks drop every branch
    if (
        between_layers
        and task_cls.dropout_between_layers_only
        and m.dropout > 0
        and m.num_layers == 1
    ):
        raise ConfigError(
            f"config.model.dropout={m.dropout} has no effect in task {config.task!r} with "
            "num_layers=1: it acts between recurrent layers only; set num_layers >= 2 or "
            "dropout=0."
        )


def _check_scan_backend(config: ml_collections.ConfigDict, cell: cells.Cell) -> None:
    """Refuses config.train.scan_backend='onednn' where oneDNN cannot run the model, in one
    line before anything is traced ('auto' falls back to XLA there instead)."""
    if config.train.get("scan_backend", "xla") != "onednn":
        return
    from cells.kernels import onednn_rnn

    m = config.model
    zoneout = m.get("zoneout", 0.0)
    zoned = any(
        _rate({"z": z}, "z") for z in (zoneout if isinstance(zoneout, tuple) else (zoneout,))
    )
    why = onednn_rnn.unavailable()
    if not why and onednn_rnn.cell_kind(cell) is None:
        why = f"it runs the plain LSTM and GRU only, not {m.cell!r} ({type(cell).__name__})"
    if not why and m.get("block", "stack") != "stack":
        why = f"it runs plain stacks only, not block={m.block!r}"
    if not why and config.train.dtype == "bfloat16":
        why = "it computes in float32 only"
    if not why and (_rate(m, "recurrent_dropout") or zoned):
        why = "it has no recurrent dropout or zoneout"
    if why:
        raise ConfigError(
            f"config.train.scan_backend='onednn': {why}; use 'xla' (or 'auto', which uses "
            "oneDNN only where it applies)."
        )


def _rate(m: ml_collections.ConfigDict, field: str) -> float:
    """config.model.<field> when it is a positive number, else 0 (the task checks its range)."""
    value = m.get(field, 0.0)
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
    return value if ok else 0.0


def _check_recurrent_regularizers(config: ml_collections.ConfigDict, cell: cells.Cell) -> None:
    """Refuses the LM's recurrent regularisers on a cell they cannot act on.

    recurrent_dropout drops h in the product h W_hh and weight_drop masks W_hh itself
    (`train/tasks/lm.py`, `cells.regularization`). minGRU/minLSTM (`linear_in_h`) gate on x
    alone, so there is no product to drop; a cell without a 'w_hh' matrix (those, and IndRNN's
    vector u) has nothing to mask. Left to the cells, either fails as a long traceback from
    inside the memory estimate's trace; here it is one line before anything is traced.
    """
    m = config.model
    name = f"{m.cell!r} ({type(cell).__name__})"
    rate = _rate(m, "recurrent_dropout")
    if rate and getattr(cell, "linear_in_h", False):
        raise ConfigError(
            f"config.model.recurrent_dropout={rate} cannot apply to cell {name}: it has no "
            "recurrent matrix (its gates see x only); leave it at 0 or use a cell with one "
            "(lstm, gru, rnn, ...)."
        )
    rate = _rate(m, "weight_drop")
    if rate:
        try:
            params = jax.eval_shape(lambda: cell.init(jax.random.key(0), 1))
        except Exception:  # noqa: BLE001 - a user cell that cannot be traced: the run reports it
            return
        if isinstance(params, dict) and "w_hh" not in params:
            raise ConfigError(
                f"config.model.weight_drop={rate} cannot apply to cell {name}: it has no "
                f"recurrent matrix w_hh to drop (its parameters: {', '.join(sorted(params))}); "
                "leave it at 0 or use a cell with one (lstm, gru, rnn, ...)."
            )


def dense_init(key, fan_in: int, fan_out: int) -> dict[str, jax.Array]:
    """LeCun-uniform weights w [fan_in, fan_out] (U[-sqrt(3/fan_in), +]) and zero bias b."""
    limit = math.sqrt(3.0 / fan_in)
    w = jax.random.uniform(key, (fan_in, fan_out), jnp.float32, -limit, limit)
    return {"w": w, "b": jnp.zeros((fan_out,), jnp.float32)}


def torch_dense_init(key, fan_in: int, fan_out: int) -> dict[str, jax.Array]:
    """PyTorch's nn.Linear default: w [fan_in, fan_out] and b both U[-1/sqrt(fan_in), +], for
    models reproduced from PyTorch code (the LTSF linear models, SegRNN)."""
    bound = 1.0 / math.sqrt(fan_in)
    k_w, k_b = jax.random.split(key)
    return {
        "w": jax.random.uniform(k_w, (fan_in, fan_out), jnp.float32, -bound, bound),
        "b": jax.random.uniform(k_b, (fan_out,), jnp.float32, -bound, bound),
    }


def dense(p: dict[str, jax.Array], x_BxK, compute_dtype=None):
    """y = x w + b over the last axis; matmul inputs in `compute_dtype` (float32 accumulation)."""
    return cells_base.add_bias(cells_base.matmul(x_BxK, p["w"], compute_dtype), p["b"])


def count_params(params) -> int:
    """Number of scalars in a parameter tree."""
    return int(sum(np.prod(np.shape(x), dtype=np.int64) for x in jax.tree.leaves(params)))


def uniform_init(key, params, scale: float, keep=None):
    """Every leaf of `params` redrawn uniform in [-scale, scale] (Zaremba's init; PyTorch's RNN
    init with scale 1/sqrt(hidden)), except those whose key path `keep(path)` is True."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
    keys = jax.random.split(key, len(leaves))
    leaves = [
        x
        if keep is not None and keep(path)
        else jax.random.uniform(k, x.shape, x.dtype, -scale, scale)
        for k, (path, x) in zip(keys, leaves, strict=True)
    ]
    return jax.tree.unflatten(treedef, leaves)
