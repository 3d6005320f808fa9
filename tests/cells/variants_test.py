"""The LSTM and GRU families beyond the classic cells: their parameters and initialisation,
chrono init, PyTorch (LSTMP) and flax (MGU) parity, and what conversion refuses.

Their equations are checked against the float64 NumPy reference, fused == reference, the
hand-written backward and finite differences by the parameterised tests over
`cells_testing.CELLS`, which holds every registered variant.
"""

import cells_testing as ct
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cells
from cells import interop

H, I = 6, 4  # noqa: E741


def test_variant_parameters_and_their_initial_values():
    key = jax.random.key(0)
    peep = cells.PeepholeLSTM(H).init(key, I)
    assert peep["w_peep"].shape == (3, H) and not np.asarray(peep["w_peep"]).any()
    cifg = cells.CIFGLSTM(H, forget_bias=2.0).init(key, I)
    assert cifg["w_ih"].shape == (I, 3 * H) and cifg["w_hh"].shape == (H, 3 * H)
    np.testing.assert_array_equal(cifg["b"][:H], 2.0)  # gate order (f, g, o)
    lstmp = cells.LSTMP(H, proj_size=3)
    p = lstmp.init(key, I)
    assert p["w_hh"].shape == (3, 4 * H) and p["w_hr"].shape == (H, 3)
    assert lstmp.output_size == 3 and lstmp.carry_sizes == (3, H)
    carry = lstmp.initial_carry(2)
    assert carry.h.shape == (2, 3) and carry.c.shape == (2, H)
    ln = cells.LayerNormLSTM(H).init(key, I)
    for part, size in (("x", 4 * H), ("h", 4 * H), ("c", H)):
        np.testing.assert_array_equal(ln[f"ln_{part}_scale"], np.ones(size))
        np.testing.assert_array_equal(ln[f"ln_{part}_bias"], np.zeros(size))
    gru_ln = cells.LayerNormGRU(H).init(key, I)
    assert gru_ln["ln_h_scale"].shape == (3 * H,) and "ln_c_scale" not in gru_ln
    mgu = cells.MGU(H).init(key, I)
    assert mgu["w_hh"].shape == (H, 2 * H) and mgu["b_hn"].shape == (H,)
    np.testing.assert_array_equal(mgu["b"][:H], 1.0)
    ind = cells.IndRNN(H).init(key, I)
    assert set(ind) == {"w_ih", "u", "b"}
    assert np.all((np.asarray(ind["u"]) >= 0) & (np.asarray(ind["u"]) <= 1))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: cells.LSTMP(H), "LSTMP: proj_size must be > 0"),
        (lambda: cells.LSTM(H, proj_size=-1), "proj_size must be an int >= 0"),
        (lambda: cells.LSTM(H, peephole=1), "peephole must be True or False"),
        (lambda: cells.LSTM(H, forget_bias=float("nan")), "forget_bias must be a finite"),
        (lambda: cells.LSTM(H, chrono_t_max=1), "chrono_t_max must be 0"),
        (lambda: cells.GRU(H, layer_norm=True, reset_after=False), "needs reset_after=True"),
        (lambda: cells.IndRNN(H, activation="gelu"), "IndRNN: activation"),
        (lambda: cells.IndRNN(H, recurrent_max=-1.0), "recurrent_max must be a number >= 0"),
    ],
)
def test_bad_options_are_one_line_errors(make, message):
    with pytest.raises(ValueError, match=message) as info:
        make()
    assert "\n" not in str(info.value)


def test_chrono_initialisation():
    t_max, h = 100, 512
    lstm = cells.LSTM(h, chrono_t_max=t_max).init(jax.random.key(0), 3)["b"]
    b_i, b_f = np.asarray(lstm[:h]), np.asarray(lstm[h : 2 * h])
    assert b_f.min() >= 0.0 and b_f.max() <= np.log(t_max - 1) + 1e-6
    np.testing.assert_array_equal(b_i, -b_f)
    # log(U[1, T-1]): the median of U is T/2, so the median bias is near log(T/2).
    assert abs(np.median(b_f) - np.log(t_max / 2)) < 0.2 and b_f.std() > 0.3
    cifg = cells.CIFGLSTM(h, chrono_t_max=t_max).init(jax.random.key(0), 3)["b"]
    assert np.asarray(cifg[:h]).min() >= 0.0 and not np.asarray(cifg[h:]).any()
    gru = np.asarray(cells.GRU(h, chrono_t_max=t_max).init(jax.random.key(0), 3)["b"])
    assert not gru[:h].any() and not gru[2 * h :].any()  # only z, the keep gate
    assert gru[h : 2 * h].min() >= 0.0 and gru[h : 2 * h].max() <= np.log(t_max - 1) + 1e-6


