"""The sequence driver: runs any cell over [B, T, I] inputs.

`scan` is the fused path. The input projection x_t W_ih + b for all T steps is one GEMM
outside the loop; inside `lax.scan` each step does one recurrent GEMM (all gates at once) and
elementwise math. `reference_scan` is the specification it is tested against: a Python loop
over `cell.reference_step`, gate by gate, with no hoisting.

Semantics shared by both:
  * lengths [B]: steps t >= lengths[b] leave sequence b's carry unchanged and output zeros, so
    the returned carry is the carry after each sequence's last valid step. Padded inputs are
    zeroed first, so NaN or inf there changes neither values nor gradients.
  * reverse=True runs right to left over each sequence's valid part [0, lengths[b]) only;
    padding stays at the end and outputs are written back at their original positions.
  * carry in/out: feeding the returned carry into the next call continues the sequence exactly.
  * initial_carry: the state every episode starts from (zeros by default); `carry` defaults
    to it. Fields of shape [H] (or [1, H]) are broadcast over the batch (a learned state).
  * resets [B, T] (bool): True at step t replaces the carry by `initial_carry` before step t:
    a new episode starts (RL rollouts, packed documents). Reversed, every episode runs right to
    left on its own: the carry is reset before the last step of each episode. Resets at padded
    steps are ignored.
"""

from __future__ import annotations

import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from cells import base, kernels, regularization

_BACKWARDS = ("autodiff", "fused")
_MODES = ("auto", "sequential", "hoisted", "parallel")
_PROJECTIONS = ("auto", "hoisted", "in_loop")
_BACKENDS = ("xla", "auto", "onednn", "pallas", "cudnn")
# The fused path projects inputs inside the loop from this batch size up (PERF_NOTES section 10).
IN_LOOP_MIN_BATCH = 8


def _check_inputs(cell: base.Cell, params, xs, lengths, resets=None) -> None:
    """Trace-time validation with messages that name the argument and what is valid."""
    if not isinstance(cell, base.Cell):
        raise ValueError(f"cell must be a cells.Cell (e.g. cells.LSTM(64)), got {cell!r}.")
    cell.check_params(params)
    if getattr(xs, "ndim", None) != 3:
        raise ValueError(
            f"xs must have rank 3 [batch, time, features], got shape {getattr(xs, 'shape', xs)}."
        )
    batch, steps, features = xs.shape
    input_size = cell.input_size(params)
    if features != input_size:
        raise ValueError(
            f"xs has {features} features but the params were made for input_size={input_size}."
        )
    if resets is not None:
        if tuple(jnp.shape(resets)) != (batch, steps):
            raise ValueError(f"resets must have shape [{batch}, {steps}], got {jnp.shape(resets)}.")
        if jnp.result_type(resets) != jnp.bool_:
            raise ValueError(f"resets must be booleans, got dtype {jnp.result_type(resets)}.")
    if lengths is not None:
        if tuple(jnp.shape(lengths)) != (batch,):
            raise ValueError(f"lengths must have shape [{batch}], got {jnp.shape(lengths)}.")
        if not jnp.issubdtype(jnp.result_type(lengths), jnp.integer):
            raise ValueError(f"lengths must be integers, got dtype {jnp.result_type(lengths)}.")
        if not isinstance(lengths, jax.core.Tracer):
            values = np.asarray(lengths)
            if values.min(initial=0) < 0 or values.max(initial=0) > steps:
                raise ValueError(
                    f"lengths must lie in [0, {steps}] (the time dimension of xs), "
                    f"got min {values.min()} and max {values.max()}."
                )


def _zero_padding(xs, lengths):
    """xs with the steps t >= lengths[b] set to zero, before any arithmetic: whatever padding
    holds (NaN, inf) never reaches the outputs or, through 0 * NaN in a backward pass, the
    gradients."""
    if lengths is None:
        return xs
    valid_BxTx1 = (jnp.arange(xs.shape[1])[None, :] < lengths[:, None])[:, :, None]
    return jnp.where(valid_BxTx1, xs, jnp.zeros((), xs.dtype))


