"""An independent float64 NumPy implementation of the cells, written from the equations.

It shares no code with `cells/`: each gate is computed from its own weight block, sequences
are run one at a time on their valid part (reversed explicitly with [::-1] for reverse=True),
and padded positions are filled with zeros afterwards. Tests compare `cells.scan` and
`cells.reference_scan` against it.

Params follow the documented layout (w_ih [I, G*H], w_hh [H, G*H], b [G*H], b_hn [H]) with
gate order LSTM i, f, g, o (coupled: f, g, o); GRU r, z, n; MGU f, n. Variants: peephole
w_peep [3, H] (rows i, f, o), projection w_hr [H, P], layer norm ln_{x,h,c}_{scale,bias},
IndRNN u [H].
"""

from __future__ import annotations

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _blocks(a, n):
    """Splits the last axis into n equal gate blocks."""
    h = a.shape[-1] // n
    return [a[..., k * h : (k + 1) * h] for k in range(n)]


def layer_norm(v, scale, bias, eps=1e-5):
    """Ba et al. 2016: (v - mean) / sqrt(var + eps) * scale + bias over the last axis."""
    mean = v.mean(-1, keepdims=True)
    var = ((v - mean) ** 2).mean(-1, keepdims=True)
    return (v - mean) / np.sqrt(var + eps) * scale + bias


def lstm_step(p, state, x, peephole=False, coupled=False, proj=False, ln=False):
    """LSTM (Hochreiter & Schmidhuber 1997, forget gate Gers et al. 2000) and its variants:
    peepholes (Gers et al. 2002), CIFG (Greff et al. 2017), projection (Sak et al. 2014),
    layer norm (Ba et al. 2016). state = (h, c)."""
    h_prev, c_prev = state
    names = ["f", "g", "o"] if coupled else ["i", "f", "g", "o"]
    xw, hw = x @ p["w_ih"], h_prev @ p["w_hh"]
    if ln:
        xw = layer_norm(xw, p["ln_x_scale"], p["ln_x_bias"])
        hw = layer_norm(hw, p["ln_h_scale"], p["ln_h_bias"])
    a = dict(zip(names, _blocks(xw + hw + p["b"], len(names)), strict=True))
    pi, pf, po = p["w_peep"] if peephole else (0.0, 0.0, 0.0)
    f = sigmoid(a["f"] + pf * c_prev)
    i = 1.0 - f if coupled else sigmoid(a["i"] + pi * c_prev)
    g = np.tanh(a["g"])
    c = f * c_prev + i * g
    o = sigmoid(a["o"] + po * c)
    h = o * np.tanh(layer_norm(c, p["ln_c_scale"], p["ln_c_bias"]) if ln else c)
    if proj:
        h = h @ p["w_hr"]
    return (h, c), h, {"i": i, "f": f, "g": g, "o": o, "c": c}


def gru_step(p, state, x, reset_after, ln=False):
    """GRU (Cho et al. 2014); reset_after=True is the cuDNN/PyTorch variant. state = (h,)."""
    (h_prev,) = state
    wr, wz, wn = _blocks(p["w_ih"], 3)
    ur, uz, un = _blocks(p["w_hh"], 3)
    br, bz, bn = _blocks(p["b"], 3)
    if ln:  # both products normalised over the three blocks; r scales the recurrent candidate
        xr, xz, xn = _blocks(layer_norm(x @ p["w_ih"], p["ln_x_scale"], p["ln_x_bias"]), 3)
        hr, hz, hn = _blocks(layer_norm(h_prev @ p["w_hh"], p["ln_h_scale"], p["ln_h_bias"]), 3)
        r = sigmoid(xr + br + hr)
        z = sigmoid(xz + bz + hz)
        n = np.tanh(xn + bn + r * (hn + p["b_hn"]))
        h = (1.0 - z) * n + z * h_prev
        return (h,), h, {"r": r, "z": z, "n": n}
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


def mgu_step(p, state, x):
    """Minimal gated unit (Zhou et al. 2016) in flax's MGUCell form. state = (h,)."""
    (h_prev,) = state
    wf, wn = _blocks(p["w_ih"], 2)
    uf, un = _blocks(p["w_hh"], 2)
    bf, bn = _blocks(p["b"], 2)
    f = sigmoid(x @ wf + bf + h_prev @ uf)
    n = np.tanh(x @ wn + bn + f * (h_prev @ un + p["b_hn"]))
    h = (1.0 - f) * n + f * h_prev
    return (h,), h, {"f": f, "n": n}


