"""Speed of our LSTM/GRU against flax.linen and PyTorch, interleaved in one process.

    python -m experiments.bench                      # default grid, about 10 minutes on 2 cores
    python -m experiments.bench --quick              # smoke test (seconds)
    python -m experiments.bench --json=experiments/results/bench_cpu.json
    python -m experiments.bench --cells=lstm --batch=32 --seq_len=128 --hidden=512

For every (cell, B, T, H) all implementations get the same weights (converted so all compute
the same function, checked before timing), then each repetition times one call of every
implementation in turn, so background load hits them alike; we report medians. Modes: 'fwd'
(outputs only) and 'fwd+bwd' (loss sum(ys), gradients w.r.t. all weights and the inputs).
Implementations: 'ours' (`cells.scan`, backward='fused'), 'ours-autodiff' (`cells.scan`,
backward='autodiff'), 'flax' (nn.RNN over nn.OptimizedLSTMCell / nn.GRUCell), 'torch'
(nn.LSTM / nn.GRU, torch.set_num_threads = the core count), when torch is installed.

FLOPs count the GEMMs only: 2 B T (I + H) G H forward and three times that forward+backward
(G = 4 for LSTM, 3 for GRU; input size I = H here). Shapes whose forward+backward exceeds
--max_gflop are skipped (listed in the JSON), which trims the default grid to about 10 minutes.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

import cells

_CELLS = flags.DEFINE_list("cells", ["lstm", "gru"], "Cells to run: lstm, gru.")
_BATCH = flags.DEFINE_list("batch", ["1", "32", "64"], "Batch sizes B.")
_SEQ_LEN = flags.DEFINE_list("seq_len", ["128", "1024"], "Sequence lengths T.")
_HIDDEN = flags.DEFINE_list("hidden", ["128", "256", "512", "1024"], "Hidden sizes H (= I).")
_MODES = flags.DEFINE_list("modes", ["fwd", "fwd+bwd"], "Modes: fwd, fwd+bwd.")
_IMPLS = flags.DEFINE_list(
    "impls", ["ours", "ours-autodiff", "flax", "torch"], "Implementations to compare."
)
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed repetitions per implementation (median).")
_MAX_GFLOP = flags.DEFINE_float(
    "max_gflop", 100.0, "Skip shapes whose forward+backward needs more GFLOP than this."
)
_QUICK = flags.DEFINE_bool("quick", False, "Tiny grid, 2 repeats: a smoke test.")
_JSON = flags.DEFINE_string("json", None, "Write the records to this JSON file.")
_ATOL = flags.DEFINE_float("atol", 2e-4, "Agreement tolerance of outputs and input gradients.")

_GATES = {"lstm": 4, "gru": 3}


def gemm_flops(cell: str, batch: int, steps: int, hidden: int, mode: str) -> float:
    fwd = 2.0 * batch * steps * (hidden + hidden) * _GATES[cell] * hidden
    return fwd if mode == "fwd" else 3.0 * fwd


def _our_cell(name: str, hidden: int):
    if name == "lstm":
        return cells.LSTM(hidden)
    return cells.GRU(hidden, reset_after=True)


# -- weight conversion (our fused layout -> flax, torch) ---------------------------------------
def to_flax(name: str, params) -> dict:
    """Our params as nn.RNN(nn.OptimizedLSTMCell | nn.GRUCell) variables (same function)."""
    hidden = params["w_hh"].shape[0]
    gates = cells.LSTM.gate_names if name == "lstm" else cells.GRU.gate_names
    w_ih = jnp.split(params["w_ih"], len(gates), axis=1)
    w_hh = jnp.split(params["w_hh"], len(gates), axis=1)
    b = jnp.split(params["b"], len(gates))
    tree = {}
    for k, g in enumerate(gates):
        if name == "lstm":  # input Dense without bias, recurrent Dense with the whole bias
            tree["i" + g] = {"kernel": w_ih[k]}
            tree["h" + g] = {"kernel": w_hh[k], "bias": b[k]}
        else:  # GRUCell: input Dense with bias; recurrent bias only on hn
            tree["i" + g] = {"kernel": w_ih[k], "bias": b[k]}
            tree["h" + g] = {"kernel": w_hh[k]}
    if name == "gru":
        tree["hn"]["bias"] = params.get("b_hn", jnp.zeros((hidden,)))
    return {"params": {"cell": tree}}


def to_torch(name: str, params, module) -> None:
    """Copies our params into a torch nn.LSTM / nn.GRU (gate order i,f,g,o / r,z,n as ours)."""
    import torch

    with torch.no_grad():
        module.weight_ih_l0.copy_(torch.from_numpy(np.asarray(params["w_ih"]).T.copy()))
        module.weight_hh_l0.copy_(torch.from_numpy(np.asarray(params["w_hh"]).T.copy()))
        module.bias_ih_l0.copy_(torch.from_numpy(np.array(params["b"])))
        b_hh = np.zeros_like(np.asarray(params["b"]))
        if name == "gru":
            hidden = params["w_hh"].shape[0]
            b_hh[2 * hidden :] = np.asarray(params["b_hn"])
        module.bias_hh_l0.copy_(torch.from_numpy(b_hh))


# -- one implementation: a callable per mode returning numpy outputs for the agreement check --
def _jax_fns(apply):
    """apply(variables, xs) -> ys. Returns {mode: (jitted fn, compile seconds)}."""

    def loss(variables, xs):
        return jnp.sum(apply(variables, xs))

    return {"fwd": jax.jit(apply), "fwd+bwd": jax.jit(jax.grad(loss, argnums=(0, 1)))}


def build(impl: str, name: str, params, xs, mode: str):
    """Returns (run() -> result, check() -> (ys or dxs as numpy), compile_s)."""
    if impl in ("ours", "ours-autodiff", "flax"):
        if impl == "flax":
            import flax.linen as nn

            module = nn.RNN(
                nn.OptimizedLSTMCell(params["w_hh"].shape[0])
                if name == "lstm"
                else nn.GRUCell(params["w_hh"].shape[0])
            )
            variables = to_flax(name, params)
            apply = module.apply
        else:
            cell = _our_cell(name, params["w_hh"].shape[0])
            backward = "fused" if impl == "ours" else "autodiff"
            variables = params

            def apply(p, x):
                return cells.scan(cell, p, x, backward=backward)[0]

        fn = _jax_fns(apply)[mode]
        t0 = time.perf_counter()
        compiled = fn.lower(variables, xs).compile()
        compile_s = time.perf_counter() - t0

        def run():
            return jax.block_until_ready(compiled(variables, xs))

        def check():
            out = run()
            return np.asarray(out if mode == "fwd" else out[1])

        return run, check, compile_s

    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    hidden = params["w_hh"].shape[0]
    module = (torch.nn.LSTM if name == "lstm" else torch.nn.GRU)(
        xs.shape[-1], hidden, batch_first=True
    )
    to_torch(name, params, module)
    x = torch.from_numpy(np.asarray(xs)).requires_grad_(mode == "fwd+bwd")

    def run():
        if mode == "fwd":
            with torch.no_grad():
                return module(x)[0]
        module.zero_grad(set_to_none=True)
        x.grad = None
        module(x)[0].sum().backward()
        return x.grad

    def check():
        return run().detach().numpy()

    return run, check, 0.0


def _peak_rss_mb() -> float:
    """This process's peak resident set so far (Linux ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_shape(name, batch, steps, hidden, mode, impls, repeats, atol):
    """Times all `impls` on one shape, interleaved; returns a list of records."""
    cell = _our_cell(name, hidden)
    params = cell.init(jax.random.key(0), hidden)
    if "b_hn" in params:
        params["b_hn"] = 0.1 * jax.random.normal(jax.random.key(2), params["b_hn"].shape)
    params["b"] = 0.1 * jax.random.normal(jax.random.key(3), params["b"].shape)
    xs = jax.random.normal(jax.random.key(1), (batch, steps, hidden), jnp.float32)
    runs, compile_s, ref = {}, {}, None
    for impl in impls:
        run, check, compile_s[impl] = build(impl, name, params, xs, mode)
        got = check()  # also the first warm-up call
        if ref is None:
            ref = got
        err = float(np.max(np.abs(got - ref)))
        if not err <= atol * max(1.0, float(np.max(np.abs(ref)))):
            raise AssertionError(
                f"{impl} disagrees with {impls[0]} on {name} B={batch} T={steps} H={hidden} "
                f"{mode}: max abs diff {err:.3g}"
            )
        run()
        runs[impl] = run
    times = {impl: [] for impl in impls}
    for _ in range(repeats):
        for impl in impls:
            t0 = time.perf_counter()
            runs[impl]()
            times[impl].append(time.perf_counter() - t0)
    flops = gemm_flops(name, batch, steps, hidden, mode)
    records = []
    for impl in impls:
        sec = statistics.median(times[impl])
        records.append(
            {
                "impl": impl,
                "cell": name,
                "batch": batch,
                "seq_len": steps,
                "hidden": hidden,
                "mode": mode,
                "seconds": sec,
                "seconds_all": times[impl],
                "tokens_per_s": batch * steps / sec,
                "gflops_per_s": flops / sec / 1e9,
                "compile_s": compile_s[impl],
                "peak_rss_mb": _peak_rss_mb(),
                "loadavg": os.getloadavg(),
            }
        )
    return records


