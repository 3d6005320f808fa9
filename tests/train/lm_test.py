"""Tests for train/tasks/lm.py: loss vs hand computation, init, carry, a tiny end-to-end run."""

import json
import math
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

import cells
from train import config_base, errors, validate
from train.tasks import lm

jax.config.update("jax_numpy_rank_promotion", "raise")

TEXT = "to be or not to be that is the question\n" * 40


def tiny_config(path, cell="lstm", **model) -> ml_collections.ConfigDict:
    config = config_base.base_config()
    config.task = "lm"
    config.data.path = str(path)
    config.data.level = "char"
    config.data.valid_fraction = 0.2
    config.data.test_fraction = 0.0
    config.model.cell = cell
    config.model.hidden_size = 16
    config.model.num_layers = 2
    config.model.dropout = 0.0
    config.model.embed_size = 8
    config.model.init_scale = 0.1
    config.model.objective = "window_sum"
    for k, v in model.items():
        config.model[k] = v
    config.train.batch_size = 4
    config.train.seq_len = 8
    config.eval.batch_size = 2
    return config


@pytest.fixture(scope="module")
def corpus_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("lm") / "tiny.txt"
    path.write_text(TEXT)
    return path


def test_loss_matches_hand_computation(corpus_path):
    task = lm.LMTask(tiny_config(corpus_path))
    params = task.init_params(jax.random.key(0))
    v = task.vocab_size
    # Zero output weights: logits = b whatever the RNN does, so p(w) = softmax(b) everywhere.
    b = np.linspace(-1.0, 1.0, v).astype(np.float32)
    params["softmax"] = {"w": jnp.zeros_like(params["softmax"]["w"]), "b": jnp.asarray(b)}
    batch = next(task.train_iterator())
    log_p = b - np.log(np.sum(np.exp(b.astype(np.float64))))
    nll = -log_p[batch["targets"]]  # [B, T]
    objective, (_, sums) = task.loss(params, task.init_carry(4), batch, None, False)
    np.testing.assert_allclose(float(sums["nll"]), nll.sum(), rtol=1e-5)
    assert float(sums["tokens"]) == 4 * 8
    # Zaremba's cost: summed over the window, averaged over the batch.
    np.testing.assert_allclose(float(objective), nll.sum() / 4, rtol=1e-5)
    task.objective = "token_mean"
    objective, _ = task.loss(params, task.init_carry(4), batch, None, False)
    np.testing.assert_allclose(float(objective), nll.mean(), rtol=1e-5)


def test_summarize_perplexity_and_bits():
    task = object.__new__(lm.LMTask)
    task.corpus = type("C", (), {"level": "char"})()
    m = task.summarize({"nll": 2.0 * 10, "tokens": 10.0})
    assert m["loss"] == pytest.approx(2.0)
    assert m["perplexity"] == pytest.approx(math.exp(2.0))
    assert m["bits_per_char"] == pytest.approx(2.0 / math.log(2.0))
    task.corpus.level = "word"
    assert "bits_per_char" not in task.summarize({"nll": 3.0, "tokens": 1.0})


def test_masked_positions_do_not_count(corpus_path):
    task = lm.LMTask(tiny_config(corpus_path))
    params = task.init_params(jax.random.key(0))
    batch = next(task.train_iterator())
    full = task.loss(params, task.init_carry(4), batch, None, False)[1][1]
    mask = np.ones((4, 8), np.float32)
    mask[:, 5:] = 0
    part = task.loss(params, task.init_carry(4), dict(batch, mask=mask), None, False)[1][1]
    assert float(part["tokens"]) == 20
    assert float(part["nll"]) < float(full["nll"])


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_zaremba_uniform_init(corpus_path, cell):
    """init_scale > 0: every parameter, biases included, uniform in [-s, s] (Zaremba's code)."""
    task = lm.LMTask(tiny_config(corpus_path, cell=cell))
    params = task.init_params(jax.random.key(1))
    for path, x in jax.tree_util.tree_leaves_with_path(params):
        x = np.asarray(x)
        assert np.all(np.abs(x) <= 0.1), jax.tree_util.keystr(path)
        assert np.std(x) > 0.03  # spread over the interval, not constant


