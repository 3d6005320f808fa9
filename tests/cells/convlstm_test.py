"""cells.ConvLSTM beyond what every registered cell gets (cells_testing.CELLS runs the float64
reference with lengths, reverse, resets and carries, finite differences, jit and the step API
for a 1-D and a 2-D grid): flax.linen.ConvLSTMCell parity both ways, the layout helpers, a
3-D grid, stacks whose feature maps change, the initialisation and the refusals."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference_numpy
from cells_testing import assert_close

import cells
from cells import interop

B, T = 2, 5


def _frames(shape, seed=0):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def _flax_run(flax_cell, variables, frames_BxTxSxC):
    """flax.linen.ConvLSTMCell over the frames, step by step from a zero carry: (ys, (c, h))."""
    carry = flax_cell.initialize_carry(jax.random.key(0), frames_BxTxSxC[:, 0].shape)
    ys = []
    for t in range(frames_BxTxSxC.shape[1]):
        carry, y = flax_cell.apply(variables, carry, frames_BxTxSxC[:, t])
        ys.append(y)
    return jnp.stack(ys, axis=1), carry


@pytest.mark.parametrize(
    "spatial_shape, kernel_size", [((7,), (3,)), ((5, 6), (3, 3)), ((4, 5), (2, 3))]
)
def test_flax_conv_lstm_cell_parity_both_ways(spatial_shape, kernel_size):
    channels, features = 3, 4
    frames = _frames((B, T, *spatial_shape, channels))
    flax_cell = nn.ConvLSTMCell(features=features, kernel_size=kernel_size)
    variables = flax_cell.init(jax.random.key(1), *_flax_carry_and_input(flax_cell, frames))
    # Random biases too (flax inits them to zero), so the bias folding is exercised.
    variables = jax.tree.map(
        lambda a: a + 0.3 * _frames(a.shape, seed=a.size) if a.ndim == 1 else a, variables
    )
    flax_ys, (flax_c, flax_h) = _flax_run(flax_cell, variables, frames)

    cell, params = interop.convlstm_from_flax(variables, spatial_shape)
    assert cell.kernel_size == kernel_size and cell.hidden_size == features
    ys, carry = cells.scan(cell, params, cell.flatten(frames))
    assert_close(cell.unflatten(ys), flax_ys, 1e-5, "outputs")
    assert_close(cell.unflatten(carry.h), flax_h, 1e-5, "h")
    assert_close(cell.unflatten(carry.c), flax_c, 1e-5, "c")

    # And back: this library's params (random biases) drive flax's cell.
    params = cells.ConvLSTM(features, spatial_shape=spatial_shape, kernel_size=kernel_size).init(
        jax.random.key(2), int(np.prod(spatial_shape)) * channels
    )
    params["b"] = params["b"] + 0.3 * _frames(params["b"].shape, seed=3)
    ys, carry = cells.scan(cell, params, cell.flatten(frames))
    flax_ys, (flax_c, flax_h) = _flax_run(flax_cell, interop.convlstm_to_flax(cell, params), frames)
    assert_close(cell.unflatten(ys), flax_ys, 1e-5, "outputs (to flax)")
    assert_close(cell.unflatten(carry.c), flax_c, 1e-5, "c (to flax)")
    round_trip = interop.convlstm_from_flax(interop.convlstm_to_flax(cell, params), spatial_shape)
    jax.tree.map(lambda a, b: assert_close(a, b, 1e-6), round_trip[1], params)


def _flax_carry_and_input(flax_cell, frames):
    x = frames[:, 0]
    return flax_cell.initialize_carry(jax.random.key(0), x.shape), x


def test_a_flax_cell_without_biases_converts_to_the_forget_offset_alone():
    flax_cell = nn.ConvLSTMCell(features=2, kernel_size=(3,), use_bias=False)
    frames = _frames((B, T, 6, 1))
    variables = flax_cell.init(jax.random.key(0), *_flax_carry_and_input(flax_cell, frames))
    cell, params = interop.convlstm_from_flax(variables, (6,))
    np.testing.assert_array_equal(params["b"], [0, 0, 1, 1, 0, 0, 0, 0])
    ys, _ = cells.scan(cell, params, cell.flatten(frames))
    assert_close(cell.unflatten(ys), _flax_run(flax_cell, variables, frames)[0], 1e-5)


def test_a_3d_grid_and_a_stack_whose_feature_maps_change_match_float64_numpy():
    """A 3-D grid through the float64 reference, and a two-layer Stack (3 -> 4 -> 2 maps)
    with lengths and reverse against the reference run layer by layer."""
    cell3 = cells.ConvLSTM(3, spatial_shape=(2, 3, 2), kernel_size=(2, 3, 1), peephole=True)
    xs = _frames((B, T, cell3.positions * 2))
    params = jax.tree.map(lambda a: a + 0.2, cell3.init(jax.random.key(0), xs.shape[-1]))
    ys, _ = cells.scan(cell3, params, xs)
    expected, _, _ = reference_numpy.run(cell3, jax.tree.map(np.asarray, params), np.asarray(xs))
    assert_close(ys, expected, 1e-5, "3-D grid")

    spatial = (3, 4)
    stack = cells.Stack(
        (cells.ConvLSTM(4, spatial_shape=spatial), cells.ConvLSTM(2, spatial_shape=spatial))
    )
    frames = _frames((B, T, *spatial, 3))
    lengths = np.array([T, 2])
    stack_params = stack.init(jax.random.key(1), 12 * 3)
    ys, carries = stack(
        stack_params, stack.layers[0].flatten(frames), lengths=lengths, reverse=True
    )
    layer_in = np.asarray(stack.layers[0].flatten(frames), np.float64)
    for layer, p, carry in zip(stack.layers, stack_params, carries, strict=True):
        p64 = jax.tree.map(lambda a: np.asarray(a, np.float64), p)
        layer_in, final, _ = reference_numpy.run(
            layer, p64, layer_in, lengths=lengths, reverse=True
        )
        for a, b in zip(carry, final, strict=True):
            assert_close(a, b, 1e-5, "stack carry")
    assert_close(ys, layer_in, 1e-5, "stack outputs")
    assert stack.layers[1].unflatten(ys).shape == (B, T, *spatial, 2)


@pytest.mark.parametrize(
    "x_shape, w_shape",
    [((3, 7, 2), (3, 2, 5)), ((2, 5, 6, 3), (4, 3, 3, 4)), ((2, 3, 4, 2, 1), (2, 3, 1, 1, 3))],
)
def test_both_convolution_methods_equal_float64_numpy(x_shape, w_shape):
    """conv_same's 'patches' (im2col + one GEMM, the CPU default) and 'lax' methods, odd and
    even kernels, 1-, 2- and 3-D, values and gradients."""
    from cells.convlstm import conv_same

    x, w = _frames(x_shape, seed=1), _frames(w_shape, seed=2)
    expected = reference_numpy.conv_same(np.asarray(x, np.float64), np.asarray(w, np.float64))
    grads = {}
    for method in ("patches", "lax"):
        assert_close(conv_same(x, w, method=method), expected, 1e-6, method)
        loss = lambda x, w, m=method: jnp.sum(jnp.sin(conv_same(x, w, method=m)))  # noqa: E731
        grads[method] = jax.grad(loss, argnums=(0, 1))(x, w)
    for a, b in zip(grads["patches"], grads["lax"], strict=True):
        assert_close(a, b, 1e-5, "gradients")
    with pytest.raises(ValueError, match="method must be one of"):
        conv_same(x, w, method="fft")


def test_the_cells_convolution_method_changes_no_value_or_gradient():
    """ConvLSTM(conv_method='patches' | 'lax') over a sequence with peepholes: the same outputs,
    final carry and gradients (params and inputs) as the float64 reference."""
    made = {m: cells.ConvLSTM(3, spatial_shape=(4, 5), kernel_size=(3, 2), peephole=True,
                              conv_method=m) for m in ("patches", "lax")}  # fmt: skip
    xs = _frames((B, T, 4 * 5 * 2))
    params = jax.tree.map(lambda a: a + 0.1, made["lax"].init(jax.random.key(3), xs.shape[-1]))
    expected, _, _ = reference_numpy.run(
        made["lax"], jax.tree.map(lambda a: np.asarray(a, np.float64), params), np.asarray(xs)
    )
    grads = {}
    for method, cell in made.items():
        ys, _ = cells.scan(cell, params, xs)
        assert_close(ys, expected, 1e-5, method)
        loss = lambda p, x, c=cell: jnp.sum(jnp.sin(cells.scan(c, p, x)[0]))  # noqa: E731
        grads[method] = jax.grad(loss, argnums=(0, 1))(params, xs)
    for a, b in zip(jax.tree.leaves(grads["patches"]), jax.tree.leaves(grads["lax"]), strict=True):
        assert_close(a, b, 1e-5, "gradients")


@pytest.mark.parametrize("draw", range(6))
def test_drawn_combinations_give_the_same_values_and_gradients_with_either_method(draw):
    """conv_method across drawn combinations (1-D or 2-D grid, odd or even kernel, peepholes,
    bfloat16 compute, lengths, resets, reverse, a two-layer Stack): 'lax'
    equals 'patches' (the path every parameterised cell test checks against float64 NumPy)
    in the outputs, and in the gradients of params and inputs of a loss that reads both the
    outputs and the final carries."""
    rng = np.random.default_rng(draw)
    spatial = ((5,), (3, 4))[rng.integers(2)]
    kernel = tuple(int(k) for k in rng.choice([2, 3], size=len(spatial)))
    options = dict(spatial_shape=spatial, kernel_size=kernel, peephole=bool(rng.integers(2)),
                   compute_dtype=(None, jnp.bfloat16)[rng.integers(2)])  # fmt: skip
    layers = int(rng.integers(1, 3))
    channels = 2
    xs = _frames((B, T, int(np.prod(spatial)) * channels), seed=draw)
    kwargs = dict(reverse=bool(rng.integers(2)))
    if rng.integers(2):
        kwargs["lengths"] = np.array([T, int(rng.integers(1, T))])
    if rng.integers(2):
        kwargs["resets"] = rng.random((B, T)) < 0.3
    tol = 1e-5 if options["compute_dtype"] is None else 2e-2
    results = {}
    for method in ("patches", "lax"):
        made = [cells.ConvLSTM(3, conv_method=method, **options) for _ in range(layers)]
        model = cells.Stack(tuple(made)) if layers > 1 else made[0]
        params = model.init(jax.random.key(draw), xs.shape[-1])
        params = jax.tree.map(lambda a: a + 0.1, params)

        def loss(p, x, m=model):
            ys, final = m(p, x, **kwargs) if layers > 1 else cells.scan(m, p, x, **kwargs)
            return jnp.sum(jnp.sin(ys)) + sum(jnp.sum(c) for c in jax.tree.leaves(final)), ys

        (_, ys), grads = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(params, xs)
        results[method] = (ys, grads)
    assert_close(results["lax"][0], results["patches"][0], tol, "outputs")
    for a, b in zip(jax.tree.leaves(results["lax"][1]), jax.tree.leaves(results["patches"][1]),
                    strict=True):  # fmt: skip
        assert_close(a, b, tol, "gradients")


def test_init_uses_the_convolution_fans_and_the_forget_bias():
    cell = cells.ConvLSTM(8, spatial_shape=(16, 16), kernel_size=5)
    params = cell.init(jax.random.key(0), 16 * 16 * 3)
    assert params["w_ih"].shape == (5, 5, 3, 32) and params["w_hh"].shape == (5, 5, 8, 32)
    bound = np.sqrt(6.0 / (25 * 3 + 25 * 32))  # Glorot: fans prod(K) * C and prod(K) * 4F
    assert np.abs(params["w_ih"]).max() <= bound and np.abs(params["w_ih"]).max() > 0.9 * bound
    for block in np.split(np.asarray(params["w_hh"]), 4, axis=-1):  # orthogonal columns
        m = block.reshape(-1, 8)
        np.testing.assert_allclose(m.T @ m, np.eye(8), atol=1e-5)
    np.testing.assert_array_equal(params["b"], np.repeat([0.0, 1.0, 0.0, 0.0], 8))
    assert cell.output_size == 16 * 16 * 8 and cell.carry_sizes == (2048, 2048)
    assert "w_peep" not in params
    peep = cells.ConvLSTM(8, spatial_shape=(4,), peephole=True).init(jax.random.key(0), 4)
    assert peep["w_peep"].shape == (3, 32) and not np.asarray(peep["w_peep"]).any()


def test_flatten_and_unflatten_are_inverse_reshapes():
    cell = cells.ConvLSTM(5, spatial_shape=(3, 4))
    frames = _frames((B, T, 3, 4, 2))
    flat = cell.flatten(frames)
    assert flat.shape == (B, T, 24)
    np.testing.assert_array_equal(cell.unflatten(flat), frames)
    np.testing.assert_array_equal(flat[0, 0, :2], frames[0, 0, 0, 0])  # channels last, row-major


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: cells.ConvLSTM(4), r"spatial_shape must be a tuple of 1 to 3 positive ints"),
        (lambda: cells.ConvLSTM(4, spatial_shape=(2, 0)), r"spatial_shape must be"),
        (lambda: cells.ConvLSTM(4, spatial_shape=(1, 1, 1, 1)), r"spatial_shape must be"),
        (lambda: cells.ConvLSTM(4, spatial_shape=(8, 8), kernel_size=(3,)), r"kernel_size must"),
        (lambda: cells.ConvLSTM(4, spatial_shape=(8,), kernel_size=0), r"kernel_size must"),
        (lambda: cells.ConvLSTM(4, spatial_shape=(8,), peephole=1), r"peephole must be True"),
        (lambda: cells.ConvLSTM(4, spatial_shape=(8,), conv_method="fft"),
         r"conv_method must be one of auto, patches, lax, got 'fft'"),
        (lambda: cells.ConvLSTM(4, spatial_shape=(8,)).init(jax.random.key(0), 12),
         r"input_size=12 is not a multiple of the 8 positions"),
        (lambda: cells.ConvLSTM(4, spatial_shape=(8,)).flatten(jnp.zeros((2, 3, 7, 1))),
         r"flatten: x must be \[\.\.\., 8, channels\]"),
        (lambda: cells.ConvLSTM(4, spatial_shape=(8,)).unflatten(jnp.zeros((2, 12))),
         r"multiple of the 8 positions"),
        (lambda: interop.convlstm_to_flax(
            cells.ConvLSTM(2, spatial_shape=(4,), peephole=True),
            cells.ConvLSTM(2, spatial_shape=(4,), peephole=True).init(jax.random.key(0), 4)),
         r"no peepholes"),
        (lambda: interop.convlstm_from_flax({"params": {"ih": {}}}, (4,)), r"ih/kernel"),
    ],
)  # fmt: skip
def test_bad_options_are_refused_in_one_line(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_lists_become_tuples_so_the_cell_stays_hashable():
    cell = cells.ConvLSTM(4, spatial_shape=[8, 8], kernel_size=[3, 5])
    assert cell.spatial_shape == (8, 8) and cell.kernel_size == (3, 5)
    assert hash(cell) == hash(cells.ConvLSTM(4, spatial_shape=(8, 8), kernel_size=(3, 5)))
