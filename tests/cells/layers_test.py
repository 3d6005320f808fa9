"""Layers: dropout, the multi-layer Stack and the Bidirectional wrapper."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cells_testing import B, H, I, T, assert_close, random_inputs, random_params

import cells


def test_dropout():
    x = jnp.ones((200, 50))
    assert cells.dropout(None, 0.5, x) is x  # evaluation: identity
    assert cells.dropout(jax.random.key(0), 0.0, x) is x
    y = np.asarray(cells.dropout(jax.random.key(0), 0.25, x))
    assert set(np.unique(y)) == {
        0.0,
        np.float32(1.0 / 0.75),
    }  # inverted dropout: survivors scaled up
    assert abs((y == 0).mean() - 0.25) < 0.02
    assert abs(y.mean() - 1.0) < 0.03  # expectation preserved
    np.testing.assert_array_equal(y, cells.dropout(jax.random.key(0), 0.25, x))  # same key


def _stack_params(stack, seed=0):
    """Random params for every layer (random biases too)."""
    params, size = [], I
    for k, layer in enumerate(stack.layers):
        if isinstance(layer, cells.Bidirectional):
            params.append(
                {
                    "forward": random_params(layer.forward, size, seed=seed + 2 * k),
                    "backward": random_params(layer.backward, size, seed=seed + 2 * k + 1),
                }
            )
            size = layer.output_size
        else:
            params.append(random_params(layer, size, seed=seed + 2 * k))
            size = layer.hidden_size
    return tuple(params)


def test_stack_is_layers_chained_and_dropout_between_layers_only():
    stack = cells.Stack.uniform(cells.LSTM(H), num_layers=2, dropout=0.5)
    assert len(stack.layers) == 2 and stack.output_size == H
    assert [tuple(p["w_ih"].shape) for p in stack.init(jax.random.key(0), I)] == [
        (I, 4 * H),
        (H, 4 * H),
    ]
    params, xs = _stack_params(stack), random_inputs()
    lengths = np.array([T, 3, 1])
    run = jax.jit(lambda p, x, rng: stack(p, x, lengths=lengths, rng=rng))

    def manual(rng):
        h, carries = xs, []
        for k, (layer, p) in enumerate(zip(stack.layers, params, strict=True)):
            if k > 0 and rng is not None:
                h = cells.dropout(jax.random.fold_in(rng, k), 0.5, h)
            h, c = cells.scan(layer, p, h, lengths=lengths)
            carries.append(c)
        return h, tuple(carries)

    # Deterministic without an rng: no dropout at all, and repeatable.
    ys, carries = run(params, xs, None)
    ys_manual, carries_manual = manual(None)
    assert_close(ys, ys_manual, 1e-6)
    jax.tree.map(lambda a, b: assert_close(a, b, 1e-6), carries, carries_manual)
    np.testing.assert_array_equal(ys, run(params, xs, None)[0])

    # With an rng: dropout on the connections between layers (never on the stack's input).
    rng = jax.random.key(3)
    ys_drop, carries_drop = run(params, xs, rng)
    assert_close(ys_drop, manual(rng)[0], 1e-6)
    assert np.abs(np.asarray(ys_drop - ys)).max() > 1e-3
    jax.tree.map(np.testing.assert_array_equal, carries_drop[0], carries[0])  # layer 0 untouched
    np.testing.assert_array_equal(ys_drop, run(params, xs, rng)[0])
    assert np.abs(np.asarray(ys_drop - run(params, xs, jax.random.key(4))[0])).max() > 1e-3


def test_stack_carry_in_out():
    stack = cells.Stack((cells.GRU(H), cells.SimpleRNN(H + 1)))
    params, xs = _stack_params(stack), random_inputs((B, 2 * T, I))
    ys, final = stack(params, xs)
    ys_a, carry = stack(params, xs[:, :T])
    ys_b, carry = stack(params, xs[:, T:], carry=carry)
    assert_close(jnp.concatenate([ys_a, ys_b], axis=1), ys, 1e-6)
    jax.tree.map(lambda a, b: assert_close(a, b, 1e-6), carry, final)
    assert ys.shape == (B, 2 * T, H + 1)


@pytest.mark.parametrize("merge", ["concat", "sum"])
def test_bidirectional_is_forward_and_reverse_scan(merge):
    bi = cells.Bidirectional(cells.LSTM(H), cells.GRU(H), merge=merge)
    params = {
        "forward": random_params(bi.forward, seed=0),
        "backward": random_params(bi.backward, seed=1),
    }
    xs, lengths = random_inputs(), np.array([T, 3, 0])
    ys, (carry_f, carry_b) = bi(params, xs, lengths=lengths)
    ys_f, cf = cells.scan(bi.forward, params["forward"], xs, lengths=lengths)
    ys_b, cb = cells.scan(bi.backward, params["backward"], xs, lengths=lengths, reverse=True)
    expected = jnp.concatenate([ys_f, ys_b], -1) if merge == "concat" else ys_f + ys_b
    assert ys.shape == (B, T, bi.output_size) and bi.output_size == (
        2 * H if merge == "concat" else H
    )
    assert_close(ys, expected, 1e-6)
    jax.tree.map(lambda a, b: assert_close(a, b, 1e-6), (carry_f, carry_b), (cf, cb))


def test_bidirectional_stack_padded_batch_equals_each_sequence_alone():
    """Right-padding changes nothing: a 2-layer bidirectional stack on a padded batch gives, at
    each sequence's valid steps, exactly what that sequence gives run alone, unpadded."""
    bi = cells.Bidirectional(cells.LSTM(H), cells.LSTM(H), merge="concat")
    stack = cells.Stack((bi, cells.Bidirectional(cells.GRU(H), cells.SimpleRNN(H), merge="sum")))
    params = _stack_params(stack)
    lengths = np.array([T, 3, 1])
    xs = np.asarray(random_inputs())
    padded = xs.copy()
    for b, length in enumerate(lengths):
        padded[b, length:] = 7.0  # garbage in the padding
    ys, carries = stack(params, jnp.asarray(padded), lengths=lengths)
    for b, length in enumerate(lengths):
        ys_alone, carries_alone = stack(params, jnp.asarray(xs[b : b + 1, :length]))
        assert_close(ys[b, :length], ys_alone[0], 1e-6, f"sequence {b} outputs")
        assert not np.asarray(ys[b, length:]).any()
        jax.tree.map(
            lambda a, c, b=b: assert_close(a[b], c[0], 1e-6, f"sequence {b} carry"),
            carries,
            carries_alone,
        )


def test_layer_errors():
    with pytest.raises(ValueError, match=r"merge must be one of \('concat', 'sum'\), got 'max'"):
        cells.Bidirectional(cells.LSTM(H), cells.LSTM(H), merge="max")
    with pytest.raises(ValueError, match="merge='sum' needs equal output sizes, got 6 and 7"):
        cells.Bidirectional(cells.LSTM(H), cells.LSTM(H + 1), merge="sum")
    with pytest.raises(ValueError, match=r"dropout must lie in \[0, 1\), got 1.0"):
        cells.Stack.uniform(cells.LSTM(H), 2, dropout=1.0)
    with pytest.raises(ValueError, match="num_layers must be a positive int, got 0"):
        cells.Stack.uniform(cells.LSTM(H), 0)
    with pytest.raises(ValueError, match="layers must be a non-empty tuple of cells"):
        cells.Stack(())
    with pytest.raises(ValueError, match="every layer must be a cell or Bidirectional"):
        cells.Stack(("lstm",))
    stack = cells.Stack.uniform(cells.LSTM(H), 2)
    with pytest.raises(ValueError, match="params has 1 layers, the stack 2"):
        stack(stack.init(jax.random.key(0), I)[:1], random_inputs())