def test_indrnn_bound_clips_u():
    assert cells.IndRNN.recurrent_bound(100) == pytest.approx(2 ** (1 / 100))
    cell = cells.IndRNN(H, recurrent_max=0.5)
    params = cell.init(jax.random.key(0), I)
    xs = ct.random_inputs((2, 5, I))
    big = dict(params, u=jnp.full((H,), 3.0))
    at_bound = dict(params, u=jnp.full((H,), 0.5))
    np.testing.assert_array_equal(cells.scan(cell, big, xs)[0], cells.scan(cell, at_bound, xs)[0])


@pytest.mark.torch
@pytest.mark.parametrize("num_layers, bidirectional", [(1, False), (2, True)])
def test_lstmp_matches_pytorch_both_ways(num_layers, bidirectional):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = torch.nn.LSTM(
        I, H, num_layers=num_layers, proj_size=3, bidirectional=bidirectional, batch_first=True
    ).double()
    stack, params = interop.from_torch_module(module)
    assert stack.layers[0].forward.proj_size == 3 if bidirectional else stack.layers[0].proj_size
    xs = np.random.default_rng(1).standard_normal((2, 5, I))
    d = 2 if bidirectional else 1
    h0 = np.random.default_rng(2).standard_normal((num_layers * d, 2, 3))
    c0 = np.random.default_rng(3).standard_normal((num_layers * d, 2, H))
    with torch.no_grad():
        want, (h_n, c_n) = module(
            torch.from_numpy(xs), (torch.from_numpy(h0), torch.from_numpy(c0))
        )
    with jax.enable_x64(True):
        p64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        carries = interop.carry_from_torch(stack, (h0, c0))
        ys, finals = stack(p64, jnp.asarray(xs), carry=carries)
        got_h, got_c = interop.carry_to_torch(stack, finals)
    np.testing.assert_allclose(ys, want.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_h, h_n.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_c, c_n.numpy(), rtol=1e-5, atol=1e-6)
    back = interop.stack_to_torch(stack, params)
    for name, value in module.state_dict().items():
        folded = name.startswith("bias_")  # the two biases are folded into one and split back
        if not folded:
            np.testing.assert_allclose(back[name], value.numpy(), rtol=1e-6, atol=1e-7)
    assert set(back) == set(module.state_dict())


def test_mgu_matches_flax_both_ways():
    import flax.linen as nn

    flax_cell = nn.MGUCell(features=H)
    xs = jnp.asarray(np.random.default_rng(0).standard_normal((2, 5, I)), jnp.float32)
    variables = flax_cell.init(jax.random.key(1), jnp.zeros((2, H)), xs[:, 0])
    # Random biases too (flax starts them at 1 and 0): every entry must land in its place.
    variables = jax.tree.map(
        lambda a: a + 0.3 * jax.random.normal(jax.random.key(a.size), a.shape), variables
    )
    cell = cells.MGU(H)
    params = interop.from_flax(cell, variables)
    want = nn.RNN(flax_cell).apply({"params": {"cell": variables["params"]}}, xs)
    ys, _ = cells.scan(cell, params, xs)
    np.testing.assert_allclose(ys, want, rtol=1e-5, atol=1e-6)
    back = interop.to_flax(cell, params)
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, b), back, variables)


@pytest.mark.parametrize(
    "cell, target, message",
    [
        (cells.PeepholeLSTM(H), "torch", "peephole has no PyTorch equivalent"),
        (cells.CIFGLSTM(H), "flax", "coupled has no flax equivalent"),
        (cells.LayerNormGRU(H), "torch", "layer_norm has no PyTorch equivalent"),
        (cells.LSTMP(H, proj_size=2), "flax", "proj_size has no flax equivalent"),
        (cells.MGU(H), "torch", "to convert to/from PyTorch"),
        (cells.IndRNN(H), "flax", "to convert to/from flax"),
    ],
)
def test_conversion_refuses_what_the_other_library_lacks(cell, target, message):
    params = cell.init(jax.random.key(0), I)
    convert = interop.to_torch if target == "torch" else interop.to_flax
    with pytest.raises(ValueError, match=message):
        convert(cell, params)


@pytest.mark.parametrize("name", ["lstm_ln", "gru_ln"])
def test_layer_norm_of_a_one_feature_input_keeps_only_its_sign(name):
    """LN_x(x W_ih) with I = 1 is sign(x) (w - mean w) / std(w): inputs of one sign and any
    magnitude give the same projection (why the LN cells cannot learn MNIST-1D, a 1-feature
    signal), while two features keep their ratio."""
    cell = cells.get(name)(hidden_size=6)
    one = cell.init(jax.random.key(0), 1)
    a = cell.input_projection(one, jnp.array([[[0.3], [5.0], [-0.3]]]))
    np.testing.assert_allclose(a[0, 0], a[0, 1], atol=2e-3)  # epsilon 1e-5 aside
    assert not np.allclose(a[0, 0], a[0, 2], atol=1e-2)
    two = cell.init(jax.random.key(0), 2)
    b = cell.input_projection(two, jnp.array([[[0.3, 1.0], [5.0, 1.0]]]))
    assert not np.allclose(b[0, 0], b[0, 1], atol=1e-2)
