"""Tests for train/tasks/lm_gpt.py and the LM task's GPT kind: one block against float64
NumPy from the equations, causality, nanoGPT's initialisation and weight-decay groups,
generation against the full forward, and a tiny end-to-end run."""

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import train_testing as tt
from scipy import special

from experiments.configs import shakespeare_gpt
from train import config_base, errors, models, optim, trainer, validate
from train.tasks import lm_gpt

TEXT = tt.LM_TEXT


def gpt_config(path, **model):
    return tt.tiny_gpt_config(path, **model)


@pytest.fixture(scope="module")
def corpus_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("gpt") / "tiny.txt"
    path.write_text(TEXT)
    return path


def _random_block(rng, d, bias):
    """A block's parameters with every entry random (biases and norm scales too)."""
    shapes = {"qkv": (d, 3 * d), "attn_out": (d, d), "mlp_in": (d, 4 * d), "mlp_out": (4 * d, d)}
    p = {}
    for name, shape in shapes.items():
        p[name] = {"w": rng.normal(0, 0.3, shape)}
        if bias:
            p[name]["b"] = rng.normal(0, 0.3, shape[1])
    for name in ("norm_1", "norm_2"):
        p[name] = {"scale": rng.normal(1, 0.3, d)}
        if bias:
            p[name]["bias"] = rng.normal(0, 0.3, d)
    return p


def _numpy_block(p, x, heads):
    """The block from the module docstring's equations, in float64 NumPy."""

    def norm(q, z):
        mu = z.mean(-1, keepdims=True)
        var = ((z - mu) ** 2).mean(-1, keepdims=True)
        return (z - mu) / np.sqrt(var + 1e-5) * q["scale"] + q.get("bias", 0.0)

    def linear(q, z):
        return z @ q["w"] + q.get("b", 0.0)

    b, t, d = x.shape
    dh = d // heads
    q, k, v = np.split(linear(p["qkv"], norm(p["norm_1"], x)), 3, axis=-1)
    y = np.zeros_like(x)
    for h in range(heads):
        sl = slice(h * dh, (h + 1) * dh)
        for i in range(t):
            scores = np.array([q[:, i, sl] @ k[:, s, sl].T for s in range(i + 1)])  # [S, B, B]
            scores = np.stack([np.diag(m) for m in scores], axis=-1) / math.sqrt(dh)  # [B, S]
            probs = np.exp(scores - scores.max(-1, keepdims=True))
            probs /= probs.sum(-1, keepdims=True)
            y[:, i, sl] = np.einsum("bs,bsd->bd", probs, v[:, : i + 1, sl])
    a = x + linear(p["attn_out"], y)
    hidden = linear(p["mlp_in"], norm(p["norm_2"], a))
    gelu = 0.5 * hidden * (1.0 + special.erf(hidden / math.sqrt(2.0)))
    return a + linear(p["mlp_out"], gelu)


@pytest.mark.parametrize("bias", [False, True])
def test_block_matches_float64_numpy_from_the_equations(x64, bias):
    rng = np.random.default_rng(0)
    d, heads = 8, 2
    p = _random_block(rng, d, bias)
    x = rng.normal(size=(2, 5, d))
    cfg = lm_gpt.GPTConfig(vocab_size=5, block_size=5, num_layers=1, width=d, num_heads=heads,
                           bias=bias)  # fmt: skip
    got = lm_gpt.block(jax.tree.map(jnp.asarray, p), jnp.asarray(x), cfg)
    assert got.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(got), _numpy_block(p, x, heads), rtol=1e-10, atol=1e-12)


def test_a_later_token_never_changes_an_earlier_prediction():
    cfg = lm_gpt.GPTConfig(vocab_size=11, block_size=12, num_layers=2, width=16, num_heads=4)
    params = lm_gpt.init(jax.random.key(0), cfg)
    tokens = jax.random.randint(jax.random.key(1), (2, 12), 0, 11)
    base = lm_gpt.apply(params, tokens, cfg)
    for j in (0, 5, 11):
        changed = tokens.at[:, j].set((tokens[:, j] + 3) % 11)
        out = lm_gpt.apply(params, changed, cfg)
        np.testing.assert_array_equal(np.asarray(out[:, :j]), np.asarray(base[:, :j]))
        assert not np.allclose(out[:, j:], base[:, j:])


def test_nanogpt_initialisation_and_weight_decay_groups():
    layers_, d = 4, 128
    cfg = lm_gpt.GPTConfig(vocab_size=65, block_size=64, num_layers=layers_, width=d, num_heads=4)
    params = lm_gpt.init(jax.random.key(0), cfg)
    # nanoGPT's count at its CPU configuration: 0.80M without the position embedding.
    assert models.count_params(params) - 64 * d == 795_904
    residual = 0.02 / math.sqrt(2 * layers_)
    for p in params["blocks"]:
        assert np.std(p["qkv"]["w"]) == pytest.approx(0.02, rel=0.03)
        assert np.std(p["mlp_out"]["w"]) == pytest.approx(residual, rel=0.03)
        assert np.std(p["attn_out"]["w"]) == pytest.approx(residual, rel=0.05)
        assert set(p["norm_1"]) == {"scale"} and "b" not in p["qkv"]  # bias=False
    assert np.std(params["embed"]) == pytest.approx(0.02, rel=0.05)
    mask = optim.decay_mask(params)
    decayed = {jax.tree_util.keystr(k) for k, v in jax.tree_util.tree_leaves_with_path(mask) if v}
    # Every matrix and both embeddings decay; norm scales do not (nanoGPT's dim >= 2 rule).
    assert "['embed']" in decayed and "['pos']" in decayed
    assert not any("norm" in k for k in decayed)
    assert sum(1 for k in decayed if "blocks" in k) == 4 * layers_


