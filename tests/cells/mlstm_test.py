"""mLSTM (cells/mlstm.py): its three forms (recurrent step, parallel, chunkwise) at T = 1024,
values and gradients; large gates; the initialisation and the one-line refusals; zoneout of the
stabilised state; residual blocks; and parity with the `xlstm` package's PyTorch mLSTM cell and
chunkwise backend (NX-AI/xlstm; optional test oracles like PyTorch: skipped where either is
not installed, .ci/run installs both). The float64 NumPy equations, lengths, resets, carries,
the step API and finite differences run for it as for every registered cell (cells_testing)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cells_testing import assert_close, random_carry, random_inputs, random_params

import cells
from cells import interop

MODES = ("sequential", "hoisted", "parallel")


def _random_cell_params(cell, input_size, seed=0, scale=0.3):
    """cell.init's params plus noise, so the gates depend on the input (w_i, w_f start at 0)."""
    params = cell.init(jax.random.key(seed), input_size)
    rng = np.random.default_rng(seed)
    return {
        k: v + jnp.asarray(scale * rng.standard_normal(v.shape), v.dtype) for k, v in params.items()
    }


def test_the_three_forms_agree_at_1024_steps_values_and_gradients():
    cell = cells.MLSTM(8, num_heads=2, chunk_size=64)
    params = _random_cell_params(cell, 4)
    xs = random_inputs((2, 1024, 4))
    lengths = jnp.asarray([1024, 701])
    resets = jnp.zeros((2, 1024), bool).at[0, 300].set(True).at[1, 650].set(True)

    def loss(p, mode):
        ys, carry = cells.scan(cell, p, xs, lengths=lengths, resets=resets, mode=mode)
        return jnp.sum(jnp.sin(ys)) + jnp.sum(carry.n), (ys, carry)

    out = {
        m: jax.jit(jax.value_and_grad(loss, has_aux=True), static_argnums=1)(params, m)
        for m in MODES
    }
    (_, (ys0, carry0)), grads0 = out["sequential"]
    for mode in ("hoisted", "parallel"):
        (_, (ys, carry)), grads = out[mode]
        assert_close(ys, ys0, 1e-4, f"{mode} outputs")
        for k, (a, b) in enumerate(zip(carry, carry0, strict=True)):
            assert_close(a, b, 1e-4, f"{mode} carry[{k}]")
        for k in params:
            assert_close(grads[k], grads0[k], 1e-4, f"{mode} d{k}")


@pytest.mark.parametrize("chunk_size", [1, 3, 16, 100])
def test_every_chunk_size_gives_the_same_function(chunk_size):
    """Chunks of 1 (the recurrence in chunk form) to one chunk, with a padded last chunk."""
    cell = cells.MLSTM(6, num_heads=3, chunk_size=chunk_size)
    params, xs, carry = _random_cell_params(cell, 4), random_inputs((3, 37, 4)), random_carry(cell)
    run = lambda mode: cells.scan(  # noqa: E731
        cell, params, xs, carry=carry, lengths=jnp.asarray([37, 20, 0]), mode=mode
    )
    (ys, final), (ys0, final0) = run("hoisted"), run("sequential")
    assert_close(ys, ys0, 1e-5, "outputs")
    for a, b in zip(final, final0, strict=True):
        assert_close(a, b, 1e-5, "carry")


def test_large_gates_stay_finite_and_match_float64():
    """Input-gate pre-activations of +-60 (exp overflows float32 at 89): the stabiliser keeps
    every form finite and equal to the float64 computation."""
    import reference_numpy

    cell = cells.MLSTM(4, num_heads=2, chunk_size=8)
    params = random_params(cell, 3)
    params["w_ih"] = params["w_ih"].at[:, 16:18].multiply(60.0)  # the i~ columns
    xs = random_inputs((2, 50, 3))
    ys64, _, _ = reference_numpy.run(cell, params, xs)
    for mode in MODES:
        ys, carry = cells.scan(cell, params, xs, mode=mode)
        assert all(bool(jnp.all(jnp.isfinite(a))) for a in (ys, *carry)), mode
        assert_close(ys, ys64, 1e-4, mode)


