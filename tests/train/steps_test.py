"""The pure step functions: carry resets, clipping, TBPTT carry flow, dropout keys."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import train_testing as tt
from train_testing import compile_cache  # noqa: F401 - autouse: cached compiles

from train import state as state_lib
from train import steps
from train.tasks import registry

jax.config.update("jax_numpy_rank_promotion", "raise")


def test_reset_carry_per_example():
    carry = (jnp.ones((3, 2)), jnp.full((3, 4), 2.0))
    batch = {"reset": np.array([True, False, True])}
    out = steps.reset_carry(carry, batch, lambda b: (jnp.zeros((b, 2)), jnp.zeros((b, 4))))
    np.testing.assert_array_equal(out[0], [[0, 0], [1, 1], [0, 0]])
    np.testing.assert_array_equal(out[1][:, 0], [0, 2, 0])
    assert steps.reset_carry(None, batch, None) is None
    assert steps.reset_carry(carry, {}, None) is carry


def _setup(**overrides):
    config = tt.tiny_config(**overrides)
    task = registry.get_task(config)
    return config, task


def _create(task, tx, config):
    return jax.jit(lambda: state_lib.create(task, tx, 0, config.train.batch_size))()


@pytest.mark.parametrize("clip", [0.0, 1e-3])
def test_update_is_clipped_sgd(clip):
    """With SGD lr 1: params change by -g * min(1, clip / ||g||) (no clipping when clip = 0)."""
    config, task = _setup()
    tx = optax.sgd(1.0)
    state = _create(task, tx, config)
    batch = next(task.train_iterator())
    params0 = jax.tree.map(np.asarray, state.params)
    grads = jax.jit(jax.grad(lambda p: task.loss(p, state.carry, batch, None, True)[0]))(
        state.params
    )
    norm = float(optax.tree.norm(grads))
    new_state, sums = jax.jit(
        lambda s, b: steps.train_step(s, b, task=task, tx=tx, grad_clip_norm=clip)
    )(state, batch)
    scale = 1.0 if clip == 0 else min(1.0, clip / norm)
    for p0, p1, g in zip(
        *(jax.tree.leaves(t) for t in (params0, new_state.params, grads)), strict=True
    ):
        np.testing.assert_allclose(np.asarray(p1), p0 - scale * np.asarray(g), atol=1e-6)
    assert float(sums["grad_norm"]) == pytest.approx(norm, rel=1e-5)
    assert int(new_state.step) == 1


def test_carry_flows_across_batches():
    """The state's carry after a step is the model's final carry on that batch."""
    config, task = _setup()
    tx = optax.sgd(0.0)
    state = _create(task, tx, config)
    it = task.train_iterator()
    b1, b2 = next(it), next(it)
    step = jax.jit(lambda s, b: steps.train_step(s, b, task=task, tx=tx, grad_clip_norm=0.0))
    s1, _ = step(state, b1)
    _, (carry1, _) = jax.jit(lambda p: task.loss(p, task.init_carry(8), b1, None, True))(
        state.params
    )
    for a, b in zip(jax.tree.leaves(s1.carry), jax.tree.leaves(carry1), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    s2, sums2 = step(s1, b2)
    want, _ = jax.jit(lambda p: task.loss(p, carry1, b2, None, True))(state.params)  # lr 0
    assert float(sums2["objective"]) == pytest.approx(float(want), rel=1e-6)
    assert np.abs(np.asarray(jax.tree.leaves(s1.carry)[0])).sum() > 0


def test_dropout_key_depends_on_step_only():
    config, task = _setup(**{"model.dropout": 0.5, "model.num_layers": 2})
    tx = optax.sgd(0.0)
    state = _create(task, tx, config)
    batch = next(task.train_iterator())
    step = jax.jit(lambda s, b: steps.train_step(s, b, task=task, tx=tx, grad_clip_norm=0.0))
    a = float(step(state, batch)[1]["objective"])
    b = float(step(state, batch)[1]["objective"])
    c = float(step(state.replace(step=jnp.int32(1)), batch)[1]["objective"])
    assert a == b and a != c


def test_eval_step_has_no_dropout():
    config, task = _setup(**{"model.dropout": 0.5, "model.num_layers": 2})
    params = jax.jit(task.init_params)(jax.random.PRNGKey(0))
    batch = next(iter(task.eval_batches("valid")))
    eval_step = jax.jit(lambda p, c, b: steps.eval_step(p, c, b, task=task))
    _, s1 = eval_step(params, task.init_carry(8), batch)
    _, s2 = eval_step(params, task.init_carry(8), batch)
    assert float(s1["nll"]) == float(s2["nll"])
