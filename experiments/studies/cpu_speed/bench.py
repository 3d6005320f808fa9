"""Speed of our LSTM/GRU against flax.linen and PyTorch, interleaved in one process.

    python -m experiments.studies.cpu_speed.bench            # default grid, about 10 min, 2 cores
    python -m experiments.studies.cpu_speed.bench --quick              # smoke test (seconds)
    python -m experiments.studies.cpu_speed.bench --json=/tmp/bench_cpu.json
    python -m experiments.studies.cpu_speed.bench --cells=lstm --batch=32 --seq_len=128 --hidden=512

For every (cell, B, T, H) all implementations get the same weights (converted so all compute
the same function, checked before timing), then each repetition times one call of every
implementation in turn, so background load hits them alike; we report medians. Modes: 'fwd'
(outputs only) and 'fwd+bwd' (loss sum(ys), gradients w.r.t. all weights and the inputs).
Implementations: 'ours' (`cells.scan`, backward='fused'), 'ours-autodiff' (`cells.scan`,
backward='autodiff'), 'ours-hoisted' / 'ours-in_loop' (backward='fused' with that `projection`
instead of 'auto'; not in the default list), 'flax' (nn.RNN over nn.OptimizedLSTMCell /
nn.GRUCell), 'ours-onednn' (`cells.scan(..., backend='onednn')`: oneDNN's RNN primitive through
the optional extension, `cells.kernels.onednn_rnn`; on as many threads as XLA, skipped with a
line saying why where it is not built), 'torch' (nn.LSTM / nn.GRU, torch.set_num_threads = the
core count) and
'torch-1thread' (the same, one thread: on a machine shared with other jobs OpenMP's spinning
threads can slow PyTorch down many times; not in the default list), when torch is installed,
and 'gemms-only' (`gemm_floor.py`: our fused path's GEMMs with the gate math taken
out, a floor for what XLA's GEMMs allow; not in the default list, no agreement check).

FLOPs count the GEMMs only: 2 B T (I + H) G H forward and three times that forward+backward
(G = 4 for LSTM, 3 for GRU; input size I = H here). Shapes whose forward+backward exceeds
--max_gflop are skipped (listed in the JSON), which trims the default grid to about 10 minutes.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

import cells
from experiments.lab import timing
from experiments.studies.cpu_speed import gemm_floor
from train import host_memory, provenance

_CELLS = flags.DEFINE_list(
    "cells", ["lstm", "gru"], "Registered cells to run (flax and PyTorch have lstm, gru)."
)
_BATCH = flags.DEFINE_list("batch", ["1", "32", "64"], "Batch sizes B.")
_SEQ_LEN = flags.DEFINE_list("seq_len", ["128", "1024"], "Sequence lengths T.")
_HIDDEN = flags.DEFINE_list("hidden", ["128", "256", "512", "1024"], "Hidden sizes H (= I).")
_MODES = flags.DEFINE_list("modes", ["fwd", "fwd+bwd"], "Modes: fwd, fwd+bwd.")
_IMPLS = flags.DEFINE_list(
    "impls",
    ["ours", "ours-autodiff", "ours-onednn", "flax", "torch"],
    "Implementations to compare.",
)
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed repetitions per implementation (median).")
_MAX_GFLOP = flags.DEFINE_float(
    "max_gflop", 55.0, "Skip shapes whose forward+backward needs more GFLOP than this."
)
_QUICK = flags.DEFINE_bool("quick", False, "Tiny grid, 2 repeats: a smoke test.")
_JSON = flags.DEFINE_string("json", None, "Write the records to this JSON file.")
_ATOL = flags.DEFINE_float("atol", 2e-4, "Agreement tolerance of outputs and input gradients.")
_EXTRAS = flags.DEFINE_bool(
    "extras",
    False,
    "Instead of the grid: ptb_small step time, 2-layer compile time, and the "
    "peak memory of training at --long_seq_len.",
)
_EXTRAS_PARTS = flags.DEFINE_list(
    "extras_parts", ["ptb_small", "compile", "memory"], "Which --extras measurements to run."
)
_LONG_T = flags.DEFINE_integer("long_seq_len", 10_000, "T of the --extras memory runs.")
_CHILD = flags.DEFINE_string("memory_child", None, "Internal: one --extras memory run.")
_REUSE_MEMORY = flags.DEFINE_bool(
    "reuse_host_memory",
    True,
    "Keep freed host memory for reuse (train.host_memory: no per-call page faults); applies "
    "to every implementation in the process alike.",
)


def gemm_flops(cell: str, batch: int, steps: int, hidden: int, mode: str) -> float:
    """Matmul FLOPs (I = H): input and recurrent products (none for the IndRNN and the
    parallel cells), projection."""
    c = _our_cell(cell, hidden)
    gh = c.num_gates * hidden
    per_step = hidden * gh
    if not isinstance(c, cells.IndRNN | cells.LinearRecurrentCell):  # u * h; gates from x
        per_step += c.recurrent_input_size * gh
    per_step += hidden * getattr(c, "proj_size", 0)
    fwd = 2.0 * batch * steps * per_step
    return fwd if mode == "fwd" else 3.0 * fwd


def _our_cell(name: str, hidden: int) -> cells.Cell:
    """The registered cell `name` with its defaults (GRU: reset_after=True, as flax and torch);
    LSTMP projects to hidden / 2."""
    cls = cells.get(name)
    return cls(hidden, **cls.example_options(hidden))


# -- weight conversion (cells.interop: our fused layout -> flax, torch) ------------------------
def flax_variables(cell: cells.Cell, params) -> dict:
    """Our params as nn.RNN(nn.OptimizedLSTMCell | nn.GRUCell) variables (same function)."""
    return {"params": {"cell": cells.interop.to_flax(cell, params)["params"]}}


def load_torch(cell: cells.Cell, params, module) -> None:
    """Copies our params into a one-layer torch nn.LSTM / nn.GRU."""
    import torch

    state = cells.interop.to_torch(cell, params)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})


# -- one implementation: a callable per mode returning numpy outputs for the agreement check --
def _jax_fns(apply):
    """apply(variables, xs) -> ys. Returns {mode: (jitted fn, compile seconds)}."""

    def loss(variables, xs):
        return jnp.sum(apply(variables, xs))

    return {"fwd": jax.jit(apply), "fwd+bwd": jax.jit(jax.grad(loss, argnums=(0, 1)))}


def _compile(fn, *args):
    """fn (jitted) lowered and compiled for args: (compiled, (compile wall s, compile CPU s))."""
    t0, c0 = time.perf_counter(), time.process_time()
    compiled = fn.lower(*args).compile()
    return compiled, (time.perf_counter() - t0, time.process_time() - c0)


def build(impl: str, name: str, params, xs, mode: str):
    """Returns (run() -> result, check() -> ys or dxs as numpy, (compile wall s, CPU s)).

    check is None for 'gemms-only' (gemm_floor.py), whose outputs are not the cell's.
    """
    if impl == "gemms-only":
        fn = gemm_floor.make(name, params, xs.shape[0])[0 if mode == "fwd" else 1]
        compiled, compile_s = _compile(fn, params, xs)
        return (lambda: jax.block_until_ready(compiled(params, xs))), None, compile_s
    if impl in ("ours", "ours-autodiff", "ours-hoisted", "ours-in_loop", "ours-onednn", "flax"):
        if impl == "flax":
            import flax.linen as nn

            module = nn.RNN(
                nn.OptimizedLSTMCell(xs.shape[-1]) if name == "lstm" else nn.GRUCell(xs.shape[-1])
            )
            variables = flax_variables(_our_cell(name, xs.shape[-1]), params)
            apply = module.apply
        else:
            cell = _our_cell(name, xs.shape[-1])
            backward = "autodiff" if impl == "ours-autodiff" else "fused"
            projection = {"ours-hoisted": "hoisted", "ours-in_loop": "in_loop"}.get(impl, "auto")
            backend = "onednn" if impl == "ours-onednn" else "xla"
            variables = params

            def apply(p, x):
                return cells.scan(
                    cell, p, x, backward=backward, projection=projection, backend=backend
                )[0]

        compiled, compile_s = _compile(_jax_fns(apply)[mode], variables, xs)

        def run():
            return jax.block_until_ready(compiled(variables, xs))

        def check():
            out = run()
            return np.asarray(out if mode == "fwd" else out[1])

        return run, check, compile_s

    import torch

    threads = 1 if impl == "torch-1thread" else (os.cpu_count() or 1)
    hidden = xs.shape[-1]  # I = H in every benchmark shape
    proj_size = getattr(_our_cell(name, hidden), "proj_size", 0)
    proj = {"proj_size": proj_size} if proj_size else {}
    module = (torch.nn.GRU if name == "gru" else torch.nn.LSTM)(
        xs.shape[-1], hidden, batch_first=True, **proj
    )
    load_torch(_our_cell(name, hidden), params, module)
    x = torch.from_numpy(np.array(xs)).requires_grad_(mode == "fwd+bwd")

    def run():
        torch.set_num_threads(threads)  # the two torch impls share one global setting
        if mode == "fwd":
            with torch.no_grad():
                return module(x)[0]
        module.zero_grad(set_to_none=True)
        x.grad = None
        module(x)[0].sum().backward()
        return x.grad

    def check():
        return run().detach().numpy()

    return run, check, (0.0, 0.0)


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
        if check is None:  # a floor, not the cell's function: warm up only
            run()
            runs[impl] = run
            continue
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
    times = timing.interleaved({impl: runs[impl] for impl in impls}, repeats)
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
                "tokens_per_s_best": batch * steps / min(times[impl]),
                "gflops_per_s": flops / sec / 1e9,
                "compile_s": compile_s[impl][0],
                "compile_cpu_s": compile_s[impl][1],
                "peak_rss_mb": timing.peak_rss_mb(),
                "loadavg": os.getloadavg(),
            }
        )
    return records


# The cells each outside implementation has (flax's cells and the GEMMs-only floor: the
# classic two; PyTorch's nn.LSTM also with proj_size).
_OUTSIDE = {
    "flax": ("lstm", "gru"),
    "ours-onednn": ("lstm", "gru"),
    "gemms-only": ("lstm", "gru"),
    "torch": ("lstm", "gru", "lstmp"),
}


def impls_for(name: str, impls) -> list[str]:
    """The implementations of `impls` that exist for cell `name` (ours always)."""
    return [i for i in impls if name in _OUTSIDE.get(i.split("-1thread")[0], (name,))]


def _available(impls):
    out = []
    for impl in impls:
        if impl == "ours-onednn":
            from cells.kernels import onednn_rnn

            if not onednn_rnn.available():
                print(f"ours-onednn skipped: {onednn_rnn.unavailable()}", file=sys.stderr)
                continue
        if impl.startswith("torch"):
            try:
                import torch  # noqa: F401
            except ImportError:
                print("torch not installed: skipping it", file=sys.stderr)
                continue
        out.append(impl)
    return out


def _torch_version() -> str:
    import torch

    return torch.__version__


def _onednn_version() -> str:
    """The oneDNN the extension was built against, and the threads it runs on."""
    from cells.kernels import onednn_rnn

    return f"{onednn_rnn.version()}, {onednn_rnn.threads()} threads"


def format_table(records) -> str:
    """One row per (cell, B, T, H, mode): tokens/s per impl and ours' ratios."""
    impls = list(dict.fromkeys(r["impl"] for r in records))
    rows, keyed = {}, {}
    for r in records:
        key = (r["cell"], r["batch"], r["seq_len"], r["hidden"], r["mode"])
        rows.setdefault(key, {})[r["impl"]] = r["tokens_per_s"]
        keyed[key] = None
    head = "cell  B     T     H     mode     " + "".join(f"{i:>14}" for i in impls)
    others = [i for i in ("flax", "torch", "torch-1thread") if i in impls]
    pairs = [(o, "ours") for o in others]
    if "ours-onednn" in impls:  # oneDNN against PyTorch (which calls oneDNN) and our XLA path
        pairs += [(o, "ours-onednn") for o in ("torch", "ours") if o in impls]
    names = {"ours": "ours", "ours-onednn": "onednn"}
    head += "".join(f"  {names[mine] + '/' + o:>14}" for o, mine in pairs)
    lines = [head, "-" * len(head)]
    for key, tps in rows.items():
        cell, b, t, h, mode = key
        line = f"{cell:<5} {b:<5} {t:<5} {h:<5} {mode:<8} "
        line += "".join(f"{tps.get(i, float('nan')):>14.0f}" for i in impls)
        for o, mine in pairs:
            ratio = tps.get(mine, float("nan")) / tps.get(o, float("nan"))
            line += f"  {ratio:>13.2f}x"
        lines.append(line)
    return "\n".join(lines)


