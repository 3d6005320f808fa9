"""Speed, memory and precision of the parallel-scan and head-wise cells (issue: minGRU/minLSTM,
sLSTM, head-wise recurrence), every implementation interleaved in one process.

    python -m experiments.studies.cpu_speed.bench_parallel          # about 6 min, 2 cores
    python -m experiments.studies.cpu_speed.bench_parallel \
        --json=/tmp/bench_parallel_cpu.json
    python -m experiments.studies.cpu_speed.bench_parallel --quick  # smoke test

Three parts, each printed as a table and written to --json (refused if the file exists, unless
--force):

  parallel   forward+backward tokens/s (B*T / median seconds) at I = H = 256 of
             'gru' / 'lstm' (`cells.scan`, hand-written backward, the library's fastest
             sequential path), 'mingru-*' / 'minlstm-*' / 'rglru-*' (the RG-LRU: 3H gate
             columns, measured against the minLSTM's 3H ceiling) in `cells.scan`'s 'parallel'
             mode (gates at once, associative scan) and 'hoisted' mode (gates at once, elementwise
             loop; what mode='auto' runs on CPU), 'mingru-sequential' (gates step by step in
             a `lax.scan`), and 'mingru-input-gemms' / 'minlstm-input-gemms' (the cell's
             input projection x W_ih + b alone, [I, 2H] / [I, 3H], forward+backward: what the
             cell would cost if everything else were free, its ceiling). `share_of_ceiling` =
             ceiling seconds / cell seconds (the minLSTM rows against the 3H ceiling, all
             others against the minGRU's 2H one). Peak memory: XLA's buffer assignment of the
             compiled forward+backward program (temporaries + outputs, arguments excluded).
  headwise   forward+backward milliseconds at B=32, T=128, H=512 of the dense LSTM (fused and
             autodiff backward), the head-wise LSTM (NH = 4, 8) and the sLSTM (NH = 1, 4, 8),
             all autodiff unless named; ratios to the dense LSTM with the fused backward.
  mlstm      forward+backward tokens/s at I = H = 256 of the mLSTM (4 heads of 64) in its three
             forms, 'mlstm-sequential' (the recurrent step in a `lax.scan`), 'mlstm-hoisted'
             (chunkwise, chunks of 64: mode='auto') and 'mlstm-parallel' (one [T, T] chunk),
             beside 'lstm' and 'gru' (hand-written backward) and 'slstm' (4 heads), B = 1 and
             32; and the peak memory of each form's compiled forward+backward at B = 1 against
             T (compiled only, not run: the parallel form's [T, T] matrices grow as T^2).
  convlstm   forward+backward frames/s of one ConvLSTM layer as the moving-digits study runs it
             (32 x 32 grid, 8 input and 8 state maps, 5 x 5 kernels, T = 20) at B = 1 and 32,
             with its convolutions as im2col + one GEMM ('patches', the CPU default) and as
             XLA's convolution ('lax'), beside the dense LSTM (H = 256, hand-written backward)
             at the same B and T for scale; at most 3 repetitions (one 'lax' call at B = 32
             takes tens of seconds).
  precision  max |h - h_float64| / max |h_float64| of the minGRU/minLSTM in float32 at T in
             {1024, 4096, 16384}: the parallel mode, the sequential mode, and the log-space
             form of Feng et al. (log h_t = a*_t + logcumsumexp(log b - a*)), which
             `cells.linear_scan` does not use because of this drift.

The loss is sum(ys * w) with a fixed random w (every output matters); gradients are taken
w.r.t. all parameters and the inputs.
"""

from __future__ import annotations

import functools
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

import cells
from experiments.lab import records, timing
from train import provenance


def define_flags() -> None:
    """The command-line flags (defined on demand: tests import this module beside bench.py)."""
    flags.DEFINE_list(
        "parts", ["parallel", "headwise", "mlstm", "convlstm", "precision"], "Parts to run."
    )
    flags.DEFINE_integer("repeats", 7, "Timed repetitions per implementation (median).")
    flags.DEFINE_bool("quick", False, "Tiny shapes, 2 repeats: a smoke test.")
    flags.DEFINE_string("json", None, "Write the results to this JSON file.")
    flags.DEFINE_bool("force", False, "Replace an existing --json file.")


