"""cells.kernels.onednn_rnn (`cells.scan(..., backend='onednn' | 'auto')`): oneDNN's RNN
primitive against `cells.reference_scan` and PyTorch, and the fallback without the extension.

Parity: outputs, final carries and every gradient (parameters, inputs, initial carry) within
1e-5 relative of `cells.reference_scan` under autodiff, for the LSTM and both GRUs, B in
{1, 3, 32}, T in {1, 7, 128}, both directions; PyTorch's nn.LSTM / nn.GRU of 1 and 2 layers in
both directions (through `cells.interop`), values and gradients; under jit, grad, vmap and
donation. The tests that need the extension skip where it is not built; CI builds it
(`make onednn` in `.ci/run`), and the fallback tests simulate a machine without it.
"""

import pathlib

import cells_testing as ct
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cells
from cells import interop
from cells.kernels import onednn_rnn
from cells.kernels.native import build

I, H = 5, 16  # noqa: E741
TOL = 1e-5
needs_extension = pytest.mark.skipif(
    not onednn_rnn.available(), reason=f"oneDNN extension: {onednn_rnn.unavailable()}"
)
CELLS = {
    "lstm": cells.LSTM(H),
    "gru": cells.GRU(H),  # reset_after=True: oneDNN's linear-before-reset GRU
    "gru_reset_before": cells.GRU(H, reset_after=False),  # oneDNN's GRU
}


def _inputs(cell, batch, steps, seed=0):
    params = ct.random_params(cell, I, seed=seed)
    xs = ct.random_inputs((batch, steps, I), seed=seed + 1)
    carry = ct.random_carry(cell, batch, seed=seed + 2)
    return params, xs, carry


def _loss(scan, params, xs, carry):
    """A loss that weighs every output and every carry field differently."""
    ys, final = scan(params, xs, carry)
    weights = jnp.linspace(-1.0, 2.0, ys.size).reshape(ys.shape)
    tail = sum(jnp.sum(jnp.sin((k + 1.0) * c)) for k, c in enumerate(final))
    return jnp.sum(weights * jnp.tanh(ys)) + tail, (ys, final)


def _value_and_grads(scan, params, xs, carry, jit=True):
    fn = jax.value_and_grad(lambda p, x, c: _loss(scan, p, x, c), (0, 1, 2), has_aux=True)
    return (jax.jit(fn) if jit else fn)(params, xs, carry)


def _assert_same(got, want, tol=TOL):
    (_, (ys, final)), grads = got
    (_, (ys_ref, final_ref)), grads_ref = want
    ct.assert_close(ys, ys_ref, tol, "outputs")
    for a, b in zip(final, final_ref, strict=True):
        ct.assert_close(a, b, tol, "final carry")
    names = ["d params"] * len(grads[0]) + ["d xs"] + ["d carry"] * len(grads[2])
    for name, a, b in zip(names, jax.tree.leaves(grads), jax.tree.leaves(grads_ref), strict=True):
        ct.assert_close(a, b, tol, name)


def _onednn(cell, reverse=False):
    return lambda p, x, c: cells.scan(cell, p, x, carry=c, reverse=reverse, backend="onednn")


def _reference(cell, reverse=False):
    return lambda p, x, c: cells.reference_scan(cell, p, x, carry=c, reverse=reverse)


@needs_extension
@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("batch", [1, 3, 32])
@pytest.mark.parametrize("steps", [1, 7])
@pytest.mark.parametrize("reverse", [False, True], ids=["l2r", "r2l"])
def test_matches_reference_scan(name, batch, steps, reverse):
    cell = CELLS[name]
    params, xs, carry = _inputs(cell, batch, steps)
    got = _value_and_grads(_onednn(cell, reverse), params, xs, carry)
    want = _value_and_grads(_reference(cell, reverse), params, xs, carry, jit=False)
    _assert_same(got, want)


@needs_extension
@pytest.mark.parametrize(  # one cell in the default run (about 8 s each: the eager reference)
    "name", ["gru", pytest.param("lstm", marks=pytest.mark.slow),
             pytest.param("gru_reset_before", marks=pytest.mark.slow)],
)  # fmt: skip
@pytest.mark.parametrize(
    "batch, reverse",
    [
        pytest.param(1, True, marks=pytest.mark.slow),
        (3, False),
        pytest.param(32, True, marks=pytest.mark.slow),
    ],
)
def test_matches_reference_scan_over_128_steps(name, batch, reverse):
    """T = 128; the reference runs eagerly (compiling its unrolled loop costs minutes)."""
    cell = CELLS[name]
    params, xs, carry = _inputs(cell, batch, 128, seed=3)
    got = _value_and_grads(_onednn(cell, reverse), params, xs, carry)
    want = _value_and_grads(_reference(cell, reverse), params, xs, carry, jit=False)
    _assert_same(got, want)


