"""Weight interop: converted weights give PyTorch's and flax.linen's outputs, both directions."""

import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cells_testing import B, H, I, T, assert_close, random_carry, random_inputs, random_params

import cells
from cells import interop

TOL = 1e-5  # float32 against float32: only the summation order differs


# -- PyTorch ---------------------------------------------------------------------------------

TORCH_MODULES = {  # name: (constructor name, kwargs)
    "lstm": ("LSTM", {}),
    "gru": ("GRU", {}),
    "rnn_tanh": ("RNN", {"nonlinearity": "tanh"}),
    "irnn": ("RNN", {"nonlinearity": "relu"}),
}


def _torch_module(name, bidirectional, num_layers=2, bias=True, seed=0):
    torch = pytest.importorskip("torch")
    torch.manual_seed(seed)
    ctor, kwargs = TORCH_MODULES[name]
    module = getattr(torch.nn, ctor)(
        I,
        H,
        num_layers=num_layers,
        batch_first=True,
        bidirectional=bidirectional,
        bias=bias,
        **kwargs,
    )
    with torch.no_grad():  # random biases too (PyTorch's init is uniform, not zero: keep it)
        for p in module.parameters():
            p.mul_(2.0)
    return module.eval()


def _torch_run(module, xs, hx=None, lengths=None):
    torch = pytest.importorskip("torch")
    x = torch.from_numpy(np.array(xs))  # a writable copy
    if hx is not None:
        hx = (
            tuple(torch.from_numpy(np.array(a)) for a in hx)
            if isinstance(hx, tuple)
            else (torch.from_numpy(np.array(hx)))
        )
    with torch.no_grad():
        if lengths is None:
            ys, hn = module(x, hx)
            ys = ys.numpy()
        else:
            packed = torch.nn.utils.rnn.pack_padded_sequence(
                x, torch.as_tensor(lengths), batch_first=True, enforce_sorted=False
            )
            ys, hn = module(packed, hx)
            ys = torch.nn.utils.rnn.pad_packed_sequence(ys, batch_first=True, total_length=T)[0]
            ys = ys.numpy()
    hn = tuple(a.numpy() for a in hn) if isinstance(hn, tuple) else hn.numpy()
    return ys, hn


# Bidirectional 2-layer modules cover both directions' keys for every kind; the plain
# (unidirectional) layer path once, with the LSTM.
TORCH_CASES = pytest.mark.parametrize(
    "name, bidirectional",
    [(name, True) for name in TORCH_MODULES] + [("lstm", False)],
    ids=[f"{name}-bi" for name in TORCH_MODULES] + ["lstm-uni"],
)


@pytest.mark.torch
@TORCH_CASES
def test_from_torch_module_matches_torch(name, bidirectional):
    """Torch -> cells: outputs and final states agree, from a non-zero initial state."""
    module = _torch_module(name, bidirectional)
    stack, params = interop.from_torch_module(module)
    assert len(stack.layers) == 2
    xs = random_inputs()
    n_dir = 2 if bidirectional else 1
    rng = np.random.default_rng(5)
    hx = tuple(
        rng.standard_normal((2 * n_dir, B, H)).astype(np.float32)
        for _ in range(2 if name == "lstm" else 1)
    )
    hx = hx if name == "lstm" else hx[0]
    ys_t, hn_t = _torch_run(module, xs, hx)
    ys, carries = stack(params, xs, carry=interop.carry_from_torch(stack, hx))
    assert_close(ys, ys_t, TOL, "outputs")
    jax.tree.map(
        lambda a, b: assert_close(a, b, TOL, "final state"),
        interop.carry_to_torch(stack, carries),
        hn_t,
    )


@pytest.mark.torch
@pytest.mark.parametrize("name", list(TORCH_MODULES))
def test_packed_sequences_match_lengths(name):
    """PyTorch's packed sequences are `lengths`: bidirectional outputs and final states agree."""
    module = _torch_module(name, bidirectional=True, num_layers=1)
    stack, params = interop.from_torch_module(module)
    xs, lengths = random_inputs(), np.array([T, 3, 1])
    ys_t, hn_t = _torch_run(module, xs, lengths=lengths)
    ys, carries = stack(params, xs, lengths=lengths)
    assert_close(ys, ys_t, TOL, "outputs")
    jax.tree.map(lambda a, b: assert_close(a, b, TOL), interop.carry_to_torch(stack, carries), hn_t)