PARALLEL_SHAPES = [(1, 256), (1, 1024), (1, 4096), (1, 16384), (32, 1024)]  # (B, T), H = 256
HEADWISE_SHAPE = (32, 128, 512)  # B, T, H
MLSTM_SHAPES = [(1, 256), (1, 1024), (1, 4096), (32, 256), (32, 1024)]  # (B, T), H = 256
MLSTM_MEMORY_LENGTHS = [256, 1024, 4096, 16384]  # T at B = 1, H = 256
MLSTM_FORMS = ("sequential", "hoisted", "parallel")
CONVLSTM_LAYER = {"grid": (32, 32), "maps": 8, "kernel": 5, "steps": 20}  # moving digits' layer
CONVLSTM_BATCHES = (1, 32)
CONVLSTM_METHODS = ("patches", "lax")


def _loss_and_grad(cell, params, xs, **scan_kwargs):
    """The jitted forward+backward of sum(ys * w) w.r.t. (params, xs)."""
    w = jax.random.normal(jax.random.key(9), xs.shape[:2] + (cell.output_size,))

    def loss(p, x):
        ys, _ = cells.scan(cell, p, x, **scan_kwargs)
        return jnp.sum(ys * w)

    return jax.jit(jax.grad(loss, argnums=(0, 1)))


def _input_gemms(cell, params, xs):
    """The cell's input projection alone (forward+backward), its sequence path's floor."""
    w = jax.random.normal(jax.random.key(9), xs.shape[:2] + (cell.num_gates * cell.hidden_size,))

    def loss(p, x):
        return jnp.sum(cell.input_projection(p, x) * w)

    return jax.jit(jax.grad(loss, argnums=(0, 1)))


def _time_interleaved(fns: dict, args: dict, repeats: int) -> dict:
    """name -> {'median_s', 'compile_s', 'peak_bytes'}: one call of each fn per repetition."""
    compiled, out = {}, {}
    for name, fn in fns.items():
        t0 = time.perf_counter()
        compiled[name] = fn.lower(*args[name]).compile()
        memory = timing.xla_memory(compiled[name])  # what the run adds: temporaries, outputs
        peak = None if memory is None else memory["temp"] + memory["output"]
        out[name] = {"compile_s": time.perf_counter() - t0, "peak_bytes": peak}
        jax.block_until_ready(compiled[name](*args[name]))  # warm-up
    calls = {name: functools.partial(compiled[name], *args[name]) for name in fns}
    for name, seconds in timing.interleaved(calls, repeats).items():
        out[name]["median_s"] = statistics.median(seconds)
    return out


def _time_made(made: dict, batch, steps, hidden, repeats, extra=None) -> tuple[dict, dict]:
    """(timings, args) of every {name: (cell, scan options)} in `made`, interleaved, each on
    its own [B, T, hidden] inputs; `extra` {name: (make, source)} times make(params, xs) on
    the inputs of the entry `source` beside them."""
    fns, args = {}, {}
    for name, (cell, kwargs) in made.items():
        params, xs = _case(cell, batch, steps, hidden)
        fns[name], args[name] = _loss_and_grad(cell, params, xs, **kwargs), (params, xs)
    for name, (make, source) in (extra or {}).items():
        fns[name], args[name] = make(*args[source]), args[source]
    return _time_interleaved(fns, args, repeats), args


def _case(cell, batch, steps, inputs, seed=0):
    params = cell.init(jax.random.key(seed), inputs)
    xs = jax.random.normal(jax.random.key(seed + 1), (batch, steps, inputs))
    return params, xs


def parallel_part(shapes, hidden, repeats) -> list[dict]:
    made = {
        "gru": (cells.GRU(hidden), {"backward": "fused"}),
        "lstm": (cells.LSTM(hidden), {"backward": "fused"}),
        "mingru-parallel": (cells.MinGRU(hidden), {"mode": "parallel"}),
        "mingru-hoisted": (cells.MinGRU(hidden), {"mode": "hoisted"}),
        "minlstm-parallel": (cells.MinLSTM(hidden), {"mode": "parallel"}),
        "minlstm-hoisted": (cells.MinLSTM(hidden), {"mode": "hoisted"}),
        "mingru-sequential": (cells.MinGRU(hidden), {"mode": "sequential"}),
        "rglru-parallel": (cells.RGLRU(hidden), {"mode": "parallel"}),
        "rglru-hoisted": (cells.RGLRU(hidden), {"mode": "hoisted"}),
    }
    rows = []
    for batch, steps in shapes:
        ceilings = {  # each cell's own input GEMM (2H, 3H wide), on that cell's inputs
            f"{c}-input-gemms": (functools.partial(_input_gemms, made[f"{c}-parallel"][0]),
                                 f"{c}-parallel")
            for c in ("mingru", "minlstm")
        }  # fmt: skip
        timed, _ = _time_made(made, batch, steps, hidden, repeats, ceilings)
        gru_s = timed["gru"]["median_s"]
        for name, t in timed.items():
            ceiling = "minlstm" if name.startswith(("minlstm", "rglru")) else "mingru"
            ceiling_s = timed[f"{ceiling}-input-gemms"]["median_s"]
            rows.append(
                {
                    "impl": name,
                    "batch": batch,
                    "seq_len": steps,
                    "hidden": hidden,
                    **t,
                    "tokens_per_s": batch * steps / t["median_s"],
                    "speedup_vs_gru": gru_s / t["median_s"],
                    "share_of_ceiling": ceiling_s / t["median_s"],
                }
            )
        print(format_parallel([r for r in rows if (r["batch"], r["seq_len"]) == (batch, steps)]))
    return rows