# -- extras: long-sequence training memory (one subprocess per variant) and compile time ------
_MEMORY_VARIANTS = {  # name -> cells.scan options
    "autodiff": {"backward": "autodiff"},
    "autodiff+remat": {"backward": "autodiff", "remat": True},
    "fused": {"backward": "fused"},
}


def memory_child(variant: str, steps: int, out_path: str) -> None:
    """One training step (loss, gradients) of a 1-layer LSTM, B=16, H=I=256; prints JSON."""
    batch, hidden = 16, 256
    cell = cells.LSTM(hidden)
    params = cell.init(jax.random.key(0), hidden)
    xs = jax.random.normal(jax.random.key(1), (batch, steps, hidden), jnp.float32)
    options = _MEMORY_VARIANTS[variant]

    def loss(p, x):
        ys, _ = cells.scan(cell, p, x, **options)
        return jnp.mean(ys**2)

    t0 = time.perf_counter()
    value, grads = jax.block_until_ready(jax.jit(jax.value_and_grad(loss))(params, xs))
    wall = time.perf_counter() - t0
    np.savez(out_path, **{k: np.asarray(v) for k, v in grads.items()})
    print(json.dumps({"variant": variant, "loss": float(value), "wall_s": wall,
                      "peak_rss_mb": timing.peak_rss_mb()}))  # fmt: skip