def _check_unroll(unroll) -> None:
    if isinstance(unroll, bool | np.bool_):
        return
    if not isinstance(unroll, int | np.integer) or unroll < 1:
        raise ValueError(f"unroll must be a positive int or a bool, got {unroll!r}.")


def _check_flags(**flags) -> None:
    """Options that pick a Python code path must be real booleans (a typo is not 'True')."""
    for name, value in flags.items():
        if not isinstance(value, bool | np.bool_):
            raise ValueError(f"{name} must be True or False, got {value!r}.")


def _start_carries(cell: base.Cell, params, xs, initial_carry, carry):
    """(the initial carry, the carry to start from): zeros by default (`carry` defaults to the
    initial carry), [H] or [1, H] fields broadcast to [B, H], every field cast to one dtype,
    `base.carry_dtype` of the params, the inputs and both carries (float32, or float64 when any
    of them is), so a carry never narrows the computation nor changes dtype inside the loop.

    Raises ValueError when a given carry does not fit (checked after broadcasting).
    """
    init = _broadcast_carry(cell, xs, initial_carry, "initial_carry")
    start = init if carry is None else _broadcast_carry(cell, xs, carry, "carry")
    dtype = base.carry_dtype(params, xs, init, start)

    def cast(c):
        if c is None:
            return cell.initial_carry(xs.shape[0], dtype)
        return cell.carry_type(*(a.astype(dtype) for a in c))

    return cast(init), cast(start)


def _broadcast_carry(cell: base.Cell, xs, carry, what: str):
    """A given carry with its [H] or [1, H] fields broadcast to [B, H] (None stays None)."""
    if carry is None:
        return None
    batch = xs.shape[0]
    if not isinstance(carry, cell.carry_type):
        cell.check_carry(carry, batch, what)  # raises, naming the expected type

    def broadcast(a, width):
        a = jnp.asarray(a)
        if a.shape in ((width,), (1, width)):
            return jnp.broadcast_to(a.reshape(1, width), (batch, width))
        return a

    carry = cell.carry_type(*map(broadcast, carry, cell.carry_sizes))
    cell.check_carry(carry, batch, what)
    return carry


def _resets_in_scan_order(resets, lengths, steps: int, reverse: bool):
    """Bool [B, T]: reset the carry before scan step t (the step that reads position t, or
    reverse_index's position when reversed); False at padded steps.

    Forward, that is resets[b, t]. Reversed, an episode [s, e) runs from e - 1 down to s, so the
    carry is reset before position p when p + 1 starts an episode: resets[b, p + 1].
    """
    t_1xT = jnp.arange(steps)[None, :]
    lengths_Bx1 = steps if lengths is None else lengths[:, None]
    resets = jnp.asarray(resets)
    if not reverse:
        return resets & (t_1xT < lengths_Bx1)
    shifted = jnp.concatenate([resets[:, 1:], jnp.zeros_like(resets[:, :1])], axis=1)
    shifted = shifted & (t_1xT + 1 < lengths_Bx1)
    idx_BxT = jnp.broadcast_to(reverse_index(lengths, steps), resets.shape)
    return jnp.take_along_axis(shifted, idx_BxT, axis=1)


_WARNED_NO_FUSED_BACKWARD: set = set()  # (cell class, options) pairs warned about


def _has_fused_backward(cell: base.Cell) -> bool:
    """Whether `cell` has a hand-written backward; warns once per class when it has none."""
    if kernels.supports(cell):
        return True
    # Why not: options its class's backward does not cover, or a subclass's overrides.
    reasons = []
    if getattr(cell, "layer_norm", False):
        reasons.append("layer_norm=True")
    if getattr(cell, "num_heads", 1) > 1:
        reasons.append(f"num_heads={cell.num_heads}")
    cls = type(cell)
    if cls.fused_backward is not None:
        overrides = base.forward_overrides(cls, base.defining_class(cls, "fused_backward"))
        if overrides:
            reasons.append(f"overrides of {', '.join(overrides)}")
    key = (cls, tuple(reasons))
    if key not in _WARNED_NO_FUSED_BACKWARD:
        _WARNED_NO_FUSED_BACKWARD.add(key)
        why = f" with {', '.join(reasons)}" if reasons else ""
        warnings.warn(
            f"{cls.__name__}{why} has no hand-written backward "
            "(cells.Cell.fused_backward); backward='fused' uses autodiff for it (same gradients).",
            stacklevel=3,
        )
    return False


