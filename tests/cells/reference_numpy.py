"""An independent float64 NumPy implementation of the cells, written from the equations.

It shares no code with `cells/`: each gate is computed from its own weight block, sequences
are run one at a time on their valid part (reversed explicitly with [::-1] for reverse=True),
and padded positions are filled with zeros afterwards. Tests compare `cells.scan` and
`cells.reference_scan` against it.

Params follow the documented layout (w_ih [I, G*H], w_hh [H, G*H], b [G*H], b_hn [H]) with
gate order LSTM i, f, g, o; GRU r, z, n.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _blocks(a, n):
    """Splits the last axis into n equal gate blocks."""
    h = a.shape[-1] // n
    return [a[..., k * h : (k + 1) * h] for k in range(n)]


def lstm_step(p, state, x):
    """LSTM (Hochreiter & Schmidhuber 1997, forget gate Gers et al. 2000). state = (h, c)."""
    h_prev, c_prev = state
    wi, wf, wg, wo = _blocks(p["w_ih"], 4)
    ui, uf, ug, uo = _blocks(p["w_hh"], 4)
    bi, bf, bg, bo = _blocks(p["b"], 4)
    i = sigmoid(x @ wi + h_prev @ ui + bi)
    f = sigmoid(x @ wf + h_prev @ uf + bf)
    g = np.tanh(x @ wg + h_prev @ ug + bg)
    o = sigmoid(x @ wo + h_prev @ uo + bo)
    c = f * c_prev + i * g
    h = o * np.tanh(c)
    return (h, c), h, {"i": i, "f": f, "g": g, "o": o, "c": c}


def gru_step(p, state, x, reset_after):
    """GRU (Cho et al. 2014); reset_after=True is the cuDNN/PyTorch variant. state = (h,)."""
    (h_prev,) = state
    wr, wz, wn = _blocks(p["w_ih"], 3)
    ur, uz, un = _blocks(p["w_hh"], 3)
    br, bz, bn = _blocks(p["b"], 3)
    r = sigmoid(x @ wr + h_prev @ ur + br)
    z = sigmoid(x @ wz + h_prev @ uz + bz)
    if reset_after:
        n = np.tanh(x @ wn + bn + r * (h_prev @ un + p["b_hn"]))
    else:
        n = np.tanh(x @ wn + bn + (r * h_prev) @ un)
    h = (1.0 - z) * n + z * h_prev
    return (h,), h, {"r": r, "z": z, "n": n}


def simple_step(p, state, x, activation):
    """Elman RNN: h = act(x W_ih + h W_hh + b). The trace holds the pre-activation a."""
    (h_prev,) = state
    a = x @ p["w_ih"] + h_prev @ p["w_hh"] + p["b"]
    h = np.tanh(a) if activation == "tanh" else np.maximum(a, 0.0)
    return (h,), h, {"a": a}


def step_fn(cell):
    """The NumPy step for a `cells` cell, chosen by its class name and options."""
    kind = type(cell).__name__
    if kind == "LSTM":
        return lstm_step
    if kind == "GRU":
        return lambda p, s, x: gru_step(p, s, x, cell.reset_after)
    if kind == "SimpleRNN":
        return lambda p, s, x: simple_step(p, s, x, cell.activation)
    raise ValueError(f"no NumPy reference for {cell!r}")


def run(cell, params, xs, carry=None, lengths=None, reverse=False):
    """Runs `cell` over xs [B, T, I] in float64, one sequence at a time.

    Returns:
      ys [B, T, H] (zeros at padding), final carry (tuple of [B, H]), trace {gate: [B, T, H]}.
    """
    step = step_fn(cell)
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    xs = np.asarray(xs, np.float64)
    batch, steps, _ = xs.shape
    hidden = cell.hidden_size
    n_state = 2 if type(cell).__name__ == "LSTM" else 1
    if carry is None:
        carry = [np.zeros((batch, hidden))] * n_state
    carry = [np.asarray(c, np.float64) for c in carry]
    lengths = np.full((batch,), steps) if lengths is None else np.asarray(lengths)

    ys = np.zeros((batch, steps, hidden))
    trace, final = {}, [np.array(c) for c in carry]
    for b in range(batch):
        length = int(lengths[b])
        order = list(range(length))[::-1] if reverse else list(range(length))
        state = tuple(c[b : b + 1] for c in carry)
        for t in order:
            state, h, gates = step(p, state, xs[b : b + 1, t])
            ys[b, t] = h[0]
            for name, value in gates.items():
                trace.setdefault(name, np.zeros((batch, steps, hidden)))[b, t] = value[0]
        for k in range(n_state):
            final[k][b] = state[k][0]
    return ys, tuple(final), trace