def memory_extras(steps: int) -> list[dict]:
    """Peak RSS of each variant in its own process; gradients compared with 'autodiff'."""
    import subprocess
    import tempfile

    records, ref = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for variant in _MEMORY_VARIANTS:
            path = os.path.join(tmp, variant.replace("+", "_") + ".npz")
            cmd = [sys.executable, "-m", "experiments.studies.cpu_speed.bench",
                   f"--memory_child={variant}", f"--long_seq_len={steps}",
                   f"--json={path}"]  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                records.append({"variant": variant, "seq_len": steps, "error": proc.stderr[-2000:]})
                continue
            rec = json.loads(proc.stdout.strip().splitlines()[-1])
            grads = dict(np.load(path))
            if ref is None:
                ref = grads
            rec["max_rel_grad_diff_vs_autodiff"] = max(
                float(np.max(np.abs(grads[k] - ref[k])) / np.max(np.abs(ref[k]))) for k in ref
            )
            rec.update(seq_len=steps, batch=16, hidden=256, loadavg=os.getloadavg())
            records.append(rec)
            print(rec, flush=True)
    return records


def compile_extras() -> list[dict]:
    """Compile time of a 2-layer LSTM and GRU stack's training step (B=32, T=128, H=512)."""
    records = []
    for name in ("lstm", "gru"):
        for backward in ("fused", "autodiff"):
            stack = cells.Stack.uniform(_our_cell(name, 512), num_layers=2, dropout=0.5)
            params = stack.init(jax.random.key(0), 512)
            xs = jnp.zeros((32, 128, 512), jnp.float32)

            def loss(p, x, rng, stack=stack, backward=backward):
                return jnp.mean(stack(p, x, rng=rng, backward=backward)[0] ** 2)

            fn = jax.jit(jax.value_and_grad(loss))
            _, (wall_s, cpu_s) = _compile(fn, params, xs, jax.random.key(1))
            rec = {"cell": name, "layers": 2, "backward": backward,
                   "compile_s": wall_s, "compile_cpu_s": cpu_s,
                   "loadavg": os.getloadavg()}  # fmt: skip
            records.append(rec)
            print(rec, flush=True)
    return records