def _auto_projection(batch) -> str:
    """projection='auto': on CPU by the batch size (measured,
    experiments/studies/cpu_speed/PERF_NOTES.md section 10; a symbolic batch under jax.export
    counts as large); elsewhere 'hoisted' (unmeasured)."""
    if jax.default_backend() != "cpu":
        return "hoisted"
    small = isinstance(batch, int) and batch < IN_LOOP_MIN_BATCH
    return "hoisted" if small else "in_loop"


def _check_regularizers(cell, recurrent_dropout, zoneout, mode) -> tuple[float, tuple]:
    """Validates recurrent_dropout and zoneout; returns (p, (p_h, p_c)) as floats."""
    rate, zone_rates = regularization.recurrent_rates(cell, recurrent_dropout, zoneout)
    if (rate > 0 or max(zone_rates) > 0) and mode in ("hoisted", "parallel"):
        raise ValueError(
            f"recurrent_dropout and zoneout run step by step; mode={mode!r} cannot apply them "
            "(use mode='auto' or 'sequential')."
        )
    return rate, zone_rates


def reverse_index(lengths, steps: int):
    """idx[b, t]: the time step read at position t when sequence b is reversed.

    Reverses [0, lengths[b]) and leaves the padding in place; an involution (idx[idx] = id).
    """
    t = jnp.arange(steps)[None, :]
    if lengths is None:
        return jnp.broadcast_to(steps - 1 - t, (1, steps))
    lengths = jnp.asarray(lengths)[:, None]
    return jnp.where(t < lengths, lengths - 1 - t, t)


def _take_time(a_BxTxF, idx_BxT):
    return jnp.take_along_axis(a_BxTxF, idx_BxT[:, :, None], axis=1)


