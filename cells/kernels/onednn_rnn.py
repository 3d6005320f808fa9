"""The LSTM and GRU through oneDNN's RNN primitive on CPU: `cells.scan(..., backend='onednn')`.

oneDNN's RNN primitive (the library PyTorch's CPU nn.LSTM calls) runs a whole sequence in one
call, forward and backward, with its own packed-GEMM kernels. `native/onednn_rnn.cc` exposes
it as two XLA FFI targets (forward, for training or inference, and backward), registered with
`jax.ffi` and wrapped here in a `jax.custom_vjp`, so `jit`, `grad`, `vmap` (a loop over the
mapped axis: `vmap_method='sequential'`) and buffer donation work as on the XLA path.

Our parameters map onto oneDNN's exactly (its docs' equations, "dev_guide_rnn"):

  * plain `cells.LSTM`: gates i, f, g, o are oneDNN's i, f, c~, o: w_ih [I, 4H] is its
    weights_layer [I, 4, H] (ldigo), w_hh its weights_iter, b its bias (the forget bias is part
    of b). h_t = o * tanh(c_t), c_t = f * c_{t-1} + i * g as ours.
  * `cells.GRU(reset_after=True)` is oneDNN's linear-before-reset GRU: gates r, z, n become
    u = z, r, o = n (blocks permuted), bias [b_z, b_r, b_n, b_hn] with b_hn as its b_u'. Its
    h_t = u * h_{t-1} + (1 - u) * o is our (1 - z) * n + z * h_{t-1}.
  * `cells.GRU(reset_after=False)` (Cho et al.) is oneDNN's GRU, with the same permutation
    and bias [b_z, b_r, b_n].

The permutation is done in JAX, so gradients flow back through it to our parameters.

Scope (anything else is refused in one line by 'onednn' and left to XLA by 'auto'): the
plain LSTM and both GRUs, float32 inputs, parameters and compute, static shapes, left to
right or `reverse=True` (oneDNN's right-to-left direction: outputs stay at their positions),
with `carry`; no `lengths`, `resets`, `return_trace`, `remat`, `recurrent_dropout` or
`zoneout`. Forward-mode autodiff (jvp) is not defined (a custom VJP), as for
backward='fused'.

Threads: each call runs on `threads()` threads, XLA's own setting:
`--xla_cpu_multi_thread_eigen=false` in XLA_FLAGS means one thread (as XLA then runs), else
every core this process may use; RNN_CELLS_ONEDNN_THREADS=N overrides both.

The extension is optional. `available()` says whether it is built and loads; `unavailable()`
says why not, in one line. `make install` installs oneDNN (the `onednn` extra: Intel's CPU
wheels `onednn-cpu-gomp` / `onednn-devel-cpu-gomp`, oneDNN 3.2, x86-64 Linux) and builds it;
by hand: `python -m cells.kernels.native.build` (see there for other oneDNN installs).
"""

from __future__ import annotations

import ctypes
import functools
import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

LIBRARY = pathlib.Path(__file__).parent / "native" / "_onednn_rnn.so"
_FORWARD, _BACKWARD = "rnn_cells_onednn_rnn_forward", "rnn_cells_onednn_rnn_backward"
_CELL_IDS = {"lstm": 0, "lbr_gru": 1, "gru": 2}
_DIRECTIONS = {False: 0, True: 1}  # reverse -> oneDNN's left2right / right2left


@functools.cache
def _load(path: pathlib.Path) -> tuple[ctypes.CDLL | None, str]:
    """(the library, '') with its FFI targets registered, or (None, why not)."""
    if os.environ.get("RNN_CELLS_DISABLE_ONEDNN"):
        return None, "it is disabled by RNN_CELLS_DISABLE_ONEDNN"
    if not path.exists():
        return None, (
            f"the native extension is not built ({path.name} is missing): install oneDNN "
            "(pip install onednn-devel-cpu-gomp) and run `python -m cells.kernels.native.build`"
        )
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as e:
        return None, f"the native extension does not load ({e})"
    lib.onednn_rnn_workspace_bytes.restype = ctypes.c_int64
    lib.onednn_rnn_workspace_bytes.argtypes = [ctypes.c_int64] * 7
    lib.onednn_rnn_error.restype = ctypes.c_char_p
    lib.onednn_rnn_version.restype = ctypes.c_char_p
    jax.ffi.register_ffi_target(_FORWARD, jax.ffi.pycapsule(lib.OnednnRnnForward), "cpu")
    jax.ffi.register_ffi_target(_BACKWARD, jax.ffi.pycapsule(lib.OnednnRnnBackward), "cpu")
    return lib, ""