def _torch_ptb_step(config, vocab_size: int, batch):
    """PyTorch's version of the same ptb_small training step (the word_language_model example
    at Zaremba's small config): embedding -> 2-layer nn.LSTM/GRU/RNN -> linear softmax, cost
    summed over the window and averaged over the batch, global-norm clipping, plain SGD."""
    import torch

    torch.set_num_threads(os.cpu_count())
    m, h = config.model, config.model.hidden_size
    rnn_cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[m.cell]
    model = torch.nn.ModuleDict(
        {
            "embed": torch.nn.Embedding(vocab_size, h),
            "rnn": rnn_cls(h, h, m.num_layers, batch_first=True),
            "out": torch.nn.Linear(h, vocab_size),
        }
    )
    for p in model.parameters():
        torch.nn.init.uniform_(p, -m.init_scale, m.init_scale)
    inputs = torch.from_numpy(np.asarray(batch["inputs"]).astype(np.int64))
    targets = torch.from_numpy(np.asarray(batch["targets"]).astype(np.int64))
    b = inputs.shape[0]
    zeros = torch.zeros(m.num_layers, b, h)
    carry = (zeros, zeros.clone()) if m.cell == "lstm" else zeros
    lr, clip = config.optim.learning_rate, config.optim.grad_clip_norm

    def step():
        model.zero_grad(set_to_none=True)
        ys, _ = model["rnn"](model["embed"](inputs), carry)
        logits = model["out"](ys).reshape(-1, vocab_size)
        loss = torch.nn.functional.cross_entropy(logits, targets.reshape(-1), reduction="sum") / b
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(p.grad, alpha=-lr)
        return float(loss.detach())

    return step


