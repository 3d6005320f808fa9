"""cells.kernels.cudnn_lstm (`cells.scan(..., backend='cudnn')`): our params packed for cuDNN.

On CPU the packing and the wrapper run through `jax.experimental.rnn.lstm_ref` (the
reference of cuDNN's layout) against `cells.scan`, values and gradients; on a GPU (tests
marked `gpu`) the cuDNN call itself against the XLA path.
"""

import cells_testing as ct
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cells
from cells.kernels import cudnn_lstm

B, T, I, H = 3, 6, 4, 5  # noqa: E741
LENGTHS = jnp.array([6, 3, 0])


def _inputs():
    cell = cells.LSTM(H)
    params = ct.random_params(cell, I)
    xs = jax.random.normal(jax.random.key(1), (B, T, I))
    carry = cells.LSTMState(*(0.4 * jax.random.normal(jax.random.key(k), (B, H)) for k in (2, 3)))
    return cell, params, xs, carry


def _value_and_grads(scan, params, xs, carry):
    def loss(p, x, c):
        ys, final = scan(p, x, c)
        return jnp.sum(jnp.sin(2.0 * ys)) + jnp.sum(final.h**2) + jnp.sum(3.0 * final.c), ys

    return jax.value_and_grad(loss, (0, 1, 2), has_aux=True)(params, xs, carry)


def _assert_same(got, want):
    (_, ys), grads = got
    (_, ys_ref), grads_ref = want
    ct.assert_close(ys, ys_ref, 1e-5, "outputs")
    for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(grads_ref), strict=True):
        ct.assert_close(a, b, 1e-5, "gradients")


def test_packing_matches_cudnn_reference_layout():
    cell, params, xs, carry = _inputs()
    got = _value_and_grads(
        lambda p, x, c: cudnn_lstm.scan(cell, p, x, c, LENGTHS, reference=True), params, xs, carry
    )
    want = _value_and_grads(
        lambda p, x, c: cells.scan(cell, p, x, carry=c, lengths=LENGTHS), params, xs, carry
    )
    _assert_same(got, want)
    assert not np.asarray(got[0][1])[2].any()  # an empty sequence: zero outputs


def test_cudnn_errors_name_what_would_work():
    cell, params, xs, carry = _inputs()
    if jax.default_backend() != "gpu":
        with pytest.raises(ValueError, match="needs a GPU .*use backend='xla'"):
            cells.scan(cell, params, xs, backend="cudnn")
    gru = cells.GRU(H)
    with pytest.raises(ValueError, match="plain LSTM only"):
        cudnn_lstm.scan(gru, gru.init(jax.random.key(0), I), xs, gru.initial_carry(B))
    half = jax.tree.map(lambda a: a.astype(jnp.bfloat16), params)
    with pytest.raises(ValueError, match="float32 inputs, params and compute"):
        cudnn_lstm.scan(cell, half, xs, carry, reference=True)
    with pytest.raises(ValueError, match="'cudnn' does not implement reverse"):
        cells.scan(cell, params, xs, backend="cudnn", reverse=True)


@pytest.mark.gpu
def test_cudnn_on_gpu_equals_the_xla_path():
    cell, params, xs, carry = _inputs()
    got = _value_and_grads(
        lambda p, x, c: cells.scan(cell, p, x, carry=c, lengths=LENGTHS, backend="cudnn"),
        params, xs, carry,
    )  # fmt: skip
    want = _value_and_grads(
        lambda p, x, c: cells.scan(cell, p, x, carry=c, lengths=LENGTHS), params, xs, carry
    )
    _assert_same(got, want)