def scan(
    cell: base.Cell,
    params: base.Params,
    xs,
    *,
    carry=None,
    initial_carry=None,
    lengths=None,
    resets=None,
    reverse: bool = False,
    return_trace: bool = False,
    unroll: int | bool = 1,
    remat: bool = False,
    backward: str = "autodiff",
    projection: str = "auto",
    mode: str = "auto",
    recurrent_dropout: float = 0.0,
    zoneout: float | tuple[float, float] = 0.0,
    rng=None,
    backend: str = "xla",
) -> tuple[Any, ...]:
    """Runs `cell` over a batch of sequences: the fused path.

    Args:
      cell: any `cells.Cell` (`cells.LSTM`, `cells.GRU`, `cells.SimpleRNN`, a registered or
        user-defined cell).
      params: the cell's parameters (`cell.init(key, input_size)`).
      xs: inputs [B, T, I].
      carry: the carry to start from; default `initial_carry`. Fields of shape [H] or [1, H]
        are broadcast over the batch.
      initial_carry: the carry a new episode starts from (see `resets`); default zeros
        (float32, float64 for float64 inputs); [H] or [1, H] fields are broadcast.
      lengths: optional int array [B] with values in [0, T]; see the module docstring.
        Concrete values outside are refused; traced ones (under jit) are clipped to [0, T].
      resets: optional bool array [B, T]: True at step t restarts from `initial_carry` before
        step t; see the module docstring.
      reverse: run right to left over each sequence's valid part.
      return_trace: also return the per-step gate activations (LSTM i, f, g, o, c; GRU r, z,
        n; RNN a, the pre-activation), each [B, T, H], zero at padded steps.
      unroll: passed to `lax.scan` (steps per loop iteration; True unrolls fully).
      remat: recompute each step's internals in the backward pass instead of storing them
        (memory O(T*B*H) for the carries only), for very long sequences. A step-by-step
        option: mode='auto' then runs 'sequential'; 'hoisted' and 'parallel' refuse it.
      backward: 'autodiff' (JAX differentiates the `lax.scan`) or 'fused' (the hand-written
        whole-sequence backward of `cells.kernels`: one GEMM per step in the reverse chain,
        weight gradients as single GEMMs after it; same values up to float rounding).
        return_trace=True and remat=True always use 'autodiff'; so does a cell that declares no
        `fused_backward` (with a one-time warning per cell class). Forward-mode autodiff (jvp,
        jacfwd, hessians) needs 'autodiff'.
      projection: where the fused path runs the input GEMM x_t W_ih + b: 'hoisted' (one
        [T*B, I] x [I, G*H] GEMM before the loop), 'in_loop' (one [B, I] x [I, G*H] per step,
        its result kept in cache; the backward still does dW_ih and dx as single GEMMs), or
        'auto' (on CPU: in_loop when B >= IN_LOOP_MIN_BATCH, as measured faster there, and
        for a symbolic batch size under `jax.export`; on GPU/TPU: hoisted, the one large GEMM
        cuDNN also does first -- not yet measured here). Same values.
        Only backward='fused' reads it.
      mode: how the time loop runs. 'sequential': `cell.fused_step` in a `lax.scan`, every
        cell. For cells whose recurrence is linear in h (`cells.linear_scan.
        LinearRecurrentCell`: MinGRU, MinLSTM, RGLRU), all gates of all steps are computed at once
        and then only h_t = a_t h_{t-1} + b_t remains: 'hoisted' solves it with a `lax.scan`
        of one multiply-add per element (least work), 'parallel' with
        `jax.lax.associative_scan` (O(log T) depth); both differentiate by autodiff
        (`backward`, `projection`, `unroll` unused). 'auto': for those cells 'hoisted' on CPU
        (measured faster there) and 'parallel' on GPU/TPU, unless remat=True (sequential) or
        the time axis is symbolic under `jax.export` ('hoisted': 'parallel' needs static T);
        'sequential' for every other cell. The mLSTM (`cells.MLSTM`, gates from x, a state
        linear in its matrix memory) has its own two: 'hoisted' is its chunkwise form and
        'parallel' the whole sequence as one chunk ([T, T] per head); 'auto' is 'hoisted'
        wherever T is static, else 'sequential'. Same values up to float rounding.

      recurrent_dropout: p in [0, 1): variational dropout of the hidden state fed to the
        recurrent product (Gal & Ghahramani 2016): one mask per sequence and unit, the same at
        every step, h_{t-1} * m / (1 - p) in h W_hh only (the GRU's and MGU's interpolation and
        the carry itself keep the undropped h). Needs `rng`; without one (evaluation) it is off.
      zoneout: p or (p_h, p_c) in [0, 1] (Krueger et al. 2017): each unit of h (p_h) and of the
        other carry fields (p_c: the LSTM's c, the sLSTM's c, n, m) keeps its previous value
        with probability p at each step, a fresh mask per step and sequence; without `rng`
        (evaluation) the expectation p * old + (1 - p) * new. p = 0 is the plain cell, p = 1
        keeps the carry.
      rng: PRNG key for recurrent_dropout and zoneout. Either option runs the sequential mode
        (the hoisted and parallel modes cannot apply them); backward='fused' covers both (the
        mask enters dh_{t-1} and dW_hh; zoneout splits each step's carry cotangent between
        the cell and the kept carry, its masks redrawn from the same keys).
      backend: 'xla' (default: the `lax.scan` paths above) or 'pallas': the whole-sequence
        Pallas kernels of `cells.kernels.pallas_rnn` (recurrent weights resident on chip,
        forward and a hand-written backward) for the plain LSTM and reset-after GRU, with
        `carry` and `lengths`: Mosaic TPU kernels on TPU, Triton kernels on GPU (H a power of
        two >= 16), interpreted on CPU (tests). Not yet measured on a device, so not a default
        anywhere. 'cudnn': the plain LSTM
        through cuDNN (`jax.experimental.rnn`, `cells.kernels.cudnn_lstm`), float32, on GPU
        only (a one-line ValueError elsewhere), with `carry` and `lengths`.
        'onednn': the plain LSTM and both GRUs through oneDNN's RNN primitive on CPU
        (`cells.kernels.onednn_rnn`: one library call per sequence, forward and backward),
        float32, with `carry` and `reverse`; no lengths, resets, trace, remat or regularisers
        (a one-line ValueError, which also says when the optional extension is not built).
        'auto': 'onednn' wherever it applies and was measured faster (by cell, width and
        batch: `cells.kernels.onednn_rnn.AUTO_FASTER`), else the XLA paths (silently). `backward`,
        `projection` and `unroll` choose among the XLA paths; oneDNN has its own backward.

    Returns:
      (ys [B, T, H], final carry), or (ys, carry, trace) with return_trace=True.
    """
    lengths = None if lengths is None else jnp.asarray(lengths)
    _check_inputs(cell, params, xs, lengths, resets)
    _check_flags(reverse=reverse, return_trace=return_trace, remat=remat)
    _check_unroll(unroll)
    if isinstance(lengths, jax.core.Tracer):  # not checkable under jit: keep them in [0, T]
        lengths = jnp.clip(lengths, 0, xs.shape[1])
    init, carry = _start_carries(cell, params, xs, initial_carry, carry)
    batch, steps, _ = xs.shape
    xs = _zero_padding(xs, lengths)
    resets_BxT = None if resets is None else _resets_in_scan_order(resets, lengths, steps, reverse)

    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}.")
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}.")
    if backward not in _BACKWARDS:
        raise ValueError(f"backward must be one of {_BACKWARDS}, got {backward!r}.")
    if projection not in _PROJECTIONS:
        raise ValueError(f"projection must be one of {_PROJECTIONS}, got {projection!r}.")
    recurrent_dropout, (zone_h, zone_c) = _check_regularizers(
        cell, recurrent_dropout, zoneout, mode
    )
    zoned = zone_h > 0 or zone_c > 0
    if backend in ("auto", "onednn"):
        from cells.kernels import onednn_rnn

        why = onednn_rnn.why_not(
            cell, params, xs, carry, lengths=lengths is not None, resets=resets is not None,
            return_trace=return_trace, remat=remat, recurrent_dropout=recurrent_dropout > 0,
            zoneout=zoned, **{f"mode={mode!r}": mode not in ("auto", "sequential")},
        )  # fmt: skip
        if backend == "auto" and not why and not onednn_rnn.faster_than_xla(cell, batch):
            why = "measured slower than XLA at this size"
        if not why:
            if 0 in (batch, steps):  # nothing to run
                return jnp.zeros((batch, steps, cell.output_size), carry[0].dtype), carry
            return onednn_rnn.scan(cell, params, xs, carry, reverse)
        if backend == "onednn":
            raise ValueError(f"backend='onednn' cannot run this call: {why}; use backend='xla'.")
        backend = "xla"  # 'auto': everything else runs the XLA paths below
    if backend in ("pallas", "cudnn"):
        unsupported = {
            "reverse": reverse, "resets": resets is not None, "return_trace": return_trace,
            "remat": remat, "recurrent_dropout": recurrent_dropout > 0, "zoneout": zoned,
        }  # fmt: skip
        asked = [name for name, value in unsupported.items() if value]
        if asked:
            raise ValueError(
                f"backend={backend!r} does not implement {', '.join(asked)}; use backend='xla'."
            )
        if 0 in (batch, steps):  # nothing to run (the kernels would read out of bounds)
            ys = jnp.zeros((batch, steps, cell.output_size), carry[0].dtype)
            return ys, carry
        if backend == "cudnn":
            from cells.kernels import cudnn_lstm

            return cudnn_lstm.scan(cell, params, xs, carry, lengths)
        from cells.kernels import pallas_rnn  # imports Pallas (about 1 s) only when asked

        return pallas_rnn.scan(cell, params, xs, carry, lengths)
    if recurrent_dropout > 0 or zoned:
        mode = "sequential"  # both act inside the step (checked: not asked of hoisted/parallel)
    params = regularization.with_recurrent_mask(
        params, recurrent_dropout, rng, batch, cell.recurrent_input_size, carry[0].dtype
    )
    linear = getattr(cell, "linear_in_h", False)
    if mode in ("hoisted", "parallel") and not linear:
        raise ValueError(
            f"mode={mode!r} needs a cell whose recurrence is linear in h (a cells.linear_scan."
            f"LinearRecurrentCell: MinGRU, MinLSTM, RGLRU); {type(cell).__name__} is not; use "
            "mode='sequential' or 'auto'."
        )
    static_steps = isinstance(steps, int)  # False for a symbolic time axis (jax.export)
    if linear and mode == "auto" and not remat:
        mode = cell.auto_mode(jax.default_backend() == "cpu", static_steps)
    if remat and mode in ("hoisted", "parallel"):
        raise ValueError(
            f"remat=True recomputes each step of mode='sequential'; mode={mode!r} has no steps "
            "to recompute (its residuals are the [B, T, H] coefficients, the size of the carries "
            "remat keeps): drop remat, or use mode='sequential' or 'auto'."
        )
    if linear and mode in cell.static_time_modes and not static_steps:
        raise ValueError(
            f"mode={mode!r} needs a static number of steps for {type(cell).__name__}; the time "
            f"axis is symbolic ({steps}, jax.export): use mode='auto' (it picks a mode that "
            "runs)."
        )
    if linear and mode in ("hoisted", "parallel"):
        return _scan_whole(
            cell, params, xs, carry, init, lengths, resets_BxT, reverse, return_trace, mode
        )
    if backward == "fused" and not (return_trace or remat) and _has_fused_backward(cell):
        if projection == "auto":
            projection = _auto_projection(batch)
        zoneout = ((zone_h, zone_c), rng) if zoned else None
        return _scan_fused(
            cell, params, xs, carry, init, lengths, resets_BxT, reverse, unroll, projection, zoneout
        )

    xp_BxTxG = cell.input_projection(params, xs)
    if reverse:
        idx_BxT = reverse_index(lengths, steps)
        xp_BxTxG = _take_time(xp_BxTxG, jnp.broadcast_to(idx_BxT, (batch, steps)))
    xp_TxBxG = jnp.swapaxes(xp_BxTxG, 0, 1)
    resets_TxB = None if resets_BxT is None else jnp.swapaxes(resets_BxT, 0, 1)

    def body(carry, inputs):
        xp_BxG, t, reset_B = inputs
        if reset_B is not None:
            carry = jax.tree.map(lambda c0, c: jnp.where(reset_B[:, None], c0, c), init, carry)
        new_carry, h, gates = cell.fused_step(params, carry, xp_BxG)
        if zoned:
            weights = cell.zoneout_weights((zone_h, zone_c), rng, t, carry)
            new_carry = cell.zone_carry(new_carry, carry, weights)
            h = new_carry[0]  # every cell's output is its carry's h
        if lengths is not None:
            valid_Bx1 = (t < lengths)[:, None]
            new_carry = jax.tree.map(lambda n, o: jnp.where(valid_Bx1, n, o), new_carry, carry)
            h = jnp.where(valid_Bx1, h, 0.0)
            if return_trace:
                gates = {k: jnp.where(valid_Bx1, v, 0.0) for k, v in gates.items()}
        return new_carry, (h, gates if return_trace else None)

    if remat:
        body = jax.checkpoint(body)
    carry, (hs_TxBxH, trace) = lax.scan(
        body, carry, (xp_TxBxG, jnp.arange(steps), resets_TxB), unroll=unroll
    )
    ys = jnp.swapaxes(hs_TxBxH, 0, 1)
    if return_trace:
        trace = {k: jnp.swapaxes(v, 0, 1) for k, v in trace.items()}
    if reverse:
        idx_BxT = jnp.broadcast_to(reverse_index(lengths, steps), (batch, steps))
        ys = _take_time(ys, idx_BxT)
        if return_trace:
            trace = {k: _take_time(v, idx_BxT) for k, v in trace.items()}
    if return_trace:
        return ys, carry, trace
    return ys, carry