def test_carry_across_windows_equals_one_long_window(corpus_path):
    task = lm.LMTask(tiny_config(corpus_path, cell="gru"))
    params = task.init_params(jax.random.key(2))
    ids = jnp.asarray(task.corpus.splits["train"][:32].reshape(2, 16))
    whole, _ = task.apply(params, task.init_carry(2), ids)
    first, carry = task.apply(params, task.init_carry(2), ids[:, :8])
    second, _ = task.apply(params, carry, ids[:, 8:])
    np.testing.assert_allclose(
        np.concatenate([first, second], axis=1), np.asarray(whole), rtol=1e-5, atol=1e-5
    )


def test_dropout_only_in_training(corpus_path):
    task = lm.LMTask(tiny_config(corpus_path, dropout=0.5))
    params = task.init_params(jax.random.key(0))
    ids = jnp.asarray(task.corpus.splits["train"][:16].reshape(2, 8))
    a, _ = task.apply(params, task.init_carry(2), ids, jax.random.key(0))
    b, _ = task.apply(params, task.init_carry(2), ids, jax.random.key(1))
    c, _ = task.apply(params, task.init_carry(2), ids, None)
    d, _ = task.apply(params, task.init_carry(2), ids, None)
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(c, d)


def test_tied_embeddings(corpus_path):
    task = lm.LMTask(tiny_config(corpus_path, tie_embeddings=True, embed_size=16))
    params = task.init_params(jax.random.key(0))
    assert "w" not in params["softmax"] and "proj" not in params["softmax"]
    # Different widths: a projection [H, D] before the tied softmax (Inan et al. 2017).
    task = lm.LMTask(tiny_config(corpus_path, tie_embeddings=True, embed_size=8))
    params = task.init_params(jax.random.key(0))
    assert params["softmax"]["proj"].shape == (16, 8) and "w" not in params["softmax"]
    h = jax.random.normal(jax.random.key(1), (3, 16))
    expected = h @ params["softmax"]["proj"] @ params["embed"].T + params["softmax"]["b"][None]
    np.testing.assert_allclose(task._logits(params, h), expected, rtol=1e-5, atol=1e-5)


def test_cell_options_reach_the_cell(corpus_path):
    config = tiny_config(corpus_path, cell="rnn", init_scale=0.0)
    config.model.cell_options = {"activation": "relu"}
    config.train.dtype = "bfloat16"
    task = lm.LMTask(config)
    assert task.cell == cells.SimpleRNN(16, activation="relu", compute_dtype="bfloat16")
    config = tiny_config(corpus_path, cell="lstm", init_scale=0.0)
    config.model.cell_options = {"forget_bias": 2.5}
    b = lm.LMTask(config).init_params(jax.random.key(0))["rnn"][0]["b"]
    np.testing.assert_array_equal(np.asarray(b[16:32]), 2.5)


def test_validate_errors(corpus_path):
    with pytest.raises(errors.ConfigError, match="config.model.cell: unknown cell 'transformer'"):
        validate.validate(tiny_config(corpus_path, cell="transformer"))
    with pytest.raises(errors.ConfigError, match="config.model.objective"):
        validate.validate(tiny_config(corpus_path, objective="max"))
    with pytest.raises(errors.ConfigError, match="config.model.init_scale must be >= 0, got nan"):
        validate.validate(tiny_config(corpus_path, init_scale=float("nan")))
    with pytest.raises(errors.ConfigError, match="config.data.path"):
        validate.validate(tiny_config(corpus_path.parent / "missing.txt"))