def indrnn_step(p, state, x, activation, recurrent_max):
    """IndRNN (Li et al. 2018): h = act(x W_ih + b + u * h), |u| clipped to recurrent_max."""
    (h_prev,) = state
    u = np.clip(p["u"], -recurrent_max, recurrent_max) if recurrent_max else p["u"]
    a = x @ p["w_ih"] + p["b"] + u * h_prev
    h = np.maximum(a, 0.0) if activation == "relu" else np.tanh(a)
    return (h,), h, {"a": a}


def step_fn(cell):
    """The NumPy step for a `cells` cell, chosen by its class and options."""
    kind = type(cell).__mro__
    names = [k.__name__ for k in kind]
    if "LSTM" in names:
        return lambda p, s, x: lstm_step(
            p, s, x, cell.peephole, cell.coupled, cell.proj_size > 0, cell.layer_norm
        )
    if "GRU" in names:
        return lambda p, s, x: gru_step(p, s, x, cell.reset_after, cell.layer_norm)
    if "SimpleRNN" in names:
        return lambda p, s, x: simple_step(p, s, x, cell.activation)
    if "MGU" in names:
        return mgu_step
    if "IndRNN" in names:
        return lambda p, s, x: indrnn_step(p, s, x, cell.activation, cell.recurrent_max)
    raise ValueError(f"no NumPy reference for {cell!r}")


def run(cell, params, xs, carry=None, lengths=None, reverse=False, resets=None, initial=None):
    """Runs `cell` over xs [B, T, I] in float64, one sequence at a time.

    With resets [B, T], each sequence is cut into episodes at the True steps and every episode
    runs on its own from `initial` (default zeros) -- reversed, from its own last step; the
    episode run first starts from `carry` (forward: unless resets[:, 0] is set). Returns ys
    [B, T, H_out] (zeros at padding), the final carry (tuple of [B, width]) and the trace
    {gate: [B, T, H]}.
    """
    step = step_fn(cell)
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    xs = np.asarray(xs, np.float64)
    batch, steps, _ = xs.shape
    hidden = cell.hidden_size
    sizes = list(cell.carry_sizes)
    if initial is None:
        initial = [np.zeros((batch, n)) for n in sizes]
    initial = [
        np.broadcast_to(np.asarray(c, np.float64), (batch, n))
        for c, n in zip(initial, sizes, strict=True)
    ]
    carry = initial if carry is None else [np.asarray(c, np.float64) for c in carry]
    lengths = np.full((batch,), steps) if lengths is None else np.asarray(lengths)
    resets = np.zeros((batch, steps), bool) if resets is None else np.asarray(resets)

    ys = np.zeros((batch, steps, cell.output_size))
    trace, final = {}, [np.array(c) for c in carry]
    for b in range(batch):
        length = int(lengths[b])
        starts = [0] + [t for t in range(1, length) if resets[b, t]]
        episodes = [list(range(s, e)) for s, e in zip(starts, starts[1:] + [length], strict=True)]
        if length and resets[b, 0] and not reverse:  # forward, a reset at 0 drops `carry`
            episodes[0] = ("fresh", episodes[0])
        state = tuple(c[b : b + 1] for c in carry)
        fresh = tuple(c[b : b + 1] for c in initial)
        runs = episodes[::-1] if reverse else episodes
        for k, episode in enumerate(runs):
            if isinstance(episode, tuple):  # a reset at step 0: the first episode starts fresh
                episode = episode[1]
                state = fresh
            elif k > 0:
                state = fresh
            order = episode[::-1] if reverse else episode
            for t in order:
                state, h, gates = step(p, state, xs[b : b + 1, t])
                ys[b, t] = h[0]
                for name, value in gates.items():
                    trace.setdefault(name, np.zeros((batch, steps, hidden)))[b, t] = value[0]
        for k in range(len(sizes)):
            final[k][b] = state[k][0]
    return ys, tuple(final), trace