def ptb_extras(repeats: int, cell: str = "lstm") -> list[dict]:
    """Seconds per ptb_small epoch, estimated: the median time of one training step (loss,
    gradients, clipping, SGD update: `train.steps.train_step`, as the trainer runs it) on a real
    batch, times the steps in an epoch (evaluation not included). Our two backward paths
    (config.train.scan_backward) and, when torch is installed, PyTorch's same model, interleaved."""
    import functools

    from experiments.configs import ptb_small
    from train import optim
    from train import state as train_state
    from train import steps as train_steps
    from train.tasks import registry

    config = ptb_small.get_config()
    config.model.cell = cell
    fns, records = {}, []
    for backward in ("fused", "autodiff"):
        config.train.scan_backward = backward
        task = registry.get_task(config)
        spe = task.steps_per_epoch()
        tx, _ = optim.make_optimizer(config.optim, config.train.num_epochs * spe, spe)
        state = train_state.create(task, tx, config.seed, config.train.batch_size)
        batch = jax.tree.map(jnp.asarray, next(task.train_iterator()))
        step = functools.partial(
            train_steps.train_step, task=task, tx=tx, grad_clip_norm=config.optim.grad_clip_norm
        )
        compiled, compile_s = _compile(jax.jit(step), state, batch)  # not donated: same state
        fns[f"ours-{backward}"] = (functools.partial(compiled, state, batch), compile_s)
    if _available(["torch"]):
        fns["torch"] = (_torch_ptb_step(config, task.vocab_size, batch), (0.0, 0.0))
    for fn, _ in fns.values():
        jax.block_until_ready(fn())  # warm-up
    times = timing.interleaved({impl: fn for impl, (fn, _) in fns.items()}, repeats)
    for impl, (_, compile_s) in fns.items():
        sec = statistics.median(times[impl])
        rec = {"task": "ptb_small", "cell": cell, "impl": impl, "step_s": sec,
               "step_s_best": min(times[impl]), "step_s_all": times[impl],
               "steps_per_epoch": spe, "epoch_s_estimate": sec * spe,
               "compile_s": compile_s[0], "compile_cpu_s": compile_s[1],
               "torch_threads": os.cpu_count() if impl == "torch" else None,
               "loadavg": os.getloadavg()}  # fmt: skip
        records.append(rec)
        print({k: v for k, v in rec.items() if k != "step_s_all"}, flush=True)
    return records