def test_ptb_small_config_is_zaremba():
    from experiments.configs import ptb_large, ptb_medium, ptb_small

    c = ptb_small.get_config()
    assert (c.model.hidden_size, c.train.seq_len, c.model.init_scale) == (200, 20, 0.1)
    assert (c.train.num_epochs, c.optim.decay_after_epochs, c.optim.decay_factor) == (13, 4, 0.5)
    assert c.optim.grad_clip_norm == 5 and c.model.objective == "window_sum"
    assert c.train.eval_every == 2323  # one epoch
    m, g = ptb_medium.get_config(), ptb_large.get_config()
    assert (m.model.hidden_size, m.model.dropout, m.train.num_epochs) == (650, 0.5, 39)
    assert (g.model.hidden_size, g.model.dropout, g.optim.grad_clip_norm) == (1500, 0.65, 10)


def test_tiny_end_to_end_run(corpus_path, tmp_path):
    from train import trainer

    config = tiny_config(corpus_path, objective="token_mean")
    config.optim.optimizer = "adam"
    config.optim.learning_rate = 2e-2
    config.train.num_steps = 200
    config.train.log_every = 100
    config.train.eval_every = 100
    config.train.checkpoint_every = 100
    workdir = str(tmp_path / "run")
    results = trainer.train_and_evaluate(config, workdir)
    with open(os.path.join(workdir, "results.json")) as f:
        assert json.load(f)["valid"] == results["valid"]
    for split in ("valid", "test"):
        m = results[split]
        assert set(m) >= {"loss", "perplexity", "bits_per_char"}
        assert m["perplexity"] == pytest.approx(math.exp(m["loss"]))
    # Learnt something: well below the uniform distribution's log(V) nats per character.
    v = len(set(TEXT))
    assert results["valid"]["loss"] < 0.5 * math.log(v)


@pytest.mark.parametrize(  # the wiring; every cell's backward: tests/cells/kernels_test.py
    "cell",
    [
        "lstm",
        pytest.param("gru", marks=pytest.mark.slow),
        pytest.param("rnn", marks=pytest.mark.slow),
    ],
)
def test_fused_scan_backward_gives_the_same_gradients(corpus_path, cell):
    """config.train.scan_backward='fused' swaps only how cells.scan differentiates."""
    config = tiny_config(corpus_path, cell=cell, dropout=0.3)
    grads = {}
    for backward in ("autodiff", "fused"):
        config.train.scan_backward = backward
        objective, params = _objective(config)
        grads[backward] = jax.grad(objective)(params)
        # The option reaches cells.scan: only the fused path is a custom_vjp.
        assert ("custom_vjp" in str(jax.make_jaxpr(objective)(params))) == (backward == "fused")
    _assert_trees_close(grads["fused"], grads["autodiff"], 1e-5)


def _objective(config):
    """(objective(params), params): the LM's training loss on one fixed batch, carry and key."""
    task = lm.LMTask(config)
    params = task.init_params(jax.random.key(3))
    batch = next(task.train_iterator())
    carry = jax.tree.map(lambda c: c + 0.1, task.init_carry(4))
    return (lambda p: task.loss(p, carry, batch, jax.random.key(4), True)[0]), params


def _assert_trees_close(got, want, tol):
    """Every leaf within tol of want's, relative to that leaf's largest magnitude."""
    for path, a in jax.tree_util.tree_leaves_with_path(want):
        b = dict(jax.tree_util.tree_leaves_with_path(got))[path]
        scale = float(np.max(np.abs(a))) + 1e-12
        assert float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) / scale < tol, path


@pytest.mark.parametrize("cell", ["lstm", pytest.param("gru", marks=pytest.mark.slow)])
def test_onednn_scan_backend_gives_the_same_loss_and_gradients(corpus_path, cell):
    """config.train.scan_backend='onednn' swaps only the engine of cells.scan (2 layers)."""
    from cells.kernels import onednn_rnn

    if not onednn_rnn.available():
        pytest.skip(f"oneDNN extension: {onednn_rnn.unavailable()}")
    config = tiny_config(corpus_path, cell=cell, dropout=0.3)
    config.model.num_layers = 2
    out = {}
    for backend in ("xla", "onednn"):
        config.train.scan_backend = backend
        objective, params = _objective(config)
        out[backend] = jax.jit(jax.value_and_grad(objective))(params)
        # The option reaches cells.scan: oneDNN's primitive is an FFI call.
        assert ("onednn" in str(jax.make_jaxpr(objective)(params))) == (backend == "onednn")
    assert float(out["onednn"][0]) == pytest.approx(float(out["xla"][0]), rel=1e-6)
    _assert_trees_close(out["onednn"][1], out["xla"][1], 1e-5)