def test_initialisation_follows_the_xlstm_code():
    cell = cells.MLSTM(16, num_heads=4)
    params = cell.init(jax.random.key(0), 5)
    w_q, w_k, w_v, w_o, w_i, w_f = cell.split_gates(params, "w_ih")
    b_q, b_k, b_v, b_o, b_i, b_f = cell.split_gates(params, "b")
    assert params["w_ih"].shape == (5, 4 * 16 + 2 * 4) and params["b"].shape == (72,)
    assert not np.asarray(w_i).any() and not np.asarray(w_f).any()
    np.testing.assert_allclose(b_f, [3.0, 4.0, 5.0, 6.0], rtol=1e-6)
    assert 0 < float(jnp.std(b_i)) < 0.3
    assert all(float(jnp.std(w)) > 0 for w in (w_q, w_k, w_v, w_o))
    assert not any(np.asarray(b).any() for b in (b_q, b_k, b_v, b_o))
    np.testing.assert_array_equal(params["norm_scale"], np.ones(16))
    assert "norm_scale" not in cells.MLSTM(16, head_norm=False).init(jax.random.key(0), 5)
    assert cell.carry_sizes == (16, 4 * 4 * 4, 16, 4)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"num_heads": 5}, "num_heads=5 must divide hidden_size=6"),
        ({"num_heads": 0}, "num_heads must be a positive int"),
        ({"num_heads": 6}, "head_norm=True needs at least 2 units per head"),
        ({"chunk_size": 0}, "chunk_size must be a positive int"),
        ({"head_norm": 1}, "head_norm must be True or False"),
    ],
)
def test_bad_options_are_refused_in_one_line(options, message):
    with pytest.raises(ValueError, match=message):
        cells.MLSTM(6, **options)
    cells.MLSTM(6, num_heads=6, head_norm=False)  # one unit per head is fine without the norm


def test_recurrent_dropout_is_refused_and_the_recurrent_matrix_absent():
    cell = cells.MLSTM(4)
    params, xs = random_params(cell), random_inputs()
    with pytest.raises(ValueError, match="has no recurrent product to drop"):
        cells.scan(cell, params, xs, recurrent_dropout=0.2, rng=jax.random.key(0))
    with pytest.raises(TypeError, match="has no recurrent matrix"):
        cell.split_gates(params, "w_hh")


def test_zoneout_keeps_or_updates_a_heads_memory_together():
    """With masks, each head's (C, n, m) is either all old or all new; the expectation mixes
    the true states (C e^m), so it equals p C_old e^m_old + (1 - p) C_new e^m_new."""
    cell = cells.MLSTM(6, num_heads=3)
    params, x = random_params(cell), random_inputs()[:, 0]
    old = random_carry(cell)
    new, _ = cell.step(params, old, x)
    kept, _ = cell.step(params, old, x, zoneout=(0.0, 0.5), rng=jax.random.key(3), t=1)
    d = cell.head_dim
    fields = (("c", d * d), ("n", d), ("m", 1))

    def part(carry, field, width, b, head):  # sequence b's head `head` of a carry field
        return np.asarray(getattr(carry, field))[b, head * width : (head + 1) * width]

    for b in range(old.h.shape[0]):
        for head in range(3):
            took_old = all(
                np.array_equal(part(kept, f, w, b, head), part(old, f, w, b, head))
                for f, w in fields
            )
            took_new = all(
                np.allclose(part(kept, f, w, b, head), part(new, f, w, b, head)) for f, w in fields
            )
            assert took_old or took_new, (b, head)
    p = 0.3
    mixed, _ = cell.step(params, old, x, zoneout=(0.0, p))

    def true(carry, field, width):  # the unstabilised state, C e^m or n e^m
        scale = np.repeat(np.exp(np.asarray(carry.m, np.float64)), width, axis=1)
        return np.asarray(getattr(carry, field), np.float64) * scale

    for field, width in (("c", d * d), ("n", d)):
        expected = p * true(old, field, width) + (1 - p) * true(new, field, width)
        np.testing.assert_allclose(true(mixed, field, width), expected, rtol=1e-5, atol=1e-6)


def test_runs_in_residual_blocks_and_trains():
    stack = cells.ResidualStack((cells.MLSTM(8, num_heads=2),) * 2, ffn_factor=1.0)
    params = stack.init(jax.random.key(0), 3)
    xs = random_inputs((2, 12, 3))
    target = jnp.cumsum(xs[..., :1], axis=1)

    def loss(p):
        ys, _ = stack(p, xs)
        return jnp.mean((ys[..., :1] - target) ** 2)

    grads = jax.grad(loss)(params)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    stepped = jax.tree.map(lambda p, g: p - 0.05 * g, params, grads)
    assert float(loss(stepped)) < float(loss(params))


# -- the xlstm package's PyTorch implementation ----------------------------------------------
def _xlstm_cell(width, heads, steps, seed=0):
    torch = pytest.importorskip("torch")
    cell_module = pytest.importorskip("xlstm.blocks.mlstm.cell")
    torch.manual_seed(seed)
    config = cell_module.mLSTMCellConfig(context_length=steps, embedding_dim=width, num_heads=heads)
    module = cell_module.mLSTMCell(config)
    with torch.no_grad():  # input-dependent gates (the package starts them at zero) and a scale
        for name in ("igate", "fgate"):
            getattr(module, name).weight.normal_(0.0, 0.2)
        module.outnorm.weight.normal_(0.0, 0.3)
    return torch, module


