"""The recurrence with a hand-written backward over the whole sequence (`jax.custom_vjp`).

JAX's autodiff of `lax.scan` accumulates dW_hh inside the reverse loop: every step adds an
[H, B] x [B, G*H] product to a loop-carried [H, G*H] buffer, so the serial chain holds two or
three GEMMs per step plus a read-modify-write of the weight gradient. Here, as in cuDNN and
oneDNN, the reverse loop only carries dh (and dc) and does the one recurrent GEMM a step needs,
dh_{t-1} = dpre_t W_hh^T; it stores dpre_t, and after the loop

    dW_hh = sum_t h_{t-1}^T dpre_t        (one [H, T*B] x [T*B, G*H] GEMM)
    dxp   = dpre                          (dW_ih, db and dx follow as single GEMMs in autodiff
                                           of the input projection outside this function)

With the input projection inside the loop (`recurrence_from_inputs`) and for cells whose
dh_{t-1} is exactly dpre_t W_hh^T (LSTM, Elman), the reverse loop multiplies by [W_hh; W_ih]^T
instead, getting dh_{t-1} and dx_t from one GEMM per step; dW_ih = sum_t x_t^T dpre_t follows
as one GEMM (GRU: dx and dW_ih by autodiff of the hoisted projection, also single GEMMs).

The forward pass is `cell.fused_step` in `lax.scan`, unchanged; under differentiation it also
stores the carries and the gate activations the backward step needs (no recomputation).

Everything is time-major: xp [T, B, G*H] in, hs [T, B, H] out. `valid` [T, B] (bool, or None
for no padding) marks the steps that update the carry; at the others the carry passes through
and the output is zero, exactly like `cells.scan` with `lengths`. `resets` [T, B] (bool, or
None) marks the steps before which the carry restarts from the initial carry: in the backward
loop the gradient reaching such a step's incoming carry goes to the initial carry instead of
the previous step (summed over every restart).

Recurrent regularisers (`cells.scan(..., recurrent_dropout=, zoneout=)`) stay on this path: the
variational mask rides in the recurrent params (`base.RECURRENT_MASK`; the step rules multiply
the gradient through the recurrent product by it, see `step_grads`), and zoneout
carry = where(mask, prev, own) sends each step's carry cotangent to the cell's own carry where
the unit was updated and straight to the previous carry where it was kept; the masks are drawn
again in the reverse loop from the same keys (`cells.regularization.zoneout_weights`), so
nothing but the cell's own carries is stored for them.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from cells import base, regularization
from cells.kernels import step_grads


def _mask_tree(valid_Bx1, new, old):
    return jax.tree.map(lambda n, o: jnp.where(valid_Bx1, n, o), new, old)


def _forward(
    cell, unroll, project, zoneout, iparams, rparams, xin_TxB, carry, init, valid_TxB,
    resets_TxB, rng, save,
):  # fmt: skip
    grads = cell.backward_rule()
    steps = xin_TxB.shape[0]

    def body(carry, inputs):
        x_BxN, t, valid_B, reset_B = inputs
        if reset_B is not None:
            carry = _mask_tree(reset_B[:, None], init, carry)
        xp_BxG = cell.input_projection(iparams, x_BxN) if project else x_BxN
        cell_carry, _, gates = cell.fused_step(rparams, carry, xp_BxG)
        new_carry = cell_carry
        if zoneout is not None:
            weights = cell.zoneout_weights(zoneout, rng, t, carry)
            new_carry = regularization.zoneout(cell_carry, carry, weights)
        if valid_B is not None:
            new_carry = _mask_tree(valid_B[:, None], new_carry, carry)
        if save:  # with zoneout the step's own carry (before it) is what its backward reads
            own = cell_carry if zoneout is not None else None
            return new_carry, (new_carry, grads.saved(gates), own)
        return new_carry, new_carry.h

    step_index = None if zoneout is None else jnp.arange(steps)  # zoneout's mask keys only
    inputs = (xin_TxB, step_index, valid_TxB, resets_TxB)
    carry, stacked = lax.scan(body, carry, inputs, unroll=unroll)
    hs_TxBxH = stacked[0].h if save else stacked
    if valid_TxB is not None:
        hs_TxBxH = jnp.where(valid_TxB[:, :, None], hs_TxBxH, 0.0)
    return hs_TxBxH, carry, stacked


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2, 3))
def _recurrence(
    cell, unroll, project, zoneout, iparams, rparams, xin_TxB, carry, init, valid_TxB,
    resets_TxB, rng,
):  # fmt: skip
    hs_TxBxH, carry, _ = _forward(
        cell, unroll, project, zoneout, iparams, rparams, xin_TxB, carry, init, valid_TxB,
        resets_TxB, rng, False,
    )  # fmt: skip
    return hs_TxBxH, carry


def _recurrence_fwd(
    cell, unroll, project, zoneout, iparams, rparams, xin_TxB, carry0, init, valid_TxB,
    resets_TxB, rng,
):  # fmt: skip
    hs_TxBxH, carry, (carries_TxB, saved_TxB, own_TxB) = _forward(
        cell, unroll, project, zoneout, iparams, rparams, xin_TxB, carry0, init, valid_TxB,
        resets_TxB, rng, True,
    )  # fmt: skip
    residuals = (
        iparams, rparams, xin_TxB, carry0, init, valid_TxB, resets_TxB, rng, carries_TxB,
        saved_TxB, own_TxB,
    )  # fmt: skip
    return (hs_TxBxH, carry), residuals


def _recurrence_bwd(cell, unroll, project, zoneout, residuals, cotangents):
    (
        iparams, rparams, xin_TxB, carry0, init, valid_TxB, resets_TxB, rng, new_TxB, saved_TxB,
        own_TxB,
    ) = residuals  # fmt: skip
    dhs_TxBxH, dcarry = cotangents
    grads = cell.backward_rule()
    # prev_TxB[t] is the carry entering step t: the starting carry, then new_TxB[:-1], and the
    # initial carry where the step restarts an episode.
    prev_TxB = jax.tree.map(
        lambda c0, cs: jnp.concatenate([c0[None], cs], axis=0)[:-1], carry0, new_TxB
    )  # (T = 0: empty, as every other per-step array)
    if resets_TxB is not None:
        prev_TxB = jax.tree.map(
            lambda c0, p: jnp.where(resets_TxB[:, :, None], c0[None], p), init, prev_TxB
        )
    saved_TxB = grads.prepare(rparams, prev_TxB, new_TxB, saved_TxB)
    # With the projection in the loop, and where dh_{t-1} = dpre_t W_hh^T (LSTM, Elman), one
    # per-step GEMM against [W_hh; W_ih]^T gives dh_{t-1} and dx_t together.
    fuse_dx = project and grads.dh_prev_is_dpre_w_hh
    step_rparams = rparams
    if fuse_dx:
        w = rparams["w_hh"]
        w_T = jnp.concatenate([w, iparams["w_ih"]], axis=0).T  # once, outside the loop
        hidden = w.shape[0]
        mask = rparams.get(base.RECURRENT_MASK)
        if mask is not None:  # the step's [dh', dx] product: the dropout mask on dh' only
            ones = jnp.ones((mask.shape[0], xin_TxB.shape[-1]), mask.dtype)
            step_rparams = {**rparams, base.RECURRENT_MASK: jnp.concatenate([mask, ones], -1)}
    else:
        w_T = grads.transposed(rparams)
    steps = xin_TxB.shape[0]
    # The initial carry's gradient from restarts, accumulated only when there are resets.
    zeros0 = None if resets_TxB is None else jax.tree.map(jnp.zeros_like, dcarry)

    def body(carried, inputs):
        dnext, dcarry0_restarts = carried
        s, prev, new, own, dh_BxH, t, valid_B, reset_B = inputs
        if valid_B is not None:
            dh_BxH = jnp.where(valid_B[:, None], dh_BxH, 0.0)
        d = dnext._replace(h=dnext.h + dh_BxH)
        if zoneout is not None:  # the carry left the step as zoneout(own, prev)
            weights = cell.zoneout_weights(zoneout, rng, t, prev)
            d, d_kept = regularization.zoneout_cotangents(d, weights)
            new = own
        dprev, dpre_BxG = grads.backward_step(step_rparams, w_T, s, prev, new, d)
        dx_BxI = None
        if fuse_dx:
            dx_BxI = dprev.h[:, hidden:]
            dprev = dprev._replace(h=dprev.h[:, :hidden])
        if zoneout is not None:
            dprev = type(dprev)(
                *(g if k is None else g + k for g, k in zip(dprev, d_kept, strict=True))
            )
        if valid_B is not None:
            valid_Bx1 = valid_B[:, None]
            dprev = _mask_tree(valid_Bx1, dprev, dnext)
            dpre_BxG = jnp.where(valid_Bx1, dpre_BxG, 0.0)
            if fuse_dx:
                dx_BxI = jnp.where(valid_Bx1, dx_BxI, 0.0)
        if reset_B is not None:  # this step read the initial carry, not the previous step's
            reset_Bx1 = reset_B[:, None]
            dcarry0_restarts = jax.tree.map(
                lambda acc, g: acc + jnp.where(reset_Bx1, g, 0.0), dcarry0_restarts, dprev
            )
            dprev = jax.tree.map(lambda g: jnp.where(reset_Bx1, 0.0, g), dprev)
        return (dprev, dcarry0_restarts), (dpre_BxG, dx_BxI)

    (dcarry0, dinit), (dpre_TxBxG, dxs_TxBxI) = lax.scan(
        body,
        (dcarry, zeros0),
        (
            saved_TxB,
            prev_TxB,
            new_TxB,
            own_TxB,
            dhs_TxBxH,
            None if zoneout is None else jnp.arange(steps),
            valid_TxB,
            resets_TxB,
        ),
        reverse=True,
        unroll=unroll,
    )
    dcarry0 = jax.tree.map(lambda g, c: g.astype(c.dtype), dcarry0, carry0)
    if dinit is None:
        dinit = jax.tree.map(jnp.zeros_like, init)
    dinit = jax.tree.map(lambda g, c: g.astype(c.dtype), dinit, init)
    drparams, dxp_TxBxG = grads.param_grads(rparams, prev_TxB, saved_TxB, dpre_TxBxG)
    if base.RECURRENT_MASK in rparams:  # drawn from a key inside cells.scan: not trained
        drparams[base.RECURRENT_MASK] = jnp.zeros_like(rparams[base.RECURRENT_MASK])
    drparams = jax.tree.map(lambda g, p: g.astype(p.dtype), drparams, rparams)
    if not project:
        dxp = dxp_TxBxG.astype(xin_TxB.dtype)
        return {}, drparams, dxp, dcarry0, dinit, None, None, None
    if fuse_dx:
        w_ih, b = iparams["w_ih"], iparams["b"]
        diparams = {
            "w_ih": step_grads.weight_grad(xin_TxB, dxp_TxBxG).astype(w_ih.dtype),
            "b": jnp.sum(dxp_TxBxG, axis=(0, 1)).astype(b.dtype),
        }
        dxs = dxs_TxBxI.astype(xin_TxB.dtype)
        return diparams, drparams, dxs, dcarry0, dinit, None, None, None
    # The input projection's gradients, all steps at once: dW_ih = sum_t x_t^T dxp_t and
    # dx = dxp W_ih^T are single GEMMs, db a sum (autodiff of the hoisted projection).
    xp_TxBxG, project_vjp = jax.vjp(cell.input_projection, iparams, xin_TxB)
    diparams, dxs_TxBxI = project_vjp(dxp_TxBxG.astype(xp_TxBxG.dtype))
    return diparams, drparams, dxs_TxBxI, dcarry0, dinit, None, None, None


_recurrence.defvjp(_recurrence_fwd, _recurrence_bwd)


def supports(cell) -> bool:
    """True when `cell` has a hand-written sequence backward."""
    return cell.backward_rule() is not None


def recurrence(
    cell,
    params,
    xp_TxBxG,
    carry,
    valid_TxB=None,
    unroll=1,
    resets_TxB=None,
    init=None,
    zoneout=None,
):
    """Runs the recurrence over projected inputs with the hand-written sequence backward.

    Args:
      cell: a cell with a hand-written backward (see `supports`).
      params: the cell's parameters; only the recurrent ones (all but w_ih and b) are read
        here; the input projection is done by the caller.
      xp_TxBxG: projected inputs x_t W_ih + b, time-major [T, B, G*H].
      carry: the carry entering step 0 (a NamedTuple of [B, H]).
      valid_TxB: bool [T, B], False where a step leaves the carry unchanged (padding); None
        when every step is valid.
      unroll: steps per loop iteration, for both the forward and the backward loop.
      resets_TxB: bool [T, B], True where the carry restarts from `init` before the step (and
        the step is valid); None for no restarts.
      init: the carry an episode restarts from (default: `carry`).
      zoneout: None, or ((p_h, p_c), rng): zoneout after each step as `cells.scan` applies it
        (`cells.regularization.zoneout_weights`; rng None for its expectation). A recurrent-
        dropout mask, if any, rides in params under `cells.base.RECURRENT_MASK`.

    Returns:
      (hs [T, B, H] (zero at invalid steps), final carry).
    """
    init = carry if init is None else init
    rates, rng = (None, None) if zoneout is None else zoneout
    rparams = _recurrent(params)
    return _recurrence(
        cell, unroll, False, rates, {}, rparams, xp_TxBxG, carry, init, valid_TxB, resets_TxB, rng
    )


def recurrence_from_inputs(
    cell, params, xs_TxBxI, carry, valid_TxB=None, unroll=1, resets_TxB=None, init=None,
    zoneout=None,
):  # fmt: skip
    """`recurrence` with the input projection x_t W_ih + b done inside the forward loop.

    Same results; the difference is where the input GEMM runs. Hoisted (`recurrence`), it is
    one [T*B, I] x [I, G*H] GEMM whose [T, B, G*H] result goes through memory; here each step
    does a [B, I] x [I, G*H] product whose result stays in cache, which measured faster on
    CPU at B >= 16 (experiments/studies/cpu_speed/PERF_NOTES.md, section 10). The backward is
    the same reverse loop, and dW_ih, db and dx are still single GEMMs over all steps after it.

    Args: as `recurrence`, with raw inputs xs [T, B, I] instead of xp.
    """
    init = carry if init is None else init
    rates, rng = (None, None) if zoneout is None else zoneout
    iparams = {k: params[k] for k in _INPUT_PARAMS}
    rparams = _recurrent(params)
    return _recurrence(
        cell, unroll, True, rates, iparams, rparams, xs_TxBxI, carry, init, valid_TxB, resets_TxB,
        rng,
    )  # fmt: skip


# The parameters of the input projection x W_ih + b; every other parameter is recurrent.
_INPUT_PARAMS = ("w_ih", "b")


def _recurrent(params):
    return {k: v for k, v in params.items() if k not in _INPUT_PARAMS}