def _available(impls):
    out = []
    for impl in impls:
        if impl == "torch":
            try:
                import torch  # noqa: F401
            except ImportError:
                print("torch not installed: skipping it", file=sys.stderr)
                continue
        out.append(impl)
    return out


def format_table(records) -> str:
    """One row per (cell, B, T, H, mode): tokens/s per impl and ours' ratios."""
    impls = list(dict.fromkeys(r["impl"] for r in records))
    rows, keyed = {}, {}
    for r in records:
        key = (r["cell"], r["batch"], r["seq_len"], r["hidden"], r["mode"])
        rows.setdefault(key, {})[r["impl"]] = r["tokens_per_s"]
        keyed[key] = None
    head = "cell  B     T     H     mode     " + "".join(f"{i:>14}" for i in impls)
    others = [i for i in ("flax", "torch") if i in impls]
    head += "".join(f"  ours/{o:<6}" for o in others)
    lines = [head, "-" * len(head)]
    for key, tps in rows.items():
        cell, b, t, h, mode = key
        line = f"{cell:<5} {b:<5} {t:<5} {h:<5} {mode:<8} "
        line += "".join(f"{tps.get(i, float('nan')):>14.0f}" for i in impls)
        for o in others:
            ratio = tps.get("ours", float("nan")) / tps.get(o, float("nan"))
            line += f"  {ratio:>10.2f}x"
        lines.append(line)
    return "\n".join(lines)


