"""train/tasks/mnist1d.py: the bundled arrays, the split, the heads, a tiny run."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import mnist1d as mnist1d_config
from train import errors, validate
from train.tasks import mnist1d


def test_bundled_arrays_and_split():
    splits = mnist1d.load(num_valid=400)
    assert [len(splits[s]["y"]) for s in ("train", "valid", "test")] == [3600, 400, 1000]
    assert splits["train"]["x"].shape == (3600, 40, 1) and splits["test"]["x"].dtype == np.float32
    assert set(np.unique(splits["test"]["y"])) == set(range(10))
    everything = np.concatenate([splits[s]["x"] for s in ("train", "valid", "test")])
    assert abs(float(everything.mean())) < 1e-3 and abs(float(everything.std()) - 1) < 1e-3
    with pytest.raises(errors.ConfigError, match="num_valid=0"):
        mnist1d.load(num_valid=0)


@pytest.mark.parametrize(
    "head",
    [
        "last",
        pytest.param("flatten", marks=pytest.mark.slow),
        pytest.param("mean", marks=pytest.mark.slow),
    ],
)
def test_heads(head):
    config = mnist1d_config.get_config(f"head={head},bidirectional=False,hidden_size=4")
    task = mnist1d.MNIST1DTask(config)
    params = task.init_params(jax.random.key(0))
    x = jnp.asarray(task.splits["test"]["x"][:3])
    logits = task.logits(params, x)
    assert logits.shape == (3, 10)
    ys, _ = task.stack(params["rnn"], x)
    features = {"flatten": ys.reshape(3, -1), "mean": ys.mean(1), "last": ys[:, -1]}[head]
    np.testing.assert_allclose(logits, features @ params["head"]["w"] + params["head"]["b"][None],
                               rtol=1e-5, atol=1e-5)  # fmt: skip


def test_torch_init_draws_every_recurrent_parameter_uniform():
    config = mnist1d_config.get_config("cell=gru_ln,torch_init=True")
    task = mnist1d.MNIST1DTask(config)
    params = task.init_params(jax.random.key(0))
    bound = 6**-0.5
    for path, x in jax.tree_util.tree_leaves_with_path(params["rnn"]):
        name = jax.tree_util.keystr(path)
        if "ln_" in name:  # layer-norm scales and biases keep 1 and 0
            assert np.all(np.asarray(x) == (1.0 if "scale" in name else 0.0)), name
        else:
            assert (
                np.abs(np.asarray(x)).max() <= bound and np.abs(np.asarray(x)).max() > 0.3 * bound
            )
    with pytest.raises(errors.ConfigError, match="init_scale must be >= 0"):
        config.model.init_scale = -1.0
        validate.validate(config)


def test_bad_head_and_a_tiny_run(tmp_path):
    from train import trainer

    with pytest.raises(errors.ConfigError, match="config.model.head='max'"):
        validate.validate(mnist1d_config.get_config("head=max"))
    config = mnist1d_config.get_config("num_steps=30,learning_rate=0.02")
    config.train.eval_every = config.train.checkpoint_every = 30
    results = trainer.train_and_evaluate(config, str(tmp_path / "run"))
    assert results["test"]["accuracy"] > 0.15  # above chance after 30 steps


def _numpy_conv1d(x_BxTxC, w_KxCxO, b, stride, pad):
    """Cross-correlation as PyTorch's Conv1d, float64, written out over output positions."""
    x = np.pad(x_BxTxC.astype(np.float64), ((0, 0), (pad, pad), (0, 0)))
    kernel = w_KxCxO.shape[0]
    steps = (x.shape[1] - kernel) // stride + 1
    out = [np.einsum("bkc,kco->bo", x[:, t * stride : t * stride + kernel], w_KxCxO)
           for t in range(steps)]  # fmt: skip
    return np.stack(out, axis=1) + b


def test_published_baselines_match_their_parameter_counts_and_a_numpy_forward():
    x = mnist1d.load()["test"]["x"][:4]
    counts = {}
    for model in ("cnn", "mlp", "logistic"):
        task = mnist1d.MNIST1DTask(mnist1d_config.get_config(f"model={model}"))
        params = jax.tree.map(np.asarray, task.init_params(jax.random.key(1)))
        counts[model] = sum(p.size for p in jax.tree.leaves(params))
        logits = np.asarray(task.logits(params, jnp.asarray(x)))
        if model == "cnn":
            h = x
            for i, (_, stride, pad) in enumerate(mnist1d.CONV_LAYERS):
                p = params[f"conv{i + 1}"]
                h = np.maximum(_numpy_conv1d(h, p["w"], p["b"], stride, pad), 0.0)
            assert h.shape == (4, 5, 25)  # 40 -> 19 -> 10 -> 5 steps
            features = h.transpose(0, 2, 1).reshape(4, -1)  # channel-major, as torch's view
        elif model == "mlp":
            h = np.maximum(x[..., 0] @ params["dense1"]["w"] + params["dense1"]["b"], 0.0)
            features = h + np.maximum(h @ params["dense2"]["w"] + params["dense2"]["b"], 0.0)
        else:
            features = x[..., 0].astype(np.float64)
        expected = features @ params["head"]["w"] + params["head"]["b"]
        np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-5)
    # The authors' notebook prints ConvBase 5,210, MLPBase 15,210 and LinearBase 410 parameters.
    assert counts == {"cnn": 5210, "mlp": 15210, "logistic": 410}
    with pytest.raises(errors.ConfigError, match="config.model.architecture='transformer'"):
        validate.validate(mnist1d_config.get_config("model=transformer"))


@pytest.mark.slow  # the forward is checked above; the full runs are the MNIST-1D study's records
def test_cnn_baseline_learns_in_a_tiny_run(tmp_path):
    from train import trainer

    config = mnist1d_config.get_config("model=cnn,num_steps=60")
    config.train.eval_every = config.train.checkpoint_every = 60
    results = trainer.train_and_evaluate(config, str(tmp_path / "cnn"))
    assert results["test"]["accuracy"] > 0.3  # chance is 0.1
