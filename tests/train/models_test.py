"""train/models.py: every registered cell builds in every task, with its options and dtype."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cells
from experiments.configs import adding, ett
from train import models, validate
from train.tasks import registry


def _loss_and_grads(config):
    validate.validate(config)
    task = registry.get_task(config)
    params = task.init_params(jax.random.key(0))
    batch = next(iter(task.eval_batches("valid")))
    loss = lambda p: task.loss(p, None, batch, jax.random.key(1), True)[0]
    value, grads = jax.jit(jax.value_and_grad(loss))(params)
    return task, float(value), grads


@pytest.mark.parametrize("name", cells.names())
def test_every_registered_cell_trains_in_the_adding_task(name):
    config = adding.get_config("length=6,hidden_size=5")
    config.model.cell = name
    config.model.cell_options = cells.get(name).example_options(5)
    config.data.num_valid = config.eval.batch_size = 4
    task, value, grads = _loss_and_grads(config)
    assert type(task.cell) is cells.get(name)
    assert np.isfinite(value)
    assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))
    assert any(np.asarray(g).any() for g in jax.tree.leaves(grads["rnn"]))


def test_a_projected_lstm_sizes_the_heads_in_forecasting():
    config = ett.get_config("horizon=4,input_len=8,hidden_size=6")
    config.model.cell = "lstmp"
    config.model.cell_options = {"proj_size": 2}
    config.model.num_layers = 2
    config.eval.batch_size = 8
    task, value, _ = _loss_and_grads(config)
    assert task.encoder.output_size == 2 and np.isfinite(value)


def test_compute_dtype_follows_train_dtype_in_every_task():
    for config in (adding.get_config("length=6"), ett.get_config("horizon=4,input_len=8")):
        config.train.dtype = "bfloat16"
        assert models.make_cell(config).compute_dtype == "bfloat16"
        config.train.dtype = "float32"
        assert models.make_cell(config).compute_dtype is None


def test_auto_dtype_is_float32_on_cpu_and_bfloat16_on_accelerators(monkeypatch):
    config = adding.get_config("length=6")
    config.train.dtype = "auto"
    validate.validate(config)
    assert models.compute_dtype(config) is None  # this CPU
    for platform in ("gpu", "tpu"):
        monkeypatch.setattr(jax, "default_backend", lambda platform=platform: platform)
        assert models.compute_dtype(config) == "bfloat16"


def test_dense_and_count_params():
    p = models.dense_init(jax.random.key(0), 4, 3)
    assert p["w"].shape == (4, 3) and not np.asarray(p["b"]).any()
    assert np.abs(np.asarray(p["w"])).max() <= np.sqrt(3 / 4)
    x = jnp.ones((2, 4))
    np.testing.assert_allclose(models.dense(p, x), x @ p["w"], rtol=1e-6)
    assert models.dense(p, x, "bfloat16").dtype == jnp.float32
    assert models.count_params({"a": jnp.ones((2, 3)), "b": (jnp.ones(4),)}) == 10