@pytest.mark.parametrize("heads", [1, 2])
def test_matches_the_xlstm_cell_parallel_and_recurrent_forms(heads):
    width, steps = 8, 48
    torch, module = _xlstm_cell(width, heads, steps)
    cell, params = interop.mlstm_from_xlstm(module.state_dict(), heads, chunk_size=16)
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((2, steps, width)).astype(np.float32) for _ in range(3))
    xs = jnp.asarray(np.concatenate([q, k, v], axis=-1))

    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    parallel = module(tq, tk, tv)
    parallel.pow(2).sum().backward()
    with torch.no_grad():  # the package's step, one step at a time from its zero state
        state, stepped = None, []
        for t in range(steps):
            h, state = module.step(tq[:, t : t + 1], tk[:, t : t + 1], tv[:, t : t + 1], state)
            stepped.append(h)
        stepped = torch.cat(stepped, dim=1).numpy()
    expected = parallel.detach().numpy()

    for mode in MODES:
        ys, carry = cells.scan(cell, params, xs, mode=mode)
        assert_close(ys, expected, 1e-5, f"{mode} vs the package's parallel form")
        assert_close(ys, stepped, 1e-5, f"{mode} vs the package's step")
        c, n, m = (a.numpy() for a in state)
        assert_close(carry.c, c.reshape(2, -1), 1e-5, f"{mode} C")
        assert_close(carry.n, n.reshape(2, -1), 1e-5, f"{mode} n")
        assert_close(carry.m, m.reshape(2, -1), 1e-5, f"{mode} m")
    grad = jax.grad(lambda x: jnp.sum(cells.scan(cell, params, x)[0] ** 2))(xs)
    expected_grad = np.concatenate([a.grad.numpy() for a in (tq, tk, tv)], axis=-1)
    assert_close(grad, expected_grad, 1e-5, "input gradients")


def test_matches_the_xlstm_chunkwise_backend_at_1024_steps():
    torch = pytest.importorskip("torch")
    backends = pytest.importorskip("xlstm.blocks.mlstm.backends")
    width, heads, steps = 8, 2, 1024
    d = width // heads
    rng = np.random.default_rng(1)
    q, k, v = (rng.standard_normal((1, heads, steps, d)).astype(np.float32) for _ in range(3))
    i_pre, f_pre = (rng.standard_normal((1, heads, steps)).astype(np.float32) for _ in range(2))
    f_pre += 3.0
    expected = backends.chunkwise_simple(
        *(torch.from_numpy(a) for a in (q, k, v, i_pre, f_pre)), chunk_size=64
    ).numpy()  # [1, NH, T, D]
    # A cell without the norm whose projection hands it q, k, v, i~, f~ as they are.
    cell = cells.MLSTM(width, num_heads=heads, head_norm=False)
    x = np.concatenate(
        [a.transpose(0, 2, 1, 3).reshape(1, steps, width) for a in (q, k, v)]
        + [np.zeros((1, steps, width)), i_pre.transpose(0, 2, 1), f_pre.transpose(0, 2, 1)],
        axis=-1,
    )
    params = {
        "w_ih": jnp.eye(x.shape[-1]),
        "b": jnp.zeros(x.shape[-1]).at[3 * width : 4 * width].set(30.0),  # o = 1
    }
    for mode in MODES:
        ys, _ = cells.scan(cell, params, jnp.asarray(x, jnp.float32), mode=mode)
        got = np.asarray(ys).reshape(1, steps, heads, d).transpose(0, 2, 1, 3)
        assert_close(got, expected, 1e-4, mode)


def test_the_conversion_refuses_a_state_dict_that_does_not_fit():
    state = {
        "igate.weight": np.zeros((2, 24)),
        "igate.bias": np.zeros(2),
        "fgate.weight": np.zeros((2, 24)),
        "fgate.bias": np.zeros(2),
        "outnorm.weight": np.zeros(8),
    }
    interop.mlstm_from_xlstm(state, 2)
    with pytest.raises(ValueError, match="igate.weight must have shape"):
        interop.mlstm_from_xlstm(state, 4)
    with pytest.raises(ValueError, match="must hold an xlstm mLSTMCell's 'fgate.bias'"):
        interop.mlstm_from_xlstm({k: v for k, v in state.items() if k != "fgate.bias"}, 2)