@pytest.mark.parametrize("cell", [pytest.param("mingru", marks=pytest.mark.slow), "slstm"])
def test_residual_block_trains_and_generates_step_by_step(corpus_path, tmp_path, cell):
    from train import trainer

    config = tiny_config(corpus_path, cell=cell, block="residual", block_ffn_factor=1.0)
    config.model.embed_size = 16
    config.model.dropout = 0.1
    task = lm.LMTask(config)
    assert isinstance(task.stack, cells.ResidualStack) and task.stack.ffn_size == 16
    params = task.init_params(jax.random.key(0))
    norm = params["rnn"]["blocks"][0]["norm"]["scale"]
    np.testing.assert_array_equal(np.asarray(norm), 1.0)  # init_scale leaves the norms alone
    _assert_generation_is_the_evaluated_model(corpus_path, "residual", cell=cell, dropout=0.1)
    if cell != "mingru":  # one cell trains end to end (the step above covers the sLSTM's wiring)
        return
    config.optim.learning_rate = 1e-2
    config.train.num_steps = 60
    config.train.eval_every = config.train.checkpoint_every = 60
    results = trainer.train_and_evaluate(config, str(tmp_path / "run"))
    assert results["valid"]["loss"] < math.log(len(set(TEXT)))  # below the uniform guess


def test_hawk_block_trains_and_generates_step_by_step(corpus_path, tmp_path):
    """model.block='hawk' (Griffin's Hawk: residual blocks of cells.HawkBlock) end to end."""
    from train import trainer

    config = tiny_config(corpus_path, cell="rglru", block="hawk", block_ffn_factor=3.0)
    config.model.embed_size = 16
    config.model.init_scale = 0.0  # the block's own initialisation (the RG-LRU's ring)
    task = lm.LMTask(config)
    assert isinstance(task.stack.layers[0], cells.HawkBlock) and task.stack.ffn_size == 48
    _assert_generation_is_the_evaluated_model(corpus_path, "hawk", cell="rglru")
    config.optim.learning_rate = 1e-2
    config.train.num_steps = 60
    config.train.eval_every = config.train.checkpoint_every = 60
    results = trainer.train_and_evaluate(config, str(tmp_path / "run"))
    assert results["valid"]["loss"] < math.log(len(set(TEXT)))  # below the uniform guess


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"cell": "lstm"}, "set config.model.cell=rglru"),
        ({"zoneout": 0.1}, "the Hawk block has no such regulariser"),
    ],
)
def test_hawk_block_refuses_what_it_lacks_in_one_line(corpus_path, overrides, message):
    config = tiny_config(corpus_path, **{"cell": "rglru", "block": "hawk", **overrides})
    with pytest.raises(errors.ConfigError, match=message):
        validate.validate(config)


# Every regulariser of the LM at once (each alone: the slow variant below).
_ALL_REGULARIZERS = dict(
    dropout=0.3, dropout_input=0.2, dropout_output=0.3, locked_dropout=True, embed_dropout=0.2,
    weight_drop=0.4, recurrent_dropout=0.3, zoneout=0.3, ar_alpha=2.0, tar_beta=1.0,
)  # fmt: skip


def _assert_generation_is_the_evaluated_model(corpus_path, block, cell="lstm", **regularizers):
    """task.step (what experiments/tools/sample.py runs) token by token == task.apply in evaluation
    (rng None): the sampled model is the evaluated one."""
    extra = {"block_ffn_factor": 1.0} if block in ("residual", "hawk") else {}
    config = tiny_config(corpus_path, cell=cell, block=block, **extra, **regularizers)
    config.model.embed_size = 16  # the residual stream's width
    config.model.init_scale = 0.3
    task = lm.LMTask(config)
    params = task.init_params(jax.random.key(0))
    ids = jnp.asarray(task.corpus.splits["train"][:12].reshape(2, 6))
    logits, final = task.apply(params, task.init_carry(2), ids)
    carry, stepped = task.init_carry(2), []
    for t in range(6):
        carry, step_logits = task.step(params, carry, ids[:, t])
        stepped.append(step_logits)
    np.testing.assert_allclose(np.stack(stepped, 1), logits, rtol=1e-5, atol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5), carry, final)


