"""train/tasks/forecast_segrnn.py: SegRNN against a per-segment loop of its equations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cells
from experiments.configs import segrnn
from train import validate
from train.errors import ConfigError
from train.tasks import forecast_segrnn, registry

L, H, W, D, C, B = 12, 8, 4, 6, 3, 2


def _loop(params, cell, x_LxC, normalization):
    """One window, channel by channel and output segment by output segment (float64)."""
    x = np.asarray(x_LxC, np.float64)
    if normalization == "revin":
        mean, std = x.mean(0), np.sqrt(x.var(0) + 1e-5)
        z = (x - mean) / std
    else:
        z = x - x[-1]
    out = np.zeros((H, C))
    for c in range(C):
        segs = z[:, c].reshape(L // W, W)
        e = np.maximum(
            segs @ np.asarray(params["embed"]["w"]) + np.asarray(params["embed"]["b"]), 0
        )
        _, final = cells.reference_scan(cell, params["rnn"], jnp.asarray(e)[None])
        for j in range(H // W):
            chan = [params["channel"][c]] if "channel" in params else []
            inp = np.concatenate([params["pos"][j], *chan])[None]
            _, h = cell.reference_step(params["rnn"], final, jnp.asarray(inp))
            y = np.asarray(h)[0] @ np.asarray(params["predict"]["w"]) + params["predict"]["b"]
            out[j * W : (j + 1) * W, c] = y
    if normalization == "revin":
        return out * std + mean
    return out + x[-1]


@pytest.mark.parametrize(
    "cell_name,normalization,channel_embedding",
    [
        ("gru", "last", True),
        ("lstm", "revin", False),
        pytest.param("gru", "revin", True, marks=pytest.mark.slow),
        pytest.param("lstm", "last", True, marks=pytest.mark.slow),
        pytest.param("gru", "last", False, marks=pytest.mark.slow),
    ],
)
def test_parallel_decoding_equals_the_loop_of_its_equations(
    x64, cell_name, normalization, channel_embedding
):
    cell = cells.get(cell_name)(D)
    params = forecast_segrnn.init(jax.random.key(0), cell, C, H, W, channel_embedding)
    assert ("channel" in params) == channel_embedding
    assert params["pos"].shape == (H // W, D // 2 if channel_embedding else D)
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
    x = np.random.default_rng(1).standard_normal((B, L, C)) * 2.0 + 5.0
    got = forecast_segrnn.predict(params, cell, jnp.asarray(x), H, W, normalization, 0.5)
    for b in range(B):  # no rng: no dropout
        np.testing.assert_allclose(got[b], _loop(params, cell, x[b], normalization), rtol=1e-9)


def test_revin_is_equivariant_to_scale_and_shift():
    cell = cells.GRU(D)
    params = forecast_segrnn.init(jax.random.key(0), cell, C, H, W)
    x = jnp.asarray(np.random.default_rng(2).standard_normal((B, L, C)), jnp.float32)
    y = forecast_segrnn.predict(params, cell, x, H, W, "revin", 0.0)
    y2 = forecast_segrnn.predict(params, cell, 3.0 * x + 7.0, H, W, "revin", 0.0)
    np.testing.assert_allclose(y2, 3.0 * y + 7.0, rtol=2e-4, atol=2e-4)


def test_dropout_acts_only_with_an_rng():
    cell = cells.GRU(D)
    params = forecast_segrnn.init(jax.random.key(0), cell, C, H, W)
    x = jnp.ones((B, L, C)) + jnp.arange(L)[None, :, None] * 0.1
    plain = forecast_segrnn.predict(params, cell, x, H, W, "last", 0.5)
    dropped = forecast_segrnn.predict(params, cell, x, H, W, "last", 0.5, jax.random.key(3))
    assert not np.allclose(plain, dropped)


def test_config_builds_and_sizes_are_checked():
    config = segrnn.get_config("horizon=96")
    validate.validate(config)
    task = registry.get_task(config)
    params = jax.eval_shape(task.init_params, jax.random.key(0))
    assert params["pos"].shape == (2, 256) and params["channel"].shape == (7, 256)
    assert params["embed"]["w"].shape == (48, 512)
    assert config.model.loss == "mae" and config.train.best_metric == "mae"
    bad = segrnn.get_config("horizon=100")
    with pytest.raises(ConfigError, match="segment_len=48 must divide"):
        validate.validate(bad)
    bad = segrnn.get_config("normalization=batch")
    with pytest.raises(ConfigError, match="normalization='batch'"):
        validate.validate(bad)


def test_torch_init_draws_every_cell_parameter_uniform_and_nothing_else():
    cell = cells.get("gru")(64)
    bound = 64**-0.5
    own = forecast_segrnn.init(jax.random.key(0), cell, C, 96, 48)
    torch_like = forecast_segrnn.init(jax.random.key(0), cell, C, 96, 48, init_scale=bound)
    for name, x in jax.tree_util.tree_leaves_with_path(torch_like["rnn"]):
        x = np.abs(np.asarray(x))
        assert x.max() <= bound and x.max() > 0.9 * bound, name  # the biases too (own: 0)
    for part in ("embed", "pos", "channel", "predict"):  # the rest as before
        jax.tree.map(np.testing.assert_array_equal, own[part], torch_like[part])
    config = segrnn.get_config("torch_init=True")
    assert config.model.init_scale == 512**-0.5 and config.name == "segrnn_gru_torchinit_M_96"
    config.model.init_scale = -1.0
    with pytest.raises(ConfigError, match="init_scale must be >= 0"):
        validate.validate(config)
