"""An independent float64 NumPy implementation of the cells, written from the equations.

It shares no code with `cells/`: each gate is computed from its own weight block, sequences
are run one at a time on their valid part (reversed explicitly with [::-1] for reverse=True),
and padded positions are filled with zeros afterwards. Tests compare `cells.scan` and
`cells.reference_scan` against it.

Params follow the documented layout (w_ih [I, G*H], w_hh [H, G*H], b [G*H], b_hn [H]) with
gate order LSTM i, f, g, o (coupled: f, g, o); GRU r, z, n; MGU f, n. Variants: peephole
w_peep [3, H] (rows i, f, o), projection w_hr [H, P], layer norm ln_{x,h,c}_{scale,bias},
IndRNN u [H]. Head-wise recurrent matrices w_hh [NH, D, G*D] (LSTM/GRU num_heads > 1, sLSTM)
are expanded here to their dense block-diagonal form, loop by loop (`dense_recurrent`).
minGRU/minLSTM have no w_hh; the sLSTM carry is (h, c, n, m); the mLSTM's (h, C, n, m), its
w_ih [I, 4H + 2NH] = [W_q | W_k | W_v | W_o | w_i | w_f] with no w_hh.

Every registered cell has its step in `STEPS` under its registered name; a cell registered
without one fails every reference test with a message naming it and this file.
"""

from __future__ import annotations

import itertools

import numpy as np

import cells  # only for the registered names (`step_fn`); the equations below are our own


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


def dense_recurrent(w_hh, num_gates):
    """A head-wise w_hh [NH, D, G*D] as the dense [H, G*H] block-diagonal matrix (gate-major):
    head k's D units feed only its D columns of each gate block. A dense w_hh is returned as is."""
    if w_hh.ndim == 2:
        return w_hh
    heads, d, _ = w_hh.shape
    hidden = heads * d
    dense = np.zeros((hidden, num_gates * hidden))
    for k in range(heads):
        for gate in range(num_gates):
            rows = slice(k * d, (k + 1) * d)
            cols = slice(gate * hidden + k * d, gate * hidden + (k + 1) * d)
            dense[rows, cols] = w_hh[k][:, gate * d : (gate + 1) * d]
    return dense


def lstm_step(p, state, x, peephole=False, coupled=False, proj=False, ln=False):
    """LSTM (Hochreiter & Schmidhuber 1997, forget gate Gers et al. 2000) and its variants:
    peepholes (Gers et al. 2002), CIFG (Greff et al. 2017), projection (Sak et al. 2014),
    layer norm (Ba et al. 2016). state = (h, c)."""
    h_prev, c_prev = state
    names = ["f", "g", "o"] if coupled else ["i", "f", "g", "o"]
    xw, hw = x @ p["w_ih"], h_prev @ dense_recurrent(p["w_hh"], len(names))
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
    w_hh = dense_recurrent(p["w_hh"], 3)
    wr, wz, wn = _blocks(p["w_ih"], 3)
    ur, uz, un = _blocks(w_hh, 3)
    br, bz, bn = _blocks(p["b"], 3)
    if ln:  # both products normalised over the three blocks; r scales the recurrent candidate
        xr, xz, xn = _blocks(layer_norm(x @ p["w_ih"], p["ln_x_scale"], p["ln_x_bias"]), 3)
        hr, hz, hn = _blocks(layer_norm(h_prev @ w_hh, p["ln_h_scale"], p["ln_h_bias"]), 3)
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


def g_activation(x):
    """minGRU/minLSTM's g: x + 0.5 for x >= 0, sigmoid(x) otherwise."""
    return np.where(x >= 0, x + 0.5, sigmoid(x))


def mingru_step(p, state, x):
    """minGRU (Feng et al. 2024): gates from x only. state = (h,)."""
    (h_prev,) = state
    wz, wh = _blocks(p["w_ih"], 2)
    bz, bh = _blocks(p["b"], 2)
    z = sigmoid(x @ wz + bz)
    h_tilde = g_activation(x @ wh + bh)
    h = (1.0 - z) * h_prev + z * h_tilde
    return (h,), h, {"z": z, "h_tilde": h_tilde}


def minlstm_step(p, state, x):
    """minLSTM (Feng et al. 2024) with normalised gates f/(f+i), i/(f+i). state = (h,).
    The trace holds the normalised gates."""
    (h_prev,) = state
    wf, wi, wh = _blocks(p["w_ih"], 3)
    bf, bi, bh = _blocks(p["b"], 3)
    f = sigmoid(x @ wf + bf)
    i = sigmoid(x @ wi + bi)
    h_tilde = g_activation(x @ wh + bh)
    f_norm, i_norm = f / (f + i), i / (f + i)
    h = f_norm * h_prev + i_norm * h_tilde
    return (h,), h, {"f": f_norm, "i": i_norm, "h_tilde": h_tilde}