def _scan_fused(
    cell, params, xs_BxTxI, carry, init, lengths, resets_BxT, reverse, unroll, projection, zoneout
):
    """`scan` with the hand-written backward of `cells.kernels`, time-major inside (zoneout:
    None or ((p_h, p_c), rng); a recurrent-dropout mask rides in params).

    The inputs are put time-major (and reversed) before the projection, where they are I wide
    rather than G*H wide; the projection is then one [T*B, I] x [I, G*H] GEMM ('hoisted') or
    one [B, I] x [I, G*H] GEMM per step inside the loop ('in_loop').
    """
    batch, steps, _ = xs_BxTxI.shape
    if reverse:
        idx_BxT = jnp.broadcast_to(reverse_index(lengths, steps), (batch, steps))
        xs_BxTxI = _take_time(xs_BxTxI, idx_BxT)
    xs_TxBxI = jnp.swapaxes(xs_BxTxI, 0, 1)
    valid_TxB = None if lengths is None else jnp.arange(steps)[:, None] < lengths[None, :]
    resets_TxB = None if resets_BxT is None else jnp.swapaxes(resets_BxT, 0, 1)
    try:
        if projection == "in_loop":
            hs_TxBxH, carry = kernels.recurrence_from_inputs(
                cell, params, xs_TxBxI, carry, valid_TxB, unroll, resets_TxB, init, zoneout
            )
        else:
            xp_TxBxG = cell.input_projection(params, xs_TxBxI)
            hs_TxBxH, carry = kernels.recurrence(
                cell, params, xp_TxBxG, carry, valid_TxB, unroll, resets_TxB, init, zoneout
            )
    except TypeError as e:
        if "forward-mode" not in str(e):
            raise
        raise TypeError(
            "cells.scan(..., backward='fused') has a hand-written reverse-mode backward only; "
            "for forward-mode autodiff (jax.jvp, jax.jacfwd, hessians) use backward='autodiff'."
        ) from None
    ys_BxTxH = jnp.swapaxes(hs_TxBxH, 0, 1)
    if reverse:
        ys_BxTxH = _take_time(ys_BxTxH, idx_BxT)
    return ys_BxTxH, carry