def main(argv):
    del argv
    reused_memory = _REUSE_MEMORY.value and host_memory.reuse_freed_memory()
    if _CHILD.value:
        memory_child(_CHILD.value, _LONG_T.value, _JSON.value)
        return
    if _EXTRAS.value:
        parts = {
            "ptb_small": lambda: [
                rec for cell in _CELLS.value for rec in ptb_extras(_REPEATS.value * 4, cell)
            ],
            "compile": compile_extras,
            "memory": lambda: memory_extras(_LONG_T.value),
        }
        result = {
            **{name: fn() for name, fn in parts.items() if name in _EXTRAS_PARTS.value},
            "command": " ".join(["python -m experiments.studies.cpu_speed.bench", *sys.argv[1:]]),
            "commit": provenance.git_commit(),
            "reuse_host_memory": reused_memory,
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        if _JSON.value:
            with open(_JSON.value, "w") as f:
                json.dump(result, f, indent=1)
            print(f"wrote {_JSON.value}")
        return
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

    def write(done: bool) -> None:  # after every shape, so a cut-off run still leaves data
        result = {
            "records": records,
            "skipped": skipped,
            "complete": done,
            "wall_s": time.perf_counter() - start,
            "command": " ".join(["python -m experiments.studies.cpu_speed.bench", *sys.argv[1:]]),
            "commit": provenance.git_commit(),
            "hardware": {
                **provenance.hardware(),
                "jax": jax.__version__,
                "backend": jax.default_backend(),
                "torch_threads": os.cpu_count() if "torch" in impls else None,
                "torch": _torch_version() if any(i.startswith("torch") for i in impls) else None,
                "onednn": _onednn_version() if "ours-onednn" in impls else None,
            },
            "reuse_host_memory": reused_memory,
            "loadavg_end": os.getloadavg(),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        if _JSON.value:
            os.makedirs(os.path.dirname(os.path.abspath(_JSON.value)), exist_ok=True)
            with open(_JSON.value, "w") as f:
                json.dump(result, f, indent=1)

    for name, b, t, h in grid:
        if gemm_flops(name, b, t, h, "fwd+bwd") / 1e9 > _MAX_GFLOP.value:
            skipped.append({"cell": name, "batch": b, "seq_len": t, "hidden": h})
            continue
        for mode in _MODES.value:
            recs = bench_shape(name, b, t, h, mode, impls_for(name, impls), repeats, _ATOL.value)
            records.extend(recs)
            print(format_table(recs).splitlines()[-1], flush=True)
            write(False)
    write(True)
    print()
    print(format_table(records))
    if skipped:
        print(f"skipped (> {_MAX_GFLOP.value} GFLOP): {skipped}")
    if _JSON.value:
        print(f"wrote {_JSON.value}")


if __name__ == "__main__":
    app.run(main)