def main(argv):
    del argv
    if _QUICK.value:
        grid = [(c, 2, 8, 16) for c in _CELLS.value]
        repeats = 2
    else:
        grid = [
            (c, int(b), int(t), int(h))
            for c in _CELLS.value
            for h in _HIDDEN.value
            for b in _BATCH.value
            for t in _SEQ_LEN.value
        ]
        repeats = _REPEATS.value
    impls = _available(_IMPLS.value)
    records, skipped = [], []
    start = time.perf_counter()
    for name, b, t, h in grid:
        if gemm_flops(name, b, t, h, "fwd+bwd") / 1e9 > _MAX_GFLOP.value:
            skipped.append({"cell": name, "batch": b, "seq_len": t, "hidden": h})
            continue
        for mode in _MODES.value:
            recs = bench_shape(name, b, t, h, mode, impls, repeats, _ATOL.value)
            records.extend(recs)
            print(format_table(recs).splitlines()[-1], flush=True)
    print()
    print(format_table(records))
    if skipped:
        print(f"skipped (> {_MAX_GFLOP.value} GFLOP): {skipped}")
    result = {
        "records": records,
        "skipped": skipped,
        "wall_s": time.perf_counter() - start,
        "command": " ".join(sys.argv),
        "hardware": {
            "cpu_count": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "jax": jax.__version__,
            "backend": jax.default_backend(),
        },
        "loadavg_end": os.getloadavg(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if _JSON.value:
        os.makedirs(os.path.dirname(os.path.abspath(_JSON.value)), exist_ok=True)
        with open(_JSON.value, "w") as f:
            json.dump(result, f, indent=1)
        print(f"wrote {_JSON.value}")
    del result


if __name__ == "__main__":
    app.run(main)