@pytest.mark.torch
@TORCH_CASES
def test_to_torch_matches_cells(name, bidirectional):
    """cells -> torch: load our params into a fresh module, get our outputs; and back losslessly."""
    module = _torch_module(name, bidirectional, seed=1)
    stack, _ = interop.from_torch_module(module)
    params = _random_stack_params(stack)
    module.load_state_dict(interop.stack_to_torch(stack, params, tensors=True))
    xs = random_inputs()
    ys_t, _ = _torch_run(module, xs)
    ys, _ = stack(params, xs)
    assert_close(ys_t, ys, TOL, "outputs")
    # cells -> torch -> cells is exact (the folded bias goes to bias_ih, zeros/b_hn to bias_hh).
    back = interop.stack_from_torch(stack, module.state_dict())
    jax.tree.map(np.testing.assert_array_equal, back, params)


def _random_stack_params(stack):
    params, size = [], I
    for k, layer in enumerate(stack.layers):
        if isinstance(layer, cells.Bidirectional):
            params.append(
                {
                    "forward": random_params(layer.forward, size, seed=2 * k),
                    "backward": random_params(layer.backward, size, seed=2 * k + 1),
                }
            )
        else:
            params.append(random_params(layer, size, seed=2 * k))
        size = layer.output_size if isinstance(layer, cells.Bidirectional) else layer.hidden_size
    return tuple(params)


@pytest.mark.torch
def test_torch_bias_folding_and_single_layer_api():
    """Explicit gate bookkeeping: LSTM b = b_ih + b_hh; GRU b[r,z] = b_ih + b_hh, b[n] = b_ih[n],
    b_hn = b_hh[n]; to_torch puts the folded bias in b_ih. Also prefix and bias=False."""
    gru_module = _torch_module("gru", bidirectional=False, num_layers=1)
    sd = {f"encoder.{k}": v for k, v in gru_module.state_dict().items()}
    params = interop.from_torch(cells.GRU(H), sd, prefix="encoder.")
    b_ih, b_hh = sd["encoder.bias_ih_l0"].numpy(), sd["encoder.bias_hh_l0"].numpy()
    np.testing.assert_allclose(params["b"][: 2 * H], b_ih[: 2 * H] + b_hh[: 2 * H], rtol=1e-6)
    np.testing.assert_array_equal(params["b"][2 * H :], b_ih[2 * H :])
    np.testing.assert_array_equal(params["b_hn"], b_hh[2 * H :])
    np.testing.assert_array_equal(params["w_ih"], sd["encoder.weight_ih_l0"].numpy().T)
    back = interop.to_torch(cells.GRU(H), params, prefix="encoder.")
    np.testing.assert_array_equal(back["encoder.bias_ih_l0"], params["b"])
    np.testing.assert_array_equal(back["encoder.bias_hh_l0"][: 2 * H], 0.0)

    lstm_module = _torch_module("lstm", bidirectional=False, num_layers=1)
    sd = lstm_module.state_dict()
    params = interop.from_torch(cells.LSTM(H), sd)
    np.testing.assert_allclose(
        params["b"], sd["bias_ih_l0"].numpy() + sd["bias_hh_l0"].numpy(), rtol=1e-6
    )

    no_bias = _torch_module("rnn_tanh", bidirectional=False, num_layers=1, bias=False)
    stack, params = interop.from_torch_module(no_bias)
    np.testing.assert_array_equal(params[0]["b"], 0.0)
    xs = random_inputs()
    assert_close(stack(params, xs)[0], _torch_run(no_bias, xs)[0], TOL)
    no_bias.load_state_dict(interop.stack_to_torch(stack, params, tensors=True, bias=False))
    nonzero = (dict(params[0], b=params[0]["b"] + 1.0),)
    with pytest.raises(ValueError, match="bias=False: the params have nonzero b"):
        interop.stack_to_torch(stack, nonzero, bias=False)