@needs_extension
def test_eager_and_initial_carry_default():
    """Outside jit, and with the default (zero) carry, as `cells.scan` is called in scripts."""
    cell = CELLS["lstm"]
    params, xs, _ = _inputs(cell, 3, 7)
    ys, final = cells.scan(cell, params, xs, backend="onednn")
    ys_ref, final_ref = cells.reference_scan(cell, params, xs)
    ct.assert_close(ys, ys_ref, TOL, "outputs")
    ct.assert_close(final.c, final_ref.c, TOL, "c")


# -- PyTorch --------------------------------------------------------------------------------------
@needs_extension
@pytest.mark.torch
@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize(  # the other B and T in the slow suite
    "batch, steps",
    [
        (3, 7),
        pytest.param(1, 1, marks=pytest.mark.slow),
        pytest.param(32, 128, marks=pytest.mark.slow),
    ],
)
def test_matches_pytorch(mode, num_layers, bidirectional, batch, steps):
    """nn.LSTM / nn.GRU read into a `cells.Stack` (cells.interop) and run by oneDNN: outputs,
    final states, and the gradients of the inputs, initial states and every weight and bias
    (ours mapped back to PyTorch's names) of one loss."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = getattr(torch.nn, mode)(
        I, H, num_layers=num_layers, batch_first=True, bidirectional=bidirectional
    )
    stack, params = interop.from_torch_module(module)
    xs = ct.random_inputs((batch, steps, I), seed=4)
    n = num_layers * (2 if bidirectional else 1)
    rng = np.random.default_rng(5)
    hx = [np.asarray(0.5 * rng.standard_normal((n, batch, H)), np.float32)]
    if mode == "LSTM":
        hx.append(np.asarray(0.5 * rng.standard_normal((n, batch, H)), np.float32))
    weights_BxTxD = np.linspace(-1.0, 2.0, batch * steps * H * (n // num_layers), dtype=np.float32)
    weights_BxTxD = weights_BxTxD.reshape(batch, steps, -1)

    def torch_order(finals):  # (h_n[, c_n]), each [layers * directions, B, H]
        per = [c for layer in finals for c in (layer if bidirectional else (layer,))]
        return tuple(jnp.stack([c[j] for c in per]) for j in range(len(per[0])))

    def loss(p, x, carries):
        ys, finals = stack(p, x, carry=carries, backend="onednn")
        h_n = torch_order(finals)
        tail = sum(jnp.sum(jnp.sin((k + 1.0) * a)) for k, a in enumerate(h_n))
        return jnp.sum(weights_BxTxD * jnp.tanh(ys)) + tail, (ys, h_n)

    carries = interop.carry_from_torch(stack, tuple(hx) if mode == "LSTM" else hx[0])
    (value, (ys, h_n)), (d_params, d_xs, _) = jax.jit(
        jax.value_and_grad(loss, (0, 1, 2), has_aux=True)
    )(params, xs, carries)

    x_t = torch.from_numpy(np.array(xs)).requires_grad_(True)
    hx_t = [torch.from_numpy(a.copy()).requires_grad_(True) for a in hx]
    ys_t, h_n_t = module(x_t, tuple(hx_t) if mode == "LSTM" else hx_t[0])
    h_n_t = h_n_t if isinstance(h_n_t, tuple) else (h_n_t,)
    loss_t = (torch.from_numpy(weights_BxTxD) * torch.tanh(ys_t)).sum() + sum(
        torch.sin((k + 1.0) * a).sum() for k, a in enumerate(h_n_t)
    )
    loss_t.backward()

    ct.assert_close(ys, ys_t.detach().numpy(), TOL, "outputs")
    for a, b in zip(h_n, h_n_t, strict=True):
        ct.assert_close(a, b.detach().numpy(), TOL, "final states")
    ct.assert_close(d_xs, x_t.grad.numpy(), TOL, "d inputs")
    d_state = interop.stack_to_torch(stack, d_params)
    for name, p in module.named_parameters():
        got, want = d_state[name], p.grad.numpy()
        if name.startswith("bias_hh"):
            # Folded into our b (LSTM: all of it; GRU: the r and z blocks), where its gradient
            # is bias_ih's, compared there; the GRU's n block is our b_hn.
            if mode == "LSTM":
                continue
            got, want = got[2 * H :], want[2 * H :]
        ct.assert_close(got, want, TOL, f"d {name}")


# -- JAX transformations --------------------------------------------------------------------------
@needs_extension
def test_vmap_over_a_leading_axis_equals_separate_calls():
    """vmap runs the primitive once per mapped element (vmap_method='sequential')."""
    cell = CELLS["gru"]
    params, _, _ = _inputs(cell, 3, 7)
    xs_KxBxTxI = ct.random_inputs((2, 3, 7, I), seed=6)
    scan = lambda p, x: cells.scan(cell, p, x, backend="onednn")[0]
    mapped = jax.jit(jax.vmap(scan, (None, 0)))(params, xs_KxBxTxI)
    for k in range(2):
        ct.assert_close(mapped[k], scan(params, xs_KxBxTxI[k]), 1e-6, f"vmapped element {k}")
    grads = jax.grad(lambda p: jnp.sum(jax.vmap(scan, (None, 0))(p, xs_KxBxTxI) ** 2))(params)
    grads_ref = jax.grad(
        lambda p: sum(jnp.sum(cells.reference_scan(cell, p, x)[0] ** 2) for x in xs_KxBxTxI)
    )(params)
    for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(grads_ref), strict=True):
        ct.assert_close(a, b, TOL, "vmapped gradients")


@needs_extension
def test_training_step_with_donated_buffers_equals_without():
    cell = CELLS["lstm"]
    params, xs, carry = _inputs(cell, 4, 9)

    def step(p, x):
        loss, grads = jax.value_and_grad(
            lambda q: jnp.mean(cells.scan(cell, q, x, backend="onednn")[0] ** 2)
        )(p)
        return jax.tree.map(lambda a, g: a - 0.1 * g, p, grads), loss

    plain = jax.jit(step)
    donated = jax.jit(step, donate_argnums=(0,))
    want, loss_want = plain(params, xs)
    copy = jax.tree.map(jnp.copy, params)
    got, loss_got = donated(copy, xs)
    assert float(loss_got) == float(loss_want)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_array_equal(a, b)


@needs_extension
def test_empty_batch_and_forward_mode_are_handled():
    cell = CELLS["lstm"]
    params, _, carry = _inputs(cell, 2, 3)
    ys, final = cells.scan(cell, params, jnp.zeros((2, 0, I)), carry=carry, backend="onednn")
    assert ys.shape == (2, 0, H)
    np.testing.assert_array_equal(final.h, carry.h)
    xs = ct.random_inputs((2, 3, I))
    with pytest.raises(TypeError):  # a custom VJP: reverse mode only, as backward='fused'
        jax.jvp(lambda x: cells.scan(cell, params, x, backend="onednn")[0], (xs,), (xs,))


# -- what it refuses, and 'auto' ------------------------------------------------------------------
@pytest.mark.parametrize(
    "cell, options, message",
    [
        (cells.LSTM(H, peephole=True), {}, "plain LSTM and GRU only"),
        (cells.GRU(H, layer_norm=True), {}, "plain LSTM and GRU only"),
        (cells.SimpleRNN(H), {}, "plain LSTM and GRU only"),
        (cells.LSTM(H), {"lengths": jnp.array([3, 1])}, "does not implement lengths"),
        (cells.LSTM(H), {"resets": jnp.zeros((2, 3), bool)}, "does not implement resets"),
        (cells.LSTM(H), {"return_trace": True}, "does not implement return_trace"),
        (cells.LSTM(H), {"zoneout": 0.1}, "does not implement zoneout"),
        (cells.LSTM(H, param_dtype=jnp.bfloat16), {}, "takes float32"),
    ],
)
def test_onednn_refuses_in_one_line_and_auto_falls_back(cell, options, message):
    params = cell.init(jax.random.key(0), I)
    xs = ct.random_inputs((2, 3, I))
    if not onednn_rnn.available():
        message = "not built|disabled|does not load|plain LSTM|does not implement|float32"
    with pytest.raises(ValueError, match=f"backend='onednn' cannot run this call: .*({message})"):
        cells.scan(cell, params, xs, backend="onednn", **options)
    got = cells.scan(cell, params, xs, backend="auto", **options)
    want = cells.scan(cell, params, xs, **options)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_array_equal(a, b)


@needs_extension
@pytest.mark.parametrize(
    "cell, batch, used",
    [
        (cells.LSTM(512), 8, True),  # measured faster
        (cells.LSTM(512), 4, False),
        (cells.LSTM(256), 32, False),  # measured slower
        (cells.GRU(512), 16, False),
        (cells.GRU(1024), 16, True),
    ],
)
def test_auto_takes_onednn_where_it_was_measured_faster(cell, batch, used):
    params = cell.init(jax.random.key(0), 3)
    xs = jnp.zeros((batch, 2, 3))
    jaxpr = str(jax.make_jaxpr(lambda p, x: cells.scan(cell, p, x, backend="auto"))(params, xs))
    assert ("onednn" in jaxpr) == used


def test_a_float64_carry_is_refused_not_narrowed(x64):
    """cells.scan computes in float64 when a given carry is float64; oneDNN computes in float32,
    so 'onednn' refuses and 'auto' runs XLA in float64."""
    cell = CELLS["lstm"]
    params, xs, carry = _inputs(cell, 2, 3)
    carry = cells.LSTMState(*(c.astype(jnp.float64) for c in carry))
    message = "takes float32" if onednn_rnn.available() else "cannot run this call"
    with pytest.raises(ValueError, match=message):
        cells.scan(cell, params, xs, carry=carry, backend="onednn")
    ys, _ = cells.scan(cell, params, xs, carry=carry, backend="auto")
    assert ys.dtype == jnp.float64


def test_without_the_extension_onednn_says_why_and_auto_runs_xla(monkeypatch):
    """A machine where the build did not happen: the library file is missing."""
    monkeypatch.setattr(onednn_rnn, "LIBRARY", pathlib.Path("/nonexistent/_onednn_rnn.so"))
    assert not onednn_rnn.available()
    assert "not built" in onednn_rnn.unavailable()
    cell = CELLS["lstm"]
    params, xs, carry = _inputs(cell, 2, 4)
    with pytest.raises(ValueError, match="extension is not built .* cells.kernels.native.build"):
        cells.scan(cell, params, xs, carry=carry, backend="onednn")
    ys, final = cells.scan(cell, params, xs, carry=carry, backend="auto")
    ys_ref, final_ref = cells.scan(cell, params, xs, carry=carry)
    np.testing.assert_array_equal(ys, ys_ref)


def test_threads_follow_xla(monkeypatch):
    monkeypatch.delenv("RNN_CELLS_ONEDNN_THREADS", raising=False)
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
    assert onednn_rnn.threads() == 1
    monkeypatch.setenv("XLA_FLAGS", "")
    assert onednn_rnn.threads() >= 1
    monkeypatch.setenv("RNN_CELLS_ONEDNN_THREADS", "3")
    assert onednn_rnn.threads() == 3


# -- the build ------------------------------------------------------------------------------------
def test_build_refuses_a_sycl_onednn_and_a_missing_one(tmp_path, monkeypatch):
    """Intel's PyPI wheels are SYCL builds; a root with one is named and refused."""
    config = tmp_path / "include" / "oneapi" / "dnnl" / "dnnl_config.h"
    config.parent.mkdir(parents=True)
    config.write_text(
        "#define DNNL_CPU_RUNTIME DNNL_RUNTIME_SYCL\n"
        "#define DNNL_CPU_THREADING_RUNTIME DNNL_RUNTIME_TBB\n"
    )
    monkeypatch.setenv("ONEDNN_ROOT", str(tmp_path))
    monkeypatch.setattr(build, "SEARCH_ROOTS", ())
    with pytest.raises(build.BuildError, match=r"refused: .* \(CPU runtime DNNL_RUNTIME_SYCL\)"):
        build.find_onednn()
    monkeypatch.delenv("ONEDNN_ROOT")
    with pytest.raises(build.BuildError, match="no oneDNN .* onednn-devel-cpu-gomp"):
        build.find_onednn()


def test_build_without_a_compiler_says_so_and_exits_0(monkeypatch, capsys):
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    monkeypatch.setattr(build, "TARGET", pathlib.Path("/nonexistent/_onednn_rnn.so"))
    if not onednn_rnn.available():  # no oneDNN here: the build stops at that first
        assert build.main(["--quiet"]) == 0
        assert "not built" in capsys.readouterr().err
        return
    assert build.main(["--quiet"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("oneDNN extension not built:"), err
    assert build.main(["--quiet", "--require"]) == 1