def headwise_part(shape, repeats) -> list[dict]:
    batch, steps, hidden = shape
    made = {"lstm (fused)": (cells.LSTM(hidden), {"backward": "fused"})}
    made["lstm"] = (cells.LSTM(hidden), {})
    for heads in (4, 8):
        made[f"lstm NH={heads}"] = (cells.LSTM(hidden, num_heads=heads), {})
    for heads in (1, 4, 8):
        made[f"slstm NH={heads}"] = (cells.SLSTM(hidden, num_heads=heads), {})
    timed, args = _time_made(made, batch, steps, hidden, repeats)
    base_s = timed["lstm (fused)"]["median_s"]
    rows = [
        {
            "impl": name,
            "batch": batch,
            "seq_len": steps,
            "hidden": hidden,
            "recurrent_weights": int(np.prod(args[name][0]["w_hh"].shape)),
            **t,
            "ms": 1e3 * t["median_s"],
            "ratio_vs_dense_fused": t["median_s"] / base_s,
        }
        for name, t in timed.items()
    ]
    print(format_headwise(rows))
    return rows


def _mlstm_made(hidden: int) -> dict:
    cell = cells.MLSTM(hidden, num_heads=4)
    made = {
        "lstm": (cells.LSTM(hidden), {"backward": "fused"}),
        "gru": (cells.GRU(hidden), {"backward": "fused"}),
        "slstm": (cells.SLSTM(hidden, num_heads=4), {}),
    }
    return made | {f"mlstm-{form}": (cell, {"mode": form}) for form in MLSTM_FORMS}


def mlstm_part(shapes, hidden, memory_lengths, repeats) -> dict:
    """The mLSTM's forms beside the gated cells (tokens/s), and each form's memory against T."""
    made = _mlstm_made(hidden)
    speed = []
    for batch, steps in shapes:
        timed, _ = _time_made(made, batch, steps, hidden, repeats)
        lstm_s = timed["lstm"]["median_s"]
        rows = [
            {
                "impl": name,
                "batch": batch,
                "seq_len": steps,
                "hidden": hidden,
                **t,
                "tokens_per_s": batch * steps / t["median_s"],
                "ratio_vs_lstm": t["median_s"] / lstm_s,
            }
            for name, t in timed.items()
        ]
        print(format_mlstm_speed(rows))
        speed += rows
    memory = []
    for steps in memory_lengths:
        row = {"seq_len": steps, "hidden": hidden}
        for form in MLSTM_FORMS:
            cell, kwargs = made[f"mlstm-{form}"]
            params, xs = _case(cell, 1, steps, hidden)
            compiled = _loss_and_grad(cell, params, xs, **kwargs).lower(params, xs).compile()
            used = timing.xla_memory(compiled)
            row[form] = None if used is None else used["temp"] + used["output"]
        memory.append(row)
    print(format_mlstm_memory(memory))
    return {"speed": speed, "memory": memory}


