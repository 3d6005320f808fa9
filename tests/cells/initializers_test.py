"""init_scheme: every cell takes every scheme, and each scheme draws its library's distributions.

flax: the initializers flax's cells declare equal ours on the same key, and flax's own cells'
init (converted by `cells.interop.from_flax`) has the statistics of ours. torch: nn.LSTM /
nn.GRU / nn.RNN's init (converted by `cells.interop.from_torch`) against ours by bound, mean
and std. keras (not installed): the documented formulas. Then how explicit options combine
with a scheme. Sizes are small enough for a fast test and large enough for stable statistics
(the seeds are fixed, so every comparison is deterministic).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cells
from cells import initializers, interop

# One size for every test: each new shape costs an XLA compile per random op, most of the time.
I, H = 32, 64  # noqa: E741  (input features, hidden units: 4H = 256 bias entries per LSTM)
KEY = jax.random.key(0)


def _init(cell, input_size=I, key=KEY):
    return {k: np.asarray(v, np.float64) for k, v in cell.init(key, input_size).items()}


def _blocks(w, g):
    return np.split(w, g, axis=-1)


def _is_orthogonal(block):
    """Columns (tall or square) or rows (wide) orthonormal."""
    small = min(block.shape)
    gram = block.T @ block if block.shape[0] >= block.shape[1] else block @ block.T
    return np.allclose(gram, np.eye(small), atol=1e-4)


def _uniform_like(w, bound, terms=1):
    """w looks like a sum of `terms` U(-bound, bound) draws: inside the bound, mean 0, std."""
    std = bound * np.sqrt(terms / 3.0)
    assert np.abs(w).max() <= terms * bound + 1e-7
    assert np.abs(w).max() > 0.8 * terms * bound if terms == 1 else True
    assert abs(w.mean()) < 5 * std / np.sqrt(w.size)
    # the std of n uniform draws has a relative standard error of about 0.45 / sqrt(n): 5 of them
    np.testing.assert_allclose(w.std(), std, rtol=2.5 / np.sqrt(w.size) + 0.01)


# -- every cell, every scheme ----------------------------------------------------------------


@pytest.mark.parametrize("scheme", [s for s in initializers.SCHEMES if s != "cells"])
@pytest.mark.parametrize("name", cells.names())
def test_every_cell_takes_every_scheme(name, scheme):
    cls = cells.get(name)
    options = cls.example_options(8)
    if name == "irnn" and scheme == "torch":
        with pytest.raises(ValueError, match="IRNN: init_scheme='torch'") as info:
            cls(8, init_scheme=scheme, **options)
        assert "\n" not in str(info.value)
        return
    cell = cls(8, init_scheme=scheme, **options)
    params = jax.eval_shape(lambda: cell.init(KEY, 4))  # traced, not drawn: the values are
    expected = jax.eval_shape(lambda: cls(8, **options).init(KEY, 4))  # the tests below
    assert params == expected


def test_the_default_scheme():
    assert cells.Cell.__dataclass_fields__["init_scheme"].default == initializers.DEFAULT_SCHEME
    default, named = _init(cells.LSTM(H)), _init(cells.LSTM(H, init_scheme="cells"))
    for k in default:
        np.testing.assert_array_equal(default[k], named[k])


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: cells.LSTM(H, init_scheme="jax"), "init_scheme must be one of 'cells', 'flax'"),
        (lambda: cells.GRU(H, kernel_init="glorot"), "kernel_init must be an initializer"),
        (lambda: cells.MGU(H, forget_bias="1"), "forget_bias must be a finite number or None"),
        (
            lambda: cells.LSTM(H, chrono_t_max=10, forget_bias=1.0),
            "forget_bias=1.0 with chrono_t_max=10",
        ),
    ],
)
def test_bad_scheme_options_are_one_line_errors(make, message):
    with pytest.raises(ValueError, match=message) as info:
        make()
    assert "\n" not in str(info.value)


# -- flax --------------------------------------------------------------------------------------

FLAX_PAIRS = [  # our cell, flax.linen's cell (OptimizedLSTMCell: LSTMCell's initializers)
    ("lstm", "LSTMCell"),
    ("gru", "GRUCell"),
    ("mgu", "MGUCell"),
    ("rnn", "SimpleCell"),
]


@pytest.mark.parametrize("name, flax_name", FLAX_PAIRS)
def test_flax_cells_declare_our_flax_initializers(name, flax_name):
    """Same key, same shape: flax's kernel / recurrent initializers draw exactly ours."""
    nn = pytest.importorskip("flax.linen")
    flax_cell = getattr(nn, flax_name)(features=H)
    ours_kernel = initializers.kernel_init("flax", 1.0)
    ours_recurrent, per_block = initializers.recurrent_init("flax", 1.0)
    assert per_block  # one Dense per gate
    same = [flax_cell] + ([nn.OptimizedLSTMCell(features=H)] if flax_name == "LSTMCell" else [])
    for flax_cell, key in zip(same * 2, jax.random.split(KEY, 2 * len(same)), strict=True):
        np.testing.assert_array_equal(
            flax_cell.kernel_init(key, (I, H)), ours_kernel(key, (I, H), jnp.float32)
        )
        np.testing.assert_array_equal(
            flax_cell.recurrent_kernel_init(key, (H, H)), ours_recurrent(key, (H, H))
        )