@pytest.mark.torch
@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_bias_free_module_round_trips_without_restating_bias(name):
    """torch (bias=False) -> cells -> torch: the obvious call gives a state dict the module loads
    strictly (no bias keys), and the module then computes what the stack computes."""
    module = _torch_module(name, bidirectional=True, bias=False)
    stack, params = interop.from_torch_module(module)
    assert isinstance(stack, cells.Stack) and not stack.bias
    state = interop.stack_to_torch(stack, params, tensors=True)
    assert not [k for k in state if "bias" in k]
    module.load_state_dict(state)  # strict
    xs = random_inputs()
    assert_close(_torch_run(module, xs)[0], stack(params, xs)[0], TOL, "outputs")
    # A module with biases still gets them; and the flag survives the NNX module.
    with_bias = _torch_module(name, bidirectional=True)
    stack_b, params_b = interop.from_torch_module(with_bias)
    with_bias.load_state_dict(interop.stack_to_torch(stack_b, params_b, tensors=True))
    wrapped = cells.nnx.Stack.from_params(stack, params)
    module.load_state_dict(interop.stack_to_torch(wrapped.stack, wrapped.params, tensors=True))


@pytest.mark.torch
def test_torch_errors():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="GRU\\(reset_after=False\\) has no PyTorch equivalent"):
        interop.to_torch(
            cells.GRU(H, reset_after=False), random_params(cells.GRU(H, reset_after=False))
        )
    gru_sd = _torch_module("gru", bidirectional=False, num_layers=1).state_dict()
    with pytest.raises(ValueError, match="has no PyTorch equivalent"):
        interop.from_torch(cells.GRU(H, reset_after=False), gru_sd)
    with pytest.raises(ValueError, match="cell kind or hidden_size does not match"):
        interop.from_torch(cells.LSTM(H), gru_sd)
    headwise = cells.LSTM(H, num_heads=2)
    with pytest.raises(ValueError, match="LSTM with num_heads=2 has no PyTorch equivalent"):
        interop.to_torch(headwise, random_params(headwise))
    with pytest.raises(ValueError, match="state_dict has no 'weight_ih_l1'"):
        interop.from_torch(cells.GRU(H), gru_sd, layer=1)
    projected = torch.nn.LSTM(I, H, proj_size=2).state_dict()
    with pytest.raises(ValueError, match="weight_hr_l0 is present but the cell has proj_size=0"):
        interop.from_torch(cells.LSTM(H), projected)
    with pytest.raises(ValueError, match="weight_hr_l0 is missing but the cell has proj_size=2"):
        interop.from_torch(cells.LSTM(H, proj_size=2), _torch_module("lstm", False, 1).state_dict())
    with pytest.raises(ValueError, match="module must be a torch nn.LSTM, nn.GRU or nn.RNN"):
        interop.from_torch_module(torch.nn.Linear(2, 2))


def test_interop_does_not_import_torch():
    code = "import sys, cells; cells.interop; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- flax.linen ------------------------------------------------------------------------------

FLAX_CELLS = {  # name: (flax cell, our cell)
    "LSTMCell": (lambda: nn.LSTMCell(H), cells.LSTM(H)),
    "OptimizedLSTMCell": (lambda: nn.OptimizedLSTMCell(H), cells.LSTM(H)),
    "GRUCell": (lambda: nn.GRUCell(H), cells.GRU(H)),
    "SimpleCell_tanh": (lambda: nn.SimpleCell(H), cells.SimpleRNN(H)),
    "SimpleCell_relu": (
        lambda: nn.SimpleCell(H, activation_fn=nn.relu),
        cells.SimpleRNN(H, activation="relu"),
    ),
}


def _flax_run(flax_cell, variables, xs, carry):
    """A manual loop of flax_cell.apply (no nn.RNN): returns ys [B, T, H] and the final carry."""
    ys = []
    for t in range(xs.shape[1]):
        carry, y = flax_cell.apply(variables, carry, xs[:, t])
        ys.append(y)
    return jnp.stack(ys, axis=1), carry


