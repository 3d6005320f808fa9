"""train/tasks/forecast_linear.py: the LTSF-Linear baselines against NumPy from their code."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import ltsf
from train import validate
from train.tasks import forecast_linear, registry


def _numpy_moving_average(x_BxLxC, kernel=25):
    """Their series_decomp: repeat the end rows, then AvgPool1d(kernel, stride 1)."""
    pad = (kernel - 1) // 2
    padded = np.concatenate(
        [np.repeat(x_BxLxC[:, :1], pad, 1), x_BxLxC, np.repeat(x_BxLxC[:, -1:], pad, 1)], 1
    )
    return np.stack(
        [padded[:, t : t + kernel].mean(axis=1) for t in range(x_BxLxC.shape[1])], axis=1
    )


@pytest.fixture
def batch():
    return np.random.default_rng(0).standard_normal((3, 40, 2)).astype(np.float64)


def test_moving_average_matches_their_padding_and_pooling(x64, batch):
    got = forecast_linear.moving_average(jnp.asarray(batch))
    np.testing.assert_allclose(got, _numpy_moving_average(batch), rtol=1e-12, atol=1e-12)


def test_each_model_against_its_equations(x64, batch):
    L, H = batch.shape[1], 5
    for kind in forecast_linear.KINDS:
        params = forecast_linear.init(jax.random.key(1), kind, L, H)
        params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        got = np.asarray(forecast_linear.predict(params, kind, jnp.asarray(batch), H))
        last = batch[:, -1:, :]

        def lin(p, x):  # y[b, :, c] = W^T x[b, :, c] + b, every channel alike
            w, b = np.asarray(p["w"]), np.asarray(p["b"])
            return np.einsum("blc,lh->bhc", x, w) + b[None, :, None]

        if kind == "repeat":
            want = np.repeat(last, H, axis=1)
            assert params == {}
        elif kind == "linear":
            want = lin(params["linear"], batch)
        elif kind == "nlinear":
            want = lin(params["linear"], batch - last) + last
        else:
            trend = _numpy_moving_average(batch)
            want = lin(params["seasonal"], batch - trend) + lin(params["trend"], trend)
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, err_msg=kind)


def test_init_is_pytorchs_linear_default():
    params = forecast_linear.init(jax.random.key(0), "nlinear", 336, 96)["linear"]
    bound = 1 / np.sqrt(336)
    for a in (params["w"], params["b"]):
        assert np.abs(np.asarray(a)).max() <= bound
        assert np.abs(np.asarray(a)).max() > 0.9 * bound  # uniform over the whole range


def test_mean_init_is_dlinears_first_release(batch):
    """weights='mean': every weight 1/L, biases still PyTorch's, so with the biases at zero a
    fresh DLinear forecasts a constant series as itself (season 0, trend the constant)."""
    L, H = batch.shape[1], 4
    params = forecast_linear.init(jax.random.key(3), "dlinear", L, H, weights="mean")
    torch_init = forecast_linear.init(jax.random.key(3), "dlinear", L, H)
    for part in ("seasonal", "trend"):
        np.testing.assert_array_equal(params[part]["w"], np.full((L, H), 1 / L, np.float32))
        np.testing.assert_array_equal(params[part]["b"], torch_init[part]["b"])
    for part in ("seasonal", "trend"):
        params[part]["b"] = jnp.zeros_like(params[part]["b"])
    x = jnp.full((2, L, 3), 1.7, jnp.float32)
    np.testing.assert_allclose(forecast_linear.predict(params, "dlinear", x, H), 1.7, rtol=1e-5)
    with pytest.raises(ValueError, match="weights='zero'; valid: torch, mean"):
        forecast_linear.init(jax.random.key(3), "dlinear", L, H, weights="zero")


def test_nlinear_and_repeat_follow_a_level_shift(batch):
    """Adding a constant to every input row adds it to the forecast (the level-shift fix)."""
    x = jnp.asarray(batch, jnp.float32)
    for kind in ("nlinear", "repeat"):
        params = forecast_linear.init(jax.random.key(2), kind, x.shape[1], 4)
        a = forecast_linear.predict(params, kind, x, 4)
        b = forecast_linear.predict(params, kind, x + 3.0, 4)
        np.testing.assert_allclose(b - a, 3.0, rtol=1e-5)


def test_ltsf_config_builds_each_model_and_refuses_unknown_ones():
    for model in ltsf.MODELS:
        config = ltsf.get_config(f"model={model},horizon=96")
        validate.validate(config)
        task = registry.get_task(config)
        assert task.architecture == model
        spe = task.steps_per_epoch()
        assert config.train.eval_every == spe == (8640 - 336 - 96 + 1) // 32
    with pytest.raises(ValueError, match="valid: linear, nlinear, dlinear, repeat"):
        ltsf.get_config("model=patchtst")
    config = ltsf.get_config()
    config.model.architecture = "transformer"
    with pytest.raises(Exception, match="config.model.architecture='transformer'"):
        validate.validate(config)


def test_ltsf_config_mean_init_names_its_runs_and_refuses_unknown_inits():
    config = ltsf.get_config("dataset=exchange,model=dlinear,horizon=720,init=mean")
    validate.validate(config)
    assert config.name == "ltsf_exchange_dlinear_meaninit_M_720"
    assert registry.get_task(config).linear_init == "mean"
    assert ltsf.get_config("model=dlinear").name == "ltsf_dlinear_M_96"
    with pytest.raises(ValueError, match="init='zero'; valid: torch, mean"):
        ltsf.get_config("init=zero")
    config.model.linear_init = "xavier"
    with pytest.raises(Exception, match="config.model.linear_init='xavier'; valid: torch, mean"):
        validate.validate(config)