@pytest.mark.parametrize("name, flax_name", FLAX_PAIRS)
def test_flax_scheme_matches_flax_cells_init(name, flax_name):
    nn = pytest.importorskip("flax.linen")
    cell = cells.get(name)(H, init_scheme="flax")
    flax_cell = getattr(nn, flax_name)(features=H)
    x = jnp.zeros((1, I))
    variables = flax_cell.init(jax.random.key(1), flax_cell.initialize_carry(KEY, x.shape), x)
    theirs = {k: np.asarray(v, np.float64) for k, v in interop.from_flax(cell, variables).items()}
    ours = _init(cell)
    assert ours.keys() == theirs.keys()
    for k in ours:
        if k.startswith("b"):  # zeros, and MGUCell's forget bias ones: exactly
            np.testing.assert_array_equal(ours[k], theirs[k])
    std = 1 / np.sqrt(I)  # LeCun normal, truncated at 2 std of the rescaled normal
    for w in (ours["w_ih"], theirs["w_ih"]):
        np.testing.assert_allclose(w.std(), std, rtol=0.03)
        assert np.abs(w).max() <= 2 * std / 0.87962566103423978 + 1e-6
    for w in (ours["w_hh"], theirs["w_hh"]):
        assert all(_is_orthogonal(b) for b in _blocks(w, cell.num_gates))


def test_flax_forget_biases():
    np.testing.assert_array_equal(_init(cells.LSTM(H, init_scheme="flax"))["b"], 0.0)
    mgu = _init(cells.MGU(H, init_scheme="flax"))["b"]
    np.testing.assert_array_equal(mgu, np.repeat([1.0, 0.0], H))  # MGUCell: forget_bias_init


# -- torch -------------------------------------------------------------------------------------


def _torch_params(cell, module):
    return {
        k: np.asarray(v, np.float64)
        for k, v in interop.from_torch(cell, module.state_dict()).items()
    }