def available() -> bool:
    """Whether the oneDNN extension is built and loads in this process."""
    return _load(LIBRARY)[0] is not None


def unavailable() -> str:
    """Why the extension is unavailable ('' when it is available)."""
    return _load(LIBRARY)[1]


def version() -> str:
    """oneDNN's version and threading runtime, as the extension was built ('' if absent)."""
    lib = _load(LIBRARY)[0]
    return "" if lib is None else lib.onednn_rnn_version().decode()


def threads() -> int:
    """The threads a call runs on: XLA's setting (see the module docstring)."""
    override = os.environ.get("RNN_CELLS_ONEDNN_THREADS")
    if override:
        return max(1, int(override))
    if "--xla_cpu_multi_thread_eigen=false" in os.environ.get("XLA_FLAGS", ""):
        return 1
    return len(os.sched_getaffinity(0))


# cells.scan(backend='auto') takes oneDNN where it was measured faster than our XLA path,
# forward+backward on the 2-core development CPU (experiments/studies/cpu_speed, the onednn and
# onednn_batch groups): {kind: ((min hidden, min batch), ...)}, any pair sufficing. Measured:
# at H = 256 the XLA path is faster at every B up to 32 (LSTM 0.59-0.99x, GRU 0.33-0.91x
# oneDNN's speed); the LSTM gains from B = 8 at H = 512 and 1024 (1.05-1.77x), the GRU from
# B = 32 at H = 512 (1.16x) and B = 16 at H = 1024 (1.15-1.55x). Elsewhere: unmeasured, XLA.
AUTO_FASTER = {
    "lstm": ((512, 8),),
    "lbr_gru": ((512, 32), (1024, 16)),
    "gru": ((512, 32), (1024, 16)),  # Cho's GRU: unmeasured apart; the reset-after GRU's rule
}


def faster_than_xla(cell, batch) -> bool:
    """Whether oneDNN was measured faster than the XLA path for this cell and batch size (a
    symbolic batch under jax.export: no; oneDNN needs static shapes anyway)."""
    rules = AUTO_FASTER.get(cell_kind(cell) or "", ())
    if not isinstance(batch, int):
        return False
    return any(cell.hidden_size >= h and batch >= b for h, b in rules)


def cell_kind(cell) -> str | None:
    """'lstm', 'lbr_gru' or 'gru' for a cell oneDNN runs exactly, else None."""
    from cells import gru, lstm

    if isinstance(cell, lstm.LSTM) and cell.is_plain:
        return "lstm"
    if isinstance(cell, gru.GRU) and cell.is_plain:
        return "lbr_gru" if cell.reset_after else "gru"
    return None


def why_not(cell, params, xs, carry=(), **options) -> str:
    """'' when this call can run on oneDNN, else why not (one clause, for the error message).

    carry: the carry the scan starts from (its dtype is the computation's: `cells.scan` makes
    it float64 when the params, inputs or a given carry are).

    options: the `cells.scan` arguments oneDNN does not implement, by name, with their values
    (lengths, resets, return_trace, remat, recurrent_dropout, zoneout).
    """
    if jax.default_backend() != "cpu":
        return f"it runs on CPU only (this process runs on {jax.default_backend()!r})"
    if cell_kind(cell) is None:
        return f"it runs the plain LSTM and GRU only, not {cell!r}"
    leaves = [*jax.tree.leaves(params), *jax.tree.leaves(carry)]
    dtypes = {jnp.dtype(xs.dtype), *(jnp.dtype(p.dtype) for p in leaves)}
    if dtypes != {jnp.dtype(jnp.float32)} or cell.compute_dtype not in (None, jnp.float32):
        return (
            f"it takes float32 inputs, params, carries and compute (got "
            f"{sorted(str(d) for d in dtypes)}, compute_dtype={cell.compute_dtype})"
        )
    if not all(isinstance(n, int) for n in xs.shape):
        return f"it needs static shapes (xs has shape {xs.shape})"
    asked = [name for name, value in options.items() if value is not None and value is not False]
    if asked:
        return f"it does not implement {', '.join(asked)}"
    return unavailable()


# -- the primitive as a differentiable JAX function ----------------------------------------------
def _workspace_bytes(cell_id, direction, x, h0) -> int:
    lib = _load(LIBRARY)[0]
    layers, _, batch, hidden = h0.shape
    _, steps, inputs = x.shape
    size = lib.onednn_rnn_workspace_bytes(
        cell_id, direction, layers, steps, batch, inputs, hidden
    )  # fmt: skip
    if size < 0:
        raise ValueError(f"oneDNN refused the RNN: {lib.onednn_rnn_error().decode()}")
    return size