def reference_scan(
    cell: base.Cell,
    params,
    xs,
    *,
    carry=None,
    initial_carry=None,
    lengths=None,
    resets=None,
    reverse=False,
    recurrent_dropout=0.0,
    zoneout=0.0,
    rng=None,
):
    """The specification: a Python loop over `cell.reference_step`, one sequence step at a time.

    Same arguments and results as `scan` (without trace, unroll, remat and the choices of
    path). The regularisers act where `scan` applies them, with the same draws: the recurrent
    dropout mask multiplies h in the reference step's recurrent products only, and zoneout
    follows each step of a sequence, that step's mask being the one `scan` draws at the step
    of its loop that reads the position (reversed: position p of sequence b is read at step
    lengths[b] - 1 - p). Slow; for tests.
    """
    lengths = None if lengths is None else jnp.asarray(lengths)
    _check_inputs(cell, params, xs, lengths, resets)
    _check_flags(reverse=reverse)
    carry0, carry = _start_carries(cell, params, xs, initial_carry, carry)
    batch, steps, _ = xs.shape
    drop, zone_rates = regularization.recurrent_rates(cell, recurrent_dropout, zoneout)
    params = regularization.with_recurrent_mask(
        params, drop, rng, batch, cell.recurrent_input_size, carry[0].dtype
    )
    zoned = max(zone_rates) > 0 and steps > 0
    # The scan step that reads position t of sequence b (reverse_index is an involution).
    loop_step_BxT = jnp.broadcast_to(
        reverse_index(lengths, steps) if reverse else jnp.arange(steps)[None, :], (batch, steps)
    )
    if zoned:
        zoneout_weights_at = _zoneout_weights_at(cell, zone_rates, rng, steps, carry)
    xs = _zero_padding(xs, lengths)
    lengths_B = jnp.full((batch,), steps) if lengths is None else jnp.asarray(lengths)
    outputs = [None] * steps
    # Reversed, walk the time axis backwards: padded steps (t >= L) leave the carry alone, so
    # each sequence's first update is at its own last valid step L-1.
    order = range(steps - 1, -1, -1) if reverse else range(steps)
    for t in order:
        valid_Bx1 = (t < lengths_B)[:, None]
        if resets is not None:
            # A new episode starts at t (forward), or the one starting at t + 1 has just been
            # read right to left (reverse): restart from the initial carry.
            if not reverse:
                restart_Bx1 = jnp.asarray(resets)[:, t, None] & valid_Bx1
            elif t + 1 < steps:
                restart_Bx1 = jnp.asarray(resets)[:, t + 1, None] & (t + 1 < lengths_B)[:, None]
            else:
                restart_Bx1 = jnp.zeros((batch, 1), bool)
            carry = jax.tree.map(lambda c0, c, r=restart_Bx1: jnp.where(r, c0, c), carry0, carry)
        new_carry, h = cell.reference_step(params, carry, xs[:, t])
        if zoned:
            weights = zoneout_weights_at(loop_step_BxT[:, t])
            new_carry = cell.zone_carry(new_carry, carry, weights)
            h = new_carry[0]
        carry = jax.tree.map(lambda n, o, v=valid_Bx1: jnp.where(v, n, o), new_carry, carry)
        outputs[t] = jnp.where(valid_Bx1, h, 0.0)
    if steps == 0:
        return jnp.zeros((batch, 0, cell.output_size), carry[0].dtype), carry
    return jnp.stack(outputs, axis=1), carry