@pytest.mark.parametrize(
    "name, module, bias_terms",
    [
        ("lstm", "LSTM", {"b": (2, 2, 2, 2)}),
        ("gru", "GRU", {"b": (2, 2, 1), "b_hn": (1,)}),
        ("rnn", "RNN", {"b": (2,)}),
        ("lstmp", "LSTM", {"b": (2, 2, 2, 2)}),
    ],
)
def test_torch_scheme_matches_torch_modules(name, module, bias_terms):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    proj = {"proj_size": H // 2} if name == "lstmp" else {}
    theirs_module = getattr(torch.nn, module)(I, H, batch_first=True, **proj)
    cell = cells.get(name)(H, init_scheme="torch", **proj)
    ours, theirs = _init(cell), _torch_params(cell, theirs_module)
    assert ours.keys() == theirs.keys()
    k = 1 / np.sqrt(H)
    for name_ in ("w_ih", "w_hh", "w_hr"):
        for params in (ours, theirs):
            if name_ in params:
                _uniform_like(params[name_], k)
    for name_, terms in bias_terms.items():
        for params in (ours, theirs):
            for block, n in zip(_blocks(params[name_], len(terms)), terms, strict=True):
                _uniform_like(block, k, n)


def test_torch_scheme_for_cells_torch_lacks():
    k = 1 / np.sqrt(H)
    mingru = _init(cells.MinGRU(H, init_scheme="torch"))  # nn.Linear(I, 2H): 1 / sqrt(I)
    _uniform_like(mingru["w_ih"], 1 / np.sqrt(I))
    _uniform_like(mingru["b"], 1 / np.sqrt(I))
    ind = _init(cells.IndRNN(H, init_scheme="torch"))
    _uniform_like(ind["b"], k)  # one bias
    assert ind["u"].min() >= 0 and ind["u"].max() <= 1  # the paper's u under every scheme
    mgu = _init(cells.MGU(H, init_scheme="torch"))
    _uniform_like(mgu["b"][:H], k, 2)
    _uniform_like(mgu["b_hn"], k)
    slstm = _init(cells.SLSTM(H, num_heads=4, init_scheme="torch"))
    np.testing.assert_array_equal(slstm["w_hh"], 0.0)  # xLSTM's R = 0 (class default)
    np.testing.assert_array_equal(
        slstm["b"][H : 2 * H], cells.slstm.powerlaw_forget_bias(H // 4, 4, jnp.float32)
    )
    _uniform_like(np.delete(slstm["b"], np.s_[H : 2 * H]), k)


# -- keras -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["lstm", "gru", "rnn"])
def test_keras_scheme_follows_keras_formulas(name):
    cell = cells.get(name)(H, init_scheme="keras")
    p, g = _init(cell), cell.num_gates
    bound = np.sqrt(6 / (I + g * H))  # glorot_uniform over the fused kernel [I, G*H]
    assert np.abs(p["w_ih"]).max() <= bound and np.abs(p["w_ih"]).max() > 0.95 * bound
    np.testing.assert_allclose(p["w_ih"].std(), bound / np.sqrt(3), rtol=0.03)
    assert _is_orthogonal(p["w_hh"])  # Orthogonal over the fused [H, G*H]: orthonormal rows
    if g > 1:
        assert not _is_orthogonal(_blocks(p["w_hh"], g)[0])  # not block by block
    expected_b = np.zeros(g * H)
    if name == "lstm":
        expected_b[H : 2 * H] = 1.0  # unit_forget_bias
    np.testing.assert_array_equal(p["b"], expected_b)
    if name == "gru":
        np.testing.assert_array_equal(p["b_hn"], 0.0)


def test_keras_head_wise_draws_each_head_fused():
    w = _init(cells.LSTM(H, num_heads=4, init_scheme="keras"))["w_hh"]  # [NH, D, 4D]
    assert w.shape == (4, H // 4, H) and all(_is_orthogonal(head) for head in w)


# -- explicit options against a scheme ----------------------------------------------------------


def test_explicit_initializers_win_over_the_scheme():
    zeros = jax.nn.initializers.zeros
    p = _init(cells.LSTM(H, init_scheme="torch", kernel_init=zeros, proj_size=8))
    np.testing.assert_array_equal(p["w_ih"], 0.0)
    np.testing.assert_array_equal(p["w_hr"], 0.0)  # kernel_init draws the projection too
    _uniform_like(p["w_hh"], 1 / np.sqrt(H))  # the rest stays the scheme's
    _uniform_like(p["b"], 1 / np.sqrt(H), 2)
    eye = cells.identity_init()
    w = _init(cells.GRU(H, init_scheme="keras", recurrent_init=eye))["w_hh"]
    for block in _blocks(w, 3):  # an explicit recurrent_init draws block by block
        np.testing.assert_array_equal(block, np.eye(H))
    irnn, irnn_flax = _init(cells.IRNN(H)), _init(cells.IRNN(H, init_scheme="flax"))
    for k in irnn:  # the IRNN's init is its definition: every zero-bias scheme keeps it
        np.testing.assert_array_equal(irnn[k], irnn_flax[k])
    slstm = _init(cells.SLSTM(H, init_scheme="flax", recurrent_init=None))
    assert _is_orthogonal(slstm["w_hh"][0][:, :H])  # R handed to the scheme


@pytest.mark.parametrize("scheme", initializers.SCHEMES)
def test_forget_bias_and_chrono_win_over_the_scheme(scheme):
    b = _init(cells.LSTM(H, init_scheme=scheme, forget_bias=2.5))["b"]
    np.testing.assert_array_equal(b[H : 2 * H], 2.5)
    b = _init(cells.MGU(H, init_scheme=scheme, forget_bias=-1.0))["b"]
    np.testing.assert_array_equal(b[:H], -1.0)
    t_max = 50
    b = _init(cells.LSTM(H, init_scheme=scheme, chrono_t_max=t_max))["b"]
    b_i, b_f, b_g, b_o = _blocks(b, 4)
    assert b_f.min() >= 0 and b_f.max() <= np.log(t_max - 1) + 1e-6
    np.testing.assert_array_equal(b_i, -b_f)
    if scheme == "torch":  # the other blocks stay the scheme's draw
        _uniform_like(np.concatenate([b_g, b_o]), 1 / np.sqrt(H), 2)
    else:
        np.testing.assert_array_equal(np.concatenate([b_g, b_o]), 0.0)
    b_z = _blocks(_init(cells.GRU(H, init_scheme=scheme, chrono_t_max=t_max))["b"], 3)[1]
    assert b_z.min() >= 0 and b_z.max() <= np.log(t_max - 1) + 1e-6