@pytest.mark.parametrize("name", list(FLAX_CELLS))
def test_from_flax_matches_flax(name):
    make, cell = FLAX_CELLS[name]
    flax_cell, xs = make(), random_inputs()
    carry = random_carry(cell)
    flax_carry = interop.carry_to_flax(cell, carry)
    variables = flax_cell.init(jax.random.key(0), flax_carry, xs[:, 0])
    variables = jax.tree.map(  # flax inits biases to zero: make them random
        lambda a: a + 0.3 * jax.random.normal(jax.random.key(a.size), a.shape), variables
    )
    ys_f, final_f = _flax_run(flax_cell, variables, xs, flax_carry)
    params = interop.from_flax(cell, variables)
    ys, final = cells.scan(cell, params, xs, carry=carry)
    assert_close(ys, ys_f, TOL, "outputs")
    jax.tree.map(lambda a, b: assert_close(a, b, TOL), interop.carry_to_flax(cell, final), final_f)
    # And back: exact, the same tree as flax's own.
    back = interop.to_flax(cell, params)
    assert jax.tree.structure(back) == jax.tree.structure(variables)
    jax.tree.map(np.testing.assert_array_equal, back, variables)


@pytest.mark.parametrize("name", ["LSTMCell", "GRUCell", "SimpleCell_relu"])
def test_to_flax_in_nn_rnn_with_seq_lengths(name):
    """cells -> flax: nn.RNN over our converted params gives our outputs (valid steps) and carry."""
    make, cell = FLAX_CELLS[name]
    params, xs, lengths = random_params(cell), random_inputs(), np.array([T, 3, 1])
    rnn = nn.RNN(make(), return_carry=True)
    variables = {"params": {"cell": interop.to_flax(cell, params)["params"]}}
    final_f, ys_f = rnn.apply(variables, xs, seq_lengths=jnp.asarray(lengths))
    ys, final = cells.scan(cell, params, xs, lengths=lengths)
    for b, length in enumerate(lengths):
        assert_close(ys[b, :length], ys_f[b, :length], TOL, "outputs")
    jax.tree.map(lambda a, b: assert_close(a, b, TOL), interop.carry_to_flax(cell, final), final_f)
    # from_flax accepts nn.RNN's variables as they are.
    jax.tree.map(np.testing.assert_array_equal, interop.from_flax(cell, variables), params)


def test_flax_carry_layout_is_c_then_h_and_refuses_ours():
    """flax's LSTM carry is (c, h); ours LSTMState(h, c): the converters say which is which and
    refuse a carry already in our layout (LSTMState(*flax_carry) would swap h and c)."""
    cell = cells.LSTM(H)
    carry = random_carry(cell)
    c, h = interop.carry_to_flax(cell, carry)
    np.testing.assert_array_equal(c, carry.c)
    np.testing.assert_array_equal(h, carry.h)
    jax.tree.map(np.testing.assert_array_equal, interop.carry_from_flax(cell, (c, h)), carry)
    with pytest.raises(ValueError, match="already a cells LSTMState; .* flax's layout"):
        interop.carry_from_flax(cell, carry)
    gru_carry = random_carry(cells.GRU(H))
    np.testing.assert_array_equal(interop.carry_to_flax(cells.GRU(H), gru_carry), gru_carry.h)
    with pytest.raises(ValueError, match="already a cells RNNState"):
        interop.carry_from_flax(cells.GRU(H), gru_carry)
    slstm = cells.SLSTM(H)  # no flax counterpart: passes as it is
    s_carry = random_carry(slstm)
    assert interop.carry_to_flax(slstm, s_carry) is s_carry
    assert interop.carry_from_flax(slstm, s_carry) is s_carry


def test_flax_errors():
    gru_before = cells.GRU(H, reset_after=False)
    with pytest.raises(ValueError, match="has no flax equivalent"):
        interop.to_flax(gru_before, random_params(gru_before))
    lstm_tree = interop.to_flax(cells.LSTM(H), random_params(cells.LSTM(H)))
    with pytest.raises(ValueError, match="flax params have no ir/kernel"):
        interop.from_flax(cells.GRU(H), lstm_tree)
    with pytest.raises(ValueError, match="do not fit"):
        interop.from_flax(cells.LSTM(H + 1), lstm_tree)
