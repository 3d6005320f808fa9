"""Regularisers of recurrent language models (the AWD-LSTM toolbox, Merity, Keskar & Socher
2018), as plain functions of arrays and parameter dicts, usable with any cell.

    x = embedding_dropout(rng, 0.1, params["embed"])[tokens]    # drop whole word types
    x = locked_dropout(rng, 0.4, x)                             # one mask per sequence
    cell_params = weight_drop(rng, 0.5, cell_params)            # DropConnect on w_hh
    loss += activation_regularization(ys_dropped, 2.0)          # AR
    loss += temporal_activation_regularization(ys, 1.0)         # TAR

The recurrent ones act inside the time loop and are options of `cells.scan`
(`recurrent_dropout=`, `zoneout=`); the zoneout helpers below are shared by its autodiff and
hand-written backward paths.

Every function is the identity (or 0) with rng None or rate 0, so evaluation needs no switch
(zoneout without an rng is its expectation, as Krueger et al. evaluate).
Masks are inverted (kept entries scaled by 1 / (1 - rate)), so expectations are preserved.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np


def _check_rate(name: str, rate) -> None:
    _rate(f"{name}: rate", rate, inclusive=False)


def _keep_mask(rng, rate: float, shape, dtype):
    keep = jax.random.bernoulli(rng, 1.0 - rate, shape)
    return keep.astype(dtype) / jnp.asarray(1.0 - rate, dtype)


def locked_dropout(rng, rate: float, x_BxTxF):
    """Variational ("locked") dropout (Gal & Ghahramani 2016): one mask per sequence and
    feature, the same at every time step: x[b, t, f] * m[b, f] / (1 - rate)."""
    _check_rate("locked_dropout", rate)
    if rng is None or rate == 0.0:
        return x_BxTxF
    b, _, f = x_BxTxF.shape
    return x_BxTxF * _keep_mask(rng, rate, (b, 1, f), x_BxTxF.dtype)


def embedding_dropout(rng, rate: float, embed_VxD):
    """Embedding dropout (Gal & Ghahramani 2016; Merity et al. 2018): whole rows (word types)
    of the embedding matrix are zeroed, the rest scaled by 1 / (1 - rate); every occurrence of
    a dropped word in the batch then reads zeros."""
    _check_rate("embedding_dropout", rate)
    if rng is None or rate == 0.0:
        return embed_VxD
    return embed_VxD * _keep_mask(rng, rate, (embed_VxD.shape[0], 1), embed_VxD.dtype)


def weight_drop(rng, rate: float, params: dict, names: tuple[str, ...] = ("w_hh",)) -> dict:
    """Weight drop / DropConnect (Wan et al. 2013) on the recurrent weights (Merity et al.
    2018): one mask over each named array, drawn once per call (call it once per batch), so
    every time step and sequence of the batch sees the same dropped connections. Works with any
    cell whose params hold those names (dense or head-wise w_hh); the hand-written backward
    still applies, as the masked weights are just other weights."""
    _check_rate("weight_drop", rate)
    if rng is None or rate == 0.0:
        return params
    missing = [n for n in names if n not in params]
    if missing:
        raise ValueError(
            f"weight_drop: params have no {missing} (a cell without a recurrent matrix, such "
            f"as MinGRU, has nothing to drop); keys: {sorted(params)}."
        )
    out = dict(params)
    for k, name in enumerate(names):
        w = params[name]
        out[name] = w * _keep_mask(jax.random.fold_in(rng, k), rate, w.shape, w.dtype)
    return out


def weight_drop_stack(rng, rate: float, stack_params):
    """`weight_drop` on every cell of a stack's params (`cells.Stack`, `ResidualStack`,
    `Bidirectional` alike: each dict holding a 'w_hh'), each with its own key; ValueError when
    no cell has a recurrent matrix."""
    _check_rate("weight_drop", rate)
    if rng is None or rate == 0.0:
        return stack_params
    count = itertools.count()

    def walk(node):
        if isinstance(node, dict):
            if "w_hh" in node:
                return weight_drop(jax.random.fold_in(rng, next(count)), rate, node)
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, tuple | list):
            return type(node)(walk(v) for v in node)
        return node

    dropped = walk(stack_params)
    if next(count) == 0:
        raise ValueError(
            "weight_drop: no cell of the stack has a recurrent matrix w_hh (a cell such as "
            "MinGRU has nothing to drop)."
        )
    return dropped


def activation_regularization(ys_BxTxH, alpha: float, mask_BxT=None):
    """AR (Merity et al. 2018): alpha * mean(h^2) over the (valid) outputs, applied to the
    dropped-out outputs of the last layer in their code."""
    if alpha == 0.0:
        return jnp.zeros((), jnp.float32)
    squares = jnp.square(ys_BxTxH.astype(jnp.float32))
    if mask_BxT is None:
        return alpha * jnp.mean(squares)
    m = mask_BxT[:, :, None].astype(jnp.float32)
    return alpha * jnp.sum(squares * m) / jnp.maximum(jnp.sum(m) * ys_BxTxH.shape[-1], 1.0)


def temporal_activation_regularization(ys_BxTxH, beta: float, mask_BxT=None):
    """TAR (Merity et al. 2018): beta * mean((h_t - h_{t-1})^2) over consecutive (valid) steps,
    on the outputs before dropout."""
    if beta == 0.0 or ys_BxTxH.shape[1] < 2:
        return jnp.zeros((), jnp.float32)
    diffs = jnp.square(jnp.diff(ys_BxTxH.astype(jnp.float32), axis=1))
    if mask_BxT is None:
        return beta * jnp.mean(diffs)
    m = (mask_BxT[:, 1:] & mask_BxT[:, :-1])[:, :, None].astype(jnp.float32)
    return beta * jnp.sum(diffs * m) / jnp.maximum(jnp.sum(m) * ys_BxTxH.shape[-1], 1.0)


def _rate(name: str, value, *, inclusive: bool) -> float:
    """A rate as a float: any real scalar (Python, NumPy, a concrete 0-d JAX array) in [0, 1)
    (or [0, 1] when inclusive); ValueError naming `name` otherwise."""
    interval = "[0, 1]" if inclusive else "[0, 1)"
    if isinstance(value, jax.core.Tracer):
        raise ValueError(
            f"{name} must be a concrete number in {interval} (it selects the code path), got a "
            "traced value; pass it as a static argument."
        )
    array = np.asarray(value) if not isinstance(value, bool | np.bool_) else None
    if array is None or array.shape != () or not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}.")
    rate = float(array)
    if not (0.0 <= rate <= 1.0 if inclusive else 0.0 <= rate < 1.0):
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}.")
    return rate


def recurrent_rates(cell, recurrent_dropout, zoneout) -> tuple[float, tuple[float, float]]:
    """Validates `cells.scan`'s / `Cell.step`'s recurrent_dropout (p in [0, 1)) and zoneout
    (p or (p_h, p_c), in [0, 1]) for `cell`; returns (p, (p_h, p_c)) as floats."""
    p = _rate("recurrent_dropout", recurrent_dropout, inclusive=False)
    pair = zoneout if isinstance(zoneout, tuple | list) else (zoneout, zoneout)
    if len(pair) != 2:
        raise ValueError(f"zoneout must be p or (p_h, p_c) with values in [0, 1], got {zoneout!r}.")
    rates = tuple(_rate("zoneout", r, inclusive=True) for r in pair)
    if p > 0 and getattr(cell, "linear_in_h", False):
        raise ValueError(
            f"recurrent_dropout: {type(cell).__name__} has no recurrent product to drop (its "
            "gates see x only); use dropout on its inputs or outputs."
        )
    return p, rates


# The params key under which the recurrent-dropout mask [B, H_in] (already scaled by
# 1 / (1 - p)) reaches a cell's recurrent product (`cells.base.recurrent_input`).
RECURRENT_MASK = "recurrent_dropout_mask"


def with_recurrent_mask(params: dict, rate: float, rng, batch: int, width: int, dtype) -> dict:
    """params with the variational recurrent-dropout mask [batch, width] (kept units scaled by
    1 / (1 - rate)) under `RECURRENT_MASK`, drawn from rng folded with 0 (one mask
    per sequence, the same at every step); params unchanged with rng None or rate 0."""
    if rng is None or rate == 0.0:
        return params
    keep = jax.random.bernoulli(jax.random.fold_in(rng, 0), 1.0 - rate, (batch, width))
    return {**params, RECURRENT_MASK: keep.astype(dtype) / (1.0 - rate)}


def zoneout_weights(rates: tuple[float, float], rng, t, carry, groups=None) -> tuple:
    """Zoneout (Krueger et al. 2017) at step t: per carry field, what it keeps of its old value.

    Field 0 (h) uses rates[0], the others (the LSTM's c, the sLSTM's c, n, m) rates[1]. Each
    entry is None (rate 0: the new value), the rate p itself (no rng: the expectation
    p * old + (1 - p) * new) or a bool mask of the field's shape, True where the unit keeps its
    old value, drawn from rng folded with 1, t and the field's group (a fresh mask per step,
    sequence and unit; the same draw wherever it is recomputed). `groups[k]` (default k) is the
    mask field k draws: fields of one group keep or update together (`Cell.zoneout_groups`:
    the sLSTM's c, n and m, one stabilised state).
    """
    groups = range(len(carry)) if groups is None else groups
    weights = []
    for k, (field, group) in enumerate(zip(carry, groups, strict=True)):
        p = rates[0] if k == 0 else rates[1]
        if p == 0.0:
            weights.append(None)
        elif rng is None:
            weights.append(p)
        else:
            key = jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(rng, 1), t), group)
            weights.append(jax.random.bernoulli(key, p, field.shape))
    return tuple(weights)


def zoneout(new, old, weights: tuple):
    """The carry after zoneout: per field, where(mask, old, new), p * old + (1 - p) * new, or
    new (see `zoneout_weights`)."""
    out = []
    for n, o, w in zip(new, old, weights, strict=True):
        if w is None:
            out.append(n)
        elif isinstance(w, float):
            out.append(w * o + (1.0 - w) * n)
        else:
            out.append(jnp.where(w, o, n))
    return type(new)(*out)


def zoneout_cotangents(d, weights: tuple):
    """The backward of `zoneout` for the cotangent d of its result: (d_new, d_old), d_old with
    None for the fields that keep nothing of the old value."""
    d_new, d_old = [], []
    for g, w in zip(d, weights, strict=True):
        if w is None:
            d_new.append(g)
            d_old.append(None)
        elif isinstance(w, float):
            d_new.append((1.0 - w) * g)
            d_old.append(w * g)
        else:
            d_new.append(jnp.where(w, 0.0, g))
            d_old.append(jnp.where(w, g, 0.0))
    return type(d)(*d_new), tuple(d_old)
