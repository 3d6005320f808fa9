"""Pure step functions: `train_step(state, batch) -> (state, sums)` and the eval step.

Both are written at module level and bound to a task/optimizer with functools.partial before
jit, so everything they touch is an argument: no hidden state, and the donated train state goes
in and comes out whole. Per-example carry resets happen here (not in tasks):

    carry_b <- init_carry_b   where batch['reset'][b]   (a new stream / epoch starts)
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax

from train.state import TrainState


def reset_carry(carry, batch, init_carry_fn):
    """Replaces the carry of examples with batch['reset'] True by the task's initial carry."""
    if carry is None or "reset" not in batch:
        return carry
    reset_B = batch["reset"]
    fresh = init_carry_fn(reset_B.shape[0])

    def pick(fresh_BxF, old_BxF):
        mask = reset_B.reshape(reset_B.shape + (1,) * (old_BxF.ndim - 1))
        return jnp.where(mask, fresh_BxF.astype(old_BxF.dtype), old_BxF)

    return jax.tree.map(pick, fresh, carry)


def train_step(state: TrainState, batch, *, task, tx, grad_clip_norm: float):
    """One update. Returns (new state, sums) where sums = task sums + objective + grad_norm.

    Gradient clipping (global norm, when grad_clip_norm > 0) is g <- g * min(1, c / ||g||).
    """
    rng = jax.random.fold_in(state.rng, state.step)
    carry = reset_carry(state.carry, batch, task.init_carry)

    def objective_fn(params):
        return task.loss(params, carry, batch, rng, True)

    (objective, (carry, sums)), grads = jax.value_and_grad(objective_fn, has_aux=True)(state.params)
    grad_norm = optax.tree.norm(grads)
    if grad_clip_norm > 0:
        scale = jnp.minimum(1.0, grad_clip_norm / jnp.maximum(grad_norm, 1e-30))
        grads = jax.tree.map(lambda g: (g * scale).astype(g.dtype), grads)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    new_state = state.replace(
        step=state.step + 1,
        params=params,
        opt_state=opt_state,
        carry=jax.lax.stop_gradient(carry),
    )
    sums = dict(sums, objective=objective, grad_norm=grad_norm)
    return new_state, sums


def eval_step(params, carry, batch, *, task):
    """One evaluation batch: (params, carry, batch) -> (carry, sums); no dropout."""
    carry = reset_carry(carry, batch, task.init_carry)
    _, (carry, sums) = task.loss(params, carry, batch, None, False)
    return carry, sums


def make_train_step(task, tx, grad_clip_norm: float, state_shardings=None):
    """`train_step` bound to a task and optimizer, jitted with the state donated."""
    fn = functools.partial(train_step, task=task, tx=tx, grad_clip_norm=grad_clip_norm)
    if state_shardings is None:
        return jax.jit(fn, donate_argnums=0)
    return jax.jit(fn, donate_argnums=0, out_shardings=(state_shardings, None))


def make_eval_step(task):
    """`eval_step` bound to a task, jitted (the carry is donated)."""
    return jax.jit(functools.partial(eval_step, task=task), donate_argnums=1)