@pytest.mark.parametrize("block", ["stack", "residual"])
def test_generation_runs_the_evaluated_model_with_every_regulariser(corpus_path, block):
    # Zoneout's expectation differed by 0.016 in the logits at init before (zoneout 0.3).
    _assert_generation_is_the_evaluated_model(corpus_path, block, **_ALL_REGULARIZERS)


@pytest.mark.slow
@pytest.mark.parametrize("block", ["stack", "residual"])
@pytest.mark.parametrize("name", sorted(_ALL_REGULARIZERS))
def test_generation_runs_the_evaluated_model_with_each_regulariser(corpus_path, block, name):
    _assert_generation_is_the_evaluated_model(corpus_path, block, **{name: _ALL_REGULARIZERS[name]})


def test_residual_block_locked_dropout_keeps_one_mask_per_sequence(corpus_path):
    """block='residual' with locked_dropout: every branch's mask is the same at every step (it
    was accepted and ignored before: fresh masks per step)."""
    config = tiny_config(corpus_path, block="residual", dropout=0.5, locked_dropout=True)
    config.model.embed_size = 16
    task = lm.LMTask(config)
    assert task.stack.locked_dropout
    stack = task.stack
    xs = jnp.ones((3, 7, 16))
    params = stack.init(jax.random.key(0), 16)
    branch = stack._dropout(jax.random.key(1), 0, xs)
    dropped = np.asarray(branch) == 0.0
    np.testing.assert_array_equal(dropped, np.broadcast_to(dropped[:, :1], dropped.shape))
    assert 0 < dropped.mean() < 1
    a, _ = stack(params, xs, rng=jax.random.key(2))
    carry, outs = stack.initial_carry(3), []
    for t in range(7):  # the same key at every step: the sequence's one mask
        carry, y = stack.step(params, carry, xs[:, t], rng=jax.random.key(2))
        outs.append(y)
    np.testing.assert_allclose(np.stack(outs, 1), a, rtol=1e-5, atol=1e-5)


def test_block_fields_are_validated(corpus_path):
    with pytest.raises(errors.ConfigError, match="config.model.block must be one of"):
        validate.validate(tiny_config(corpus_path, block="transformer"))
    with pytest.raises(errors.ConfigError, match="block_norm='layer' applies to residual"):
        validate.validate(tiny_config(corpus_path, block_norm="layer"))
    with pytest.raises(errors.ConfigError, match="block_ffn_factor must be >= 0"):
        validate.validate(tiny_config(corpus_path, block="residual", block_ffn_factor=-1.0))
    config = tiny_config(corpus_path, cell="lstmp", block="residual")
    config.model.cell_options = {"proj_size": 8}  # the residual stream is P = 8 wide
    assert lm.LMTask(config).stack.width == 8