def convlstm_part(layer: dict, batches, repeats, lstm_hidden: int = 256) -> list[dict]:
    """One ConvLSTM layer's frames/s with each convolution method, beside the dense LSTM."""
    grid, maps, steps = layer["grid"], layer["maps"], layer["steps"]
    width = int(np.prod(grid)) * maps  # a flattened frame of `maps` channels
    made = {  # name: (cell, scan options, input width)
        f"convlstm-{m}": (
            cells.ConvLSTM(maps, spatial_shape=grid, kernel_size=layer["kernel"], conv_method=m),
            {},
            width,
        )
        for m in CONVLSTM_METHODS
    }
    made["lstm"] = (cells.LSTM(lstm_hidden), {"backward": "fused"}, lstm_hidden)
    rows = []
    for batch in batches:
        fns, args = {}, {}
        for name, (cell, kwargs, inputs) in made.items():
            args[name] = _case(cell, batch, steps, inputs)
            fns[name] = _loss_and_grad(cell, *args[name], **kwargs)
        timed = _time_interleaved(fns, args, repeats)
        patches_s = timed["convlstm-patches"]["median_s"]
        rows += [
            {
                "impl": name,
                "batch": batch,
                "seq_len": steps,
                "layer": None if name == "lstm" else {**layer, "grid": list(grid)},
                **t,
                "frames_per_s": batch * steps / t["median_s"],
                "time_vs_patches": t["median_s"] / patches_s,
            }
            for name, t in timed.items()
        ]
        print(format_convlstm([r for r in rows if r["batch"] == batch]))
    return rows


def _log_space(cell, params, xs, h0):
    """Feng et al.'s log-space parallel form, for the precision comparison only."""
    a, b, _ = cell.coefficients(params, cell.input_projection(params, xs))
    a_star = jnp.cumsum(jnp.log(a), axis=1)
    a_star = jnp.concatenate([jnp.zeros_like(a_star[:, :1]), a_star], axis=1)
    log_values = jnp.concatenate([jnp.log(h0)[:, None], jnp.log(b)], axis=1)
    log_h = a_star + jax.lax.cumlogsumexp(log_values - a_star, axis=1)
    return jnp.exp(log_h[:, 1:])


def _float64_states(cell, params, xs, h0):
    """h_t = a_t h_{t-1} + b_t in float64 NumPy from the float64 coefficients."""
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    x = np.asarray(xs, np.float64)
    pre = x @ p["w_ih"] + p["b"]
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))
    g = lambda v: np.where(v >= 0, v + 0.5, sig(v))
    if isinstance(cell, cells.MinGRU):
        z, cand = np.split(pre, 2, axis=-1)
        a, b = 1.0 - sig(z), sig(z) * g(cand)
    else:
        f, i, cand = np.split(pre, 3, axis=-1)
        f, i = sig(f), sig(i)
        a, b = f / (f + i), i / (f + i) * g(cand)
    h, out = np.asarray(h0, np.float64), np.empty_like(a)
    for t in range(a.shape[1]):
        h = a[:, t] * h + b[:, t]
        out[:, t] = h
    return out


def _relative_error(ys, exact) -> float:
    return float(np.abs(np.asarray(ys, np.float64) - exact).max() / np.abs(exact).max())


def _final_outputs(cell, params, xs, h0, mode):
    run = jax.jit(lambda p, x, c: cells.scan(cell, p, x, carry=c, mode=mode)[0])
    return run(params, xs, cells.RNNState(h0))


def precision_part(lengths) -> list[dict]:
    rows = []
    for name, cell in (("mingru", cells.MinGRU(16)), ("minlstm", cells.MinLSTM(16))):
        for steps in lengths:
            rng = np.random.default_rng(0)
            params = {
                k: jnp.asarray(0.5 * rng.standard_normal(v.shape), jnp.float32)
                for k, v in cell.init(jax.random.key(0), 4).items()
            }
            xs = jnp.asarray(rng.standard_normal((3, steps, 4)), jnp.float32)
            h0 = jnp.asarray(rng.uniform(0, 1, (3, 16)), jnp.float32)
            exact = _float64_states(cell, params, xs, h0)
            log_space = jax.jit(_log_space, static_argnums=0)(cell, params, xs, h0)
            rows.append(
                {
                    "cell": name,
                    "seq_len": steps,
                    **{
                        mode: _relative_error(_final_outputs(cell, params, xs, h0, mode), exact)
                        for mode in ("parallel", "sequential")
                    },
                    "log_space": _relative_error(log_space, exact),
                }
            )
    print(format_precision(rows))
    return rows