def rglru_step(p, state, x, c):
    """RG-LRU (De et al. 2024) as the paper writes it, with a = sigmoid(Lambda) = sigmoid(-a_param)
    (recurrentgemma's stored parameter) and a_t = a^(c r_t). state = (h,)."""
    (h_prev,) = state
    wa, wx, wu = _blocks(p["w_ih"], 3)
    ba, bx, bu = _blocks(p["b"], 3)
    u = x @ wu + bu
    r = sigmoid(x @ wa + ba)
    i = sigmoid(x @ wx + bx)
    a = sigmoid(-p["a_param"]) ** (c * r)
    h = a * h_prev + np.sqrt(1.0 - a**2) * (i * u)
    return (h,), h, {"r": r, "i": i, "u": u, "a": a}


def conv_same(x, w):
    """Stride-1 'same' convolution (cross-correlation) of x [B, *S, C] with w [*K, C, O]: zero
    padding (k - 1) // 2 before and k // 2 after each axis; out[b, s] = sum over the kernel
    offsets d of xpad[b, s + d] @ w[d]."""
    spatial = x.shape[1:-1]
    kernel = w.shape[:-2]
    pads = [(0, 0)] + [((k - 1) // 2, k // 2) for k in kernel] + [(0, 0)]
    xpad = np.pad(x, pads)
    out = np.zeros(x.shape[:1] + spatial + w.shape[-1:])
    for offset in itertools.product(*(range(k) for k in kernel)):
        window = tuple(slice(d, d + n) for d, n in zip(offset, spatial, strict=True))
        out += xpad[(slice(None), *window)] @ w[offset]
    return out


def convlstm_step(p, state, x, spatial_shape, peephole):
    """ConvLSTM (Shi et al. 2015) on flattened grids: x [B, prod(S) * C], state (h, c) each
    [B, prod(S) * F]; each gate from its own kernel blocks, peepholes W_c o C optional."""
    h_prev, c_prev = state
    batch = x.shape[0]
    grid = lambda a: a.reshape((batch, *spatial_shape, -1))  # noqa: E731
    names = ["i", "f", "g", "o"]
    w_x, w_h, b = (_blocks(p[k], 4) for k in ("w_ih", "w_hh", "b"))
    a = {
        n: (conv_same(grid(x), w_x[k]) + conv_same(grid(h_prev), w_h[k]) + b[k]).reshape(batch, -1)
        for k, n in enumerate(names)
    }
    pi, pf, po = p["w_peep"] if peephole else (0.0, 0.0, 0.0)
    i = sigmoid(a["i"] + pi * c_prev)
    f = sigmoid(a["f"] + pf * c_prev)
    g = np.tanh(a["g"])
    c = f * c_prev + i * g
    o = sigmoid(a["o"] + po * c)
    h = o * np.tanh(c)
    return (h, c), h, {"i": i, "f": f, "g": g, "o": o, "c": c}


def slstm_step(p, state, x):
    """sLSTM (Beck et al. 2024), stabilised as the official vanilla code. state = (h, c, n, m);
    the trace holds the stabilised gates i', f', z = tanh, o = sigmoid, and c, n."""
    h_prev, c_prev, n_prev, m_prev = state
    pre_i, pre_f, pre_z, pre_o = _blocks(
        x @ p["w_ih"] + h_prev @ dense_recurrent(p["w_hh"], 4) + p["b"], 4
    )
    log_f_plus_m = m_prev - np.log1p(np.exp(-pre_f))
    m = np.where(n_prev == 0.0, pre_i, np.maximum(pre_i, log_f_plus_m))
    i = np.exp(pre_i - m)
    f = np.exp(log_f_plus_m - m)
    z, o = np.tanh(pre_z), sigmoid(pre_o)
    c = f * c_prev + i * z
    n = f * n_prev + i
    h = o * c / n
    return (h, c, n, m), h, {"i": i, "f": f, "z": z, "o": o, "c": c, "n": n}


def slstm_unstabilised_step(p, state, x):
    """The sLSTM without the stabiliser: i = exp(i~), f = sigmoid(f~). state = (h, c, n)."""
    h_prev, c_prev, n_prev = state
    pre_i, pre_f, pre_z, pre_o = _blocks(
        x @ p["w_ih"] + h_prev @ dense_recurrent(p["w_hh"], 4) + p["b"], 4
    )
    c = sigmoid(pre_f) * c_prev + np.exp(pre_i) * np.tanh(pre_z)
    n = sigmoid(pre_f) * n_prev + np.exp(pre_i)
    h = sigmoid(pre_o) * c / n
    return (h, c, n), h


def mlstm_step(p, state, x, num_heads, head_norm):
    """mLSTM (Beck et al. 2024), stabilised as the official code, head by head. state = (h, C,
    n, m) flattened per sequence (C head-major, key rows then value columns); the trace holds
    the stabilised gates i', f' (one per head), o and the retrieved h~ (before the norm)."""
    _, c_flat, n_flat, m_prev = state
    hidden = n_flat.shape[-1]
    d = hidden // num_heads
    pre = x @ p["w_ih"] + p["b"]
    q_all, k_all, v_all, o_pre = (pre[:, j * hidden : (j + 1) * hidden] for j in range(4))
    i_all, f_all = pre[:, 4 * hidden : 4 * hidden + num_heads], pre[:, 4 * hidden + num_heads :]
    h_tilde = np.zeros((x.shape[0], hidden))
    c_new, n_new = np.zeros_like(c_flat), np.zeros_like(n_flat)
    m_new, i_act, f_act = np.zeros_like(m_prev), np.zeros_like(m_prev), np.zeros_like(m_prev)
    for b in range(x.shape[0]):
        for head in range(num_heads):
            units = slice(head * d, (head + 1) * d)
            memory = slice(head * d * d, (head + 1) * d * d)
            q, k, v = q_all[b, units], k_all[b, units] / np.sqrt(d), v_all[b, units]
            log_f = -np.log1p(np.exp(-f_all[b, head]))
            m = max(log_f + m_prev[b, head], i_all[b, head])
            f, i = np.exp(log_f + m_prev[b, head] - m), np.exp(i_all[b, head] - m)
            c = f * c_flat[b, memory].reshape(d, d) + i * np.outer(k, v)
            n = f * n_flat[b, units] + i * k
            h_tilde[b, units] = (q @ c) / (max(abs(n @ q), np.exp(-m)) + 1e-6)
            c_new[b, memory], n_new[b, units] = c.reshape(-1), n
            m_new[b, head], i_act[b, head], f_act[b, head] = m, i, f
    normed = h_tilde
    if head_norm:
        heads = h_tilde.reshape(x.shape[0], num_heads, d)
        mean = heads.mean(-1, keepdims=True)
        var = ((heads - mean) ** 2).mean(-1, keepdims=True)
        normed = ((heads - mean) / np.sqrt(var + 1e-5)).reshape(x.shape[0], hidden)
        normed = normed * p["norm_scale"]
    o = sigmoid(o_pre)
    h = o * normed
    return (h, c_new, n_new, m_new), h, {"i": i_act, "f": f_act, "o": o, "h_tilde": h_tilde}


def _lstm(cell):
    return lambda p, s, x: lstm_step(
        p, s, x, cell.peephole, cell.coupled, cell.proj_size > 0, cell.layer_norm
    )


# The float64 step of every registered cell, keyed by its registered name (`cells.names()`):
# cell -> step(params, state, x) -> (state, h, trace), the cell read only for its options. A
# newly registered cell adds its entry here, with its equations written above.
STEPS = {
    "lstm": _lstm,
    "lstm_cifg": _lstm,
    "lstm_ln": _lstm,
    "lstm_peephole": _lstm,
    "lstmp": _lstm,
    "gru": lambda cell: lambda p, s, x: gru_step(p, s, x, cell.reset_after, cell.layer_norm),
    "gru_ln": lambda cell: lambda p, s, x: gru_step(p, s, x, cell.reset_after, cell.layer_norm),
    "rnn": lambda cell: lambda p, s, x: simple_step(p, s, x, cell.activation),
    "irnn": lambda cell: lambda p, s, x: simple_step(p, s, x, cell.activation),
    "indrnn": lambda cell: (
        lambda p, s, x: indrnn_step(p, s, x, cell.activation, cell.recurrent_max)
    ),
    "mgu": lambda cell: mgu_step,
    "mingru": lambda cell: mingru_step,
    "minlstm": lambda cell: minlstm_step,
    "slstm": lambda cell: slstm_step,
    "mlstm": lambda cell: lambda p, s, x: mlstm_step(p, s, x, cell.num_heads, cell.head_norm),
    "rglru": lambda cell: lambda p, s, x: rglru_step(p, s, x, cell.c),
    "convlstm": lambda cell: (
        lambda p, s, x: convlstm_step(p, s, x, cell.spatial_shape, cell.peephole)
    ),
}


def step_fn(cell):
    """The NumPy step for a `cells` cell: the STEPS entry of its class's registered name (an
    unregistered subclass, e.g. a test's, uses its nearest registered ancestor's).

    Raises ValueError naming the cell and this file when a registered cell has no entry.
    """
    for cls in type(cell).__mro__:
        name = cells.name_of(cls) if issubclass(cls, cells.Cell) else None
        if name in STEPS:
            return STEPS[name](cell)
        if name in cells.names():
            raise ValueError(
                f"cell {name!r} ({cls.__module__}.{cls.__qualname__}) is registered but has no "
                f"float64 reference step: add its equations and a STEPS[{name!r}] entry to "
                "tests/cells/reference_numpy.py."
            )
    raise ValueError(f"no NumPy reference for {cell!r}: it derives from no registered cell.")


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
                    trace.setdefault(name, np.zeros((batch, steps, value.shape[-1])))[b, t] = value[
                        0
                    ]
        for k in range(len(sizes)):
            final[k][b] = state[k][0]
    return ys, tuple(final), trace