def test_adamw_decays_the_masked_tensors_only():
    o = config_base.base_config().optim
    o.optimizer, o.weight_decay, o.decay_matrices_only, o.learning_rate = "adamw", 0.5, True, 0.1
    tx, _ = optim.make_optimizer(o, 10, None)
    params = {"w": jnp.ones((2, 2)), "b": jnp.ones((2,))}
    zeros = jax.tree.map(jnp.zeros_like, params)
    updates, _ = tx.update(zeros, tx.init(params), params)
    np.testing.assert_allclose(updates["w"], -0.1 * 0.5 * np.ones((2, 2)), rtol=1e-6)
    np.testing.assert_array_equal(updates["b"], np.zeros(2))


def test_generation_context_equals_the_full_forward():
    cfg = lm_gpt.GPTConfig(vocab_size=7, block_size=6, num_layers=1, width=8, num_heads=2)
    params = lm_gpt.init(jax.random.key(3), cfg)
    tokens = jax.random.randint(jax.random.key(4), (2, 10), 0, 7)
    context, logits = lm_gpt.prime(params, tokens[:, :3], cfg)
    np.testing.assert_allclose(logits, lm_gpt.apply(params, tokens[:, :3], cfg)[:, -1], atol=1e-6)
    for t in range(3, 10):  # past the block size the context keeps the last 6 tokens
        context, logits = lm_gpt.step(params, context, tokens[:, t], cfg)
        window = tokens[:, max(0, t + 1 - 6) : t + 1]
        want = lm_gpt.apply(params, window, cfg)[:, -1]
        np.testing.assert_allclose(logits, want, atol=1e-5)


def test_gpt_task_trains_scores_windows_and_samples(corpus_path, tmp_path):
    from experiments.tools import sample

    config = gpt_config(corpus_path)
    results = trainer.train_and_evaluate(config, str(tmp_path / "run"))
    assert results["steps"] == 6 and set(results) >= {"valid", "test"}
    assert "valid_carried" not in results  # a GPT carries nothing
    assert math.isfinite(results["valid"]["loss"])
    task, params = sample.load(str(tmp_path / "run"))
    text = sample.generate(task, params, "to be", 20, 0.8, 0)
    assert len(text) == 20


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"model.zoneout": 0.1}, "config.model.zoneout=0.1 applies to kind='rnn' only"),
        ({"model.block": "residual"}, "config.model.block='residual' applies to kind='rnn'"),
        ({"model.cell": "gru"}, "config.model.cell='gru' applies to kind='rnn' only"),
        ({"train.scan_backward": "fused"}, "a GPT has no scan"),
        ({"train.scan_backend": "onednn"}, "a GPT has no scan"),
        ({"model.tie_embeddings": False}, "tie_embeddings must be True for kind='gpt'"),
        ({"model.num_heads": 3}, "hidden_size=16 must be a multiple of config.model.num_heads=3"),
        ({"train.seq_len": 9}, "seq_len=9 exceeds config.model.block_size=8"),
        ({"data.eval_window": 0}, "a GPT cannot carry state over the split"),
        ({"data.eval_window": 9}, "set it to a window of 1..8"),
        ({"data.train_windows": "shuffled"}, "train_windows must be one of"),
        ({"model.kind": "lstm"}, "config.model.kind must be one of"),
    ],
)
def test_gpt_config_errors_are_one_line(corpus_path, overrides, message):
    config = gpt_config(corpus_path)
    for dotted, value in overrides.items():
        group, key = dotted.split(".")
        config[group][key] = value
    with pytest.raises(errors.ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate.validate(config)


def test_gpt_fields_are_refused_on_a_recurrent_model(corpus_path):
    config = gpt_config(corpus_path)
    config.model.kind = "rnn"
    config.model.tie_embeddings = False
    config.model.block_size = 0
    with pytest.raises(errors.ConfigError, match="num_heads=4 applies to kind='gpt' only"):
        validate.validate(config)


def test_nanogpt_cpu_config_is_their_readme_command():
    config = shakespeare_gpt.get_config()
    m, o, t = config.model, config.optim, config.train
    assert (m.num_layers, m.num_heads, m.hidden_size, m.block_size, m.dropout, m.bias) == (
        4, 4, 128, 64, 0.0, False)  # fmt: skip
    assert (t.batch_size, t.seq_len, t.num_steps) == (12, 64, 2000)
    assert (o.optimizer, o.learning_rate, o.min_learning_rate, o.beta2) == ("adamw", 1e-3, 1e-4,
                                                                            0.99)  # fmt: skip
    assert (o.weight_decay, o.decay_matrices_only, o.warmup_steps, o.grad_clip_norm) == (
        0.1, True, 100, 1.0)  # fmt: skip
    assert config.data.train_windows == "random" and config.data.eval_window == 64
    assert os.path.basename(config.data.path) == "input.txt.gz"
    validate.validate(config)