def _forward(cell_id, direction, nthreads, training, x, h0, c0, wl, wi, b):
    ws = _workspace_bytes(cell_id, direction, x, h0) if training else 0
    hidden = h0.shape[-1]
    out = (
        jax.ShapeDtypeStruct((x.shape[0], x.shape[1], h0.shape[1] * hidden), x.dtype),
        jax.ShapeDtypeStruct(h0.shape, h0.dtype),
        jax.ShapeDtypeStruct(c0.shape, c0.dtype),
        jax.ShapeDtypeStruct((ws,), jnp.uint8),
    )
    call = jax.ffi.ffi_call(_FORWARD, out, vmap_method="sequential")
    return call(
        x, h0, c0, wl, wi, b,
        cell=np.int64(cell_id), direction=np.int64(direction), training=bool(training),
        threads=np.int64(nthreads),
    )  # fmt: skip


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _rnn(cell_id, direction, nthreads, x, h0, c0, wl, wi, b):
    """(y [N, T, D*H], hn, cn) of oneDNN's primitive; inference forward (no workspace)."""
    y, hn, cn, _ = _forward(cell_id, direction, nthreads, False, x, h0, c0, wl, wi, b)
    return y, hn, cn


def _rnn_fwd(cell_id, direction, nthreads, x, h0, c0, wl, wi, b):
    y, hn, cn, ws = _forward(cell_id, direction, nthreads, True, x, h0, c0, wl, wi, b)
    return (y, hn, cn), (x, h0, c0, wl, wi, b, y, hn, cn, ws)


def _rnn_bwd(cell_id, direction, nthreads, residuals, cotangents):
    x, h0, c0, wl, wi, b = residuals[:6]
    out = tuple(jax.ShapeDtypeStruct(a.shape, a.dtype) for a in (x, h0, c0, wl, wi, b))
    call = jax.ffi.ffi_call(_BACKWARD, out, vmap_method="sequential")
    dy, dhn, dcn = (jnp.asarray(c, jnp.float32) for c in cotangents)
    return tuple(
        call(
            *residuals,
            dy,
            dhn,
            dcn,
            cell=np.int64(cell_id),
            direction=np.int64(direction),
            threads=np.int64(nthreads),
        )  # fmt: skip
    )


_rnn.defvjp(_rnn_fwd, _rnn_bwd)


# -- our parameters in oneDNN's layout -----------------------------------------------------------
_GRU_ORDER = np.array([1, 0, 2])  # our r, z, n -> oneDNN's u (= z), r, o (= n)


def weights(cell, params):
    """(weights_layer [1, 1, I, G, H], weights_iter [1, 1, H, G, H], bias [1, 1, Gb, H]) for
    one layer and direction, from our params (see the module docstring)."""
    kind, hidden = cell_kind(cell), cell.hidden_size
    w_ih, w_hh, b = params["w_ih"], params["w_hh"], params["b"]
    gates = 4 if kind == "lstm" else 3
    wl = w_ih.reshape(w_ih.shape[0], gates, hidden)
    wi = w_hh.reshape(hidden, gates, hidden)
    bias = b.reshape(gates, hidden)
    if kind != "lstm":
        wl, wi, bias = wl[:, _GRU_ORDER], wi[:, _GRU_ORDER], bias[_GRU_ORDER]
    if kind == "lbr_gru":
        bias = jnp.concatenate([bias, params["b_hn"].reshape(1, hidden)])
    return wl[None, None], wi[None, None], bias[None, None]


def scan(cell, params, xs_BxTxI, carry, reverse: bool = False):
    """(ys [B, T, H], final carry) of `cell` over xs by oneDNN; the caller checked `why_not`."""
    kind = cell_kind(cell)
    wl, wi, bias = weights(cell, params)
    h0 = carry[0].astype(jnp.float32)[None, None]  # [L = 1, D = 1, B, H]
    c0 = carry[1].astype(jnp.float32)[None, None] if kind == "lstm" else jnp.zeros((0,))
    ys, hn, cn = _rnn(_CELL_IDS[kind], _DIRECTIONS[bool(reverse)], threads(), xs_BxTxI, h0, c0,
                      wl, wi, bias)  # fmt: skip
    new_carry = (hn[0, 0], cn[0, 0]) if kind == "lstm" else (hn[0, 0],)
    return ys, type(carry)(*new_carry)