def test_regularisers_act_in_training_only_and_add_ar_tar(corpus_path):
    from cells import regularization as reg

    reg_fields = dict(
        dropout_input=0.0, dropout_output=0.3, locked_dropout=True, embed_dropout=0.2,
        weight_drop=0.4, ar_alpha=2.0, tar_beta=1.0,
    )  # fmt: skip
    config = tiny_config(corpus_path, dropout=0.3, **reg_fields)
    task = lm.LMTask(config)
    assert task.stack.locked_dropout and task.reg["dropout_output"] == 0.3
    params = task.init_params(jax.random.key(0))
    batch = next(task.train_iterator())
    carry = task.init_carry(batch["inputs"].shape[0])
    # Evaluation: deterministic and no penalty.
    e1, _ = task.loss(params, carry, batch, None, False)
    e2, _ = task.loss(params, carry, batch, jax.random.key(5), False)
    assert float(e1) == float(e2)
    # Training: the objective is the nll objective + AR + TAR of this rng's outputs.
    rng = jax.random.key(7)
    objective, (_, sums) = task.loss(params, carry, batch, rng, True)
    logits, _, (raw, dropped) = task.apply(params, carry, batch["inputs"], rng, return_outputs=True)
    penalty = reg.activation_regularization(dropped, 2.0) + reg.temporal_activation_regularization(
        raw, 1.0
    )
    b = batch["inputs"].shape[0]
    np.testing.assert_allclose(float(objective), float(sums["nll"]) / b + float(penalty), rtol=1e-5)
    assert float(penalty) > 0
    # Locked dropout: the top output's mask is the same at every step of a sequence.
    zero_or_scaled = np.asarray(dropped) / np.where(np.asarray(raw) == 0, 1, np.asarray(raw))
    mask = np.isclose(zero_or_scaled, 0.0)
    np.testing.assert_array_equal(mask, np.broadcast_to(mask[:, :1], mask.shape))
    # Recurrent dropout and zoneout reach every layer's scan (a sequential, autodiff one).
    config = tiny_config(corpus_path, recurrent_dropout=0.3, zoneout=0.1)
    task = lm.LMTask(config)
    assert task.recurrent_options == {"recurrent_dropout": 0.3, "zoneout": 0.1}
    params = task.init_params(jax.random.key(0))
    a, _ = task.apply(params, carry, batch["inputs"], jax.random.key(1))
    b, _ = task.apply(params, carry, batch["inputs"], jax.random.key(2))
    assert not np.allclose(a, b)
    with pytest.raises(errors.ConfigError, match="config.model.zoneout must lie in"):
        validate.validate(tiny_config(corpus_path, zoneout=1.5))
    with pytest.raises(errors.ConfigError, match="config.model.weight_drop must be"):
        validate.validate(tiny_config(corpus_path, weight_drop=1.0))
    with pytest.raises(errors.ConfigError, match="config.model.dropout_input must be"):
        validate.validate(tiny_config(corpus_path, dropout_input=-0.5))


def test_ptb_kim_small_config_is_kims_word_small():
    from experiments.configs import ptb_kim_small

    c = ptb_kim_small.get_config()
    validate.validate(c)
    m, o, t = c.model, c.optim, c.train
    assert (m.hidden_size, m.num_layers, m.embed_size, m.init_scale) == (200, 2, 0, 0.05)
    assert (m.dropout, m.dropout_input, m.dropout_output) == (0.5, 0.0, -1.0)
    assert (o.optimizer, o.learning_rate, o.schedule, o.decay_factor) == (
        "sgd",
        1.0,
        "plateau",
        0.5,
    )
    assert (o.plateau_metric, o.plateau_threshold, o.grad_clip_norm) == ("perplexity", 1.0, 5.0)
    assert (t.num_epochs, t.seq_len, t.batch_size, m.objective) == (25, 35, 20, "window_sum")
    assert t.eval_every == 1327  # one validation pass (and plateau check) per epoch


@pytest.mark.parametrize(
    "variant", ["tied", "variational", "weight_drop", "ar_tar", "nt_asgd", "awd"]
)
def test_ptb_kim_small_ablation_variants_validate_and_differ_from_the_baseline(variant):
    from experiments.configs import ptb_kim_small

    base = ptb_kim_small.get_config()
    c = ptb_kim_small.get_config(f"variant={variant},seed=2")
    validate.validate(c)
    assert c.seed == 2 and c.name == f"ptb_kim_small_{variant}_s2"
    changed = {f"{g}.{k}" for g in ("model", "optim") for k in c[g].keys() if c[g][k] != base[g][k]}
    assert changed == set(ptb_kim_small.VARIANTS[variant]) - {
        k
        for k, v in ptb_kim_small.VARIANTS[variant].items()
        if base[k.split(".")[0]][k.split(".")[1]] == v
    }
    with pytest.raises(ValueError, match="valid: baseline, tied"):
        ptb_kim_small.get_config("variant=big")