def _markdown(headers: list[str], cells_per_row: list[list[str]]) -> str:
    """A Markdown table from column headers and the formatted cells of each row."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells_per_row])


def _mib(r) -> str:
    return "-" if r["peak_bytes"] is None else f"{r['peak_bytes'] / 2**20:.1f}"


def format_parallel(rows) -> str:
    headers = ["impl", "B", "T", "tokens/s", "vs GRU", "share of ceiling", "peak MiB", "compile s"]
    return _markdown(
        headers,
        [
            [r["impl"], str(r["batch"]), str(r["seq_len"]), f"{r['tokens_per_s']:,.0f}",
             f"{r['speedup_vs_gru']:.2f}x", f"{r['share_of_ceiling']:.0%}", _mib(r),
             f"{r['compile_s']:.1f}"]
            for r in rows
        ],
    )  # fmt: skip


def format_headwise(rows) -> str:
    headers = ["impl", "w_hh weights", "fwd+bwd ms", "vs dense LSTM (fused)", "peak MiB"]
    return _markdown(
        headers,
        [
            [r["impl"], f"{r['recurrent_weights']:,}", f"{r['ms']:.1f}",
             f"{r['ratio_vs_dense_fused']:.2f}x", _mib(r)]
            for r in rows
        ],
    )  # fmt: skip


def format_mlstm_speed(rows) -> str:
    headers = ["impl", "B", "T", "tokens/s", "time vs LSTM", "peak MiB", "compile s"]
    return _markdown(
        headers,
        [
            [r["impl"], str(r["batch"]), str(r["seq_len"]), f"{r['tokens_per_s']:,.0f}",
             f"{r['ratio_vs_lstm']:.2f}x", _mib(r), f"{r['compile_s']:.1f}"]
            for r in rows
        ],
    )  # fmt: skip


def format_mlstm_memory(rows) -> str:
    mib = lambda b: "-" if b is None else f"{b / 2**20:,.1f}"  # noqa: E731
    return _markdown(
        ["T", *(f"{form} MiB" for form in MLSTM_FORMS)],
        [[str(r["seq_len"]), *(mib(r[form]) for form in MLSTM_FORMS)] for r in rows],
    )


def format_convlstm(rows) -> str:
    headers = ["impl", "B", "T", "frames (tokens)/s", "time vs patches", "peak MiB", "compile s"]
    return _markdown(
        headers,
        [
            [r["impl"], str(r["batch"]), str(r["seq_len"]), f"{r['frames_per_s']:,.1f}",
             f"{r['time_vs_patches']:.2f}x", _mib(r), f"{r['compile_s']:.1f}"]
            for r in rows
        ],
    )  # fmt: skip


def format_precision(rows) -> str:
    headers = ["cell", "T", "parallel (linear space)", "sequential", "log space"]
    return _markdown(
        headers,
        [
            [r["cell"], str(r["seq_len"]), f"{r['parallel']:.1e}", f"{r['sequential']:.1e}",
             f"{r['log_space']:.1e}"]
            for r in rows
        ],
    )  # fmt: skip


def main(argv):
    del argv
    f = flags.FLAGS
    if f.json and os.path.exists(f.json) and not f.force:
        sys.exit(
            f"error: --json={f.json} exists (reference data); name another file or pass --force."
        )
    start = time.perf_counter()
    quick = f.quick
    repeats = 2 if quick else f.repeats
    result = {}
    if "parallel" in f.parts:
        shapes = [(1, 64), (2, 32)] if quick else PARALLEL_SHAPES
        result["parallel"] = parallel_part(shapes, 16 if quick else 256, repeats)
    if "headwise" in f.parts:
        result["headwise"] = headwise_part((2, 8, 16) if quick else HEADWISE_SHAPE, repeats)
    if "mlstm" in f.parts:
        result["mlstm"] = mlstm_part(
            [(1, 32), (2, 16)] if quick else MLSTM_SHAPES,
            16 if quick else 256,
            [16, 64] if quick else MLSTM_MEMORY_LENGTHS,
            repeats,
        )
    if "convlstm" in f.parts:
        layer = {"grid": (6, 5), "maps": 2, "kernel": 3, "steps": 4} if quick else CONVLSTM_LAYER
        result["convlstm"] = convlstm_part(
            layer, CONVLSTM_BATCHES, min(repeats, 3), lstm_hidden=16 if quick else 256
        )
    if "precision" in f.parts:
        result["precision"] = precision_part([64] if quick else [1024, 4096, 16384])
    result.update(
        {
            "wall_s": time.perf_counter() - start,
            "command": " ".join(
                ["python -m experiments.studies.cpu_speed.bench_parallel", *sys.argv[1:]]
            ),
            "commit": provenance.git_commit(),
            "hardware": {**provenance.hardware(), "jax": jax.__version__},
            "loadavg_end": os.getloadavg(),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
    )
    if f.json:
        records.write(f.json, result, overwrite=f.force)
        print(f"wrote {f.json}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