def _zoneout_weights_at(cell, rates, rng, steps: int, carry):
    """weights_at(loop_step_B): zoneout weights for a batch whose sequences are at different
    steps of `scan`'s loop, row b of each mask as `scan` draws it at loop step loop_step_B[b]
    (every step's masks drawn once)."""
    if rng is None:  # the expectation: no masks, the same at every step
        weights = cell.zoneout_weights(rates, rng, 0, carry)
        return lambda loop_step_B: weights
    per_step = [cell.zoneout_weights(rates, rng, t, carry) for t in range(steps)]
    stacked = [
        None if per_step[0][k] is None else jnp.stack([w[k] for w in per_step])
        for k in range(len(carry))
    ]  # [T, B, width] per field

    def weights_at(loop_step_B):
        rows = jnp.arange(loop_step_B.shape[0])
        return tuple(None if m is None else m[loop_step_B, rows] for m in stacked)

    return weights_at


def _scan_whole(cell, params, xs_BxTxI, carry, init, lengths, resets_BxT, reverse, trace, mode):
    """The hoisted and parallel modes of a cell that runs a whole sequence at once
    (`linear_in_h`: `linear_scan.LinearRecurrentCell`, `cells.MLSTM`): the inputs' projection
    for all steps, then `cell.whole_sequence` (arguments already checked, padding zeroed,
    resets in scan order). Returns (ys, carry) or (ys, carry, trace)."""
    batch, steps, _ = xs_BxTxI.shape
    if reverse:
        idx_BxT = jnp.broadcast_to(reverse_index(lengths, steps), (batch, steps))
        xs_BxTxI = _take_time(xs_BxTxI, idx_BxT)
    xp_BxTxG = cell.input_projection(params, xs_BxTxI).astype(carry[0].dtype)
    valid_BxT = None if lengths is None else jnp.arange(steps)[None, :] < lengths[:, None]
    hs, carry, gates = cell.whole_sequence(
        params, xp_BxTxG, carry, init, valid_BxT, resets_BxT, mode
    )
    outputs = {"h": hs, **gates} if trace else {"h": hs}
    if valid_BxT is not None:
        outputs = {k: jnp.where(valid_BxT[:, :, None], v, 0.0) for k, v in outputs.items()}
    if reverse:
        outputs = {k: _take_time(v, idx_BxT) for k, v in outputs.items()}
    ys = outputs.pop("h")
    return (ys, carry, outputs) if trace else (ys, carry)
