r"""The GPU check: one prepared command for the day a machine with an NVIDIA GPU is at hand.

    bash experiments/studies/accelerators/device_check.sh            # the GPU machine; JSON -> $OUT
    bash experiments/studies/accelerators/device_check.sh --dry-run  # anywhere: tiny shapes
    make device-check                             # the same as the first line

It runs, in this order, within --budget_s (default 8 minutes; what does not fit is recorded as
skipped, never half-measured):
  1. the tests marked `gpu` (`pytest -m gpu`: cuDNN against the XLA path, ...);
  2. the kernel bench: for each shape and dtype, forward and forward+backward (loss sum(ys),
     gradients w.r.t. weights and inputs) of `ours` (cells.scan, backward='fused'),
     `ours-autodiff`, `flax` (nn.RNN over OptimizedLSTMCell / GRUCell), `jax-cudnn` (the LSTM
     by `backend='cudnn'`, float32), `pallas` (`backend='pallas'`: the Triton kernels of
     cells.kernels.pallas_rnn_triton, where H is a power of two) and `torch` (nn.LSTM /
     nn.GRU on the GPU, cuDNN), the same
     weights in all (outputs checked against ours first), median milliseconds over
     --repeats interleaved calls and peak memory (JAX: XLA's memory analysis of the compiled
     call, arguments + outputs + temporaries; PyTorch: max_memory_allocated);
  3. 200 training steps of ptb_small (`train.main`), for steps/s and tokens/s.
Shapes: FlashRNN's (B = 16, 64, 256; T = 1024; H = 768, bfloat16 and float32), torchrl's
(B = 128, T = 128, H = 256) and the issue's goal shape (B = 64, T = 256, H = 1024).
FlashRNN's H = 768 is not a power of two, so `pallas` skips those shapes (recorded as such).

--dry-run (CPU, CI-tested): shapes of B = 2, T = 8, H = 16, `jax-cudnn` through
`jax.experimental.rnn.lstm_ref` (the cuDNN call itself needs the GPU), `pallas` in Pallas'
interpreter, PyTorch on the CPU,
no pytest, 4 steps of the synthetic task instead of ptb_small.

Output: OUT/device_check.json (device, versions, every record, the skipped items) and a table
on stdout: ours / cuDNN time ratios per shape.
"""

from __future__ import annotations

import functools
import json
import os
import statistics
import subprocess
import sys
import time

from absl import app, flags

from experiments.lab import timing

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command-line flags (defined only when run as a script, so importing is side-free)."""
    flags.DEFINE_string(
        "out", os.environ.get("OUT") or "workdirs/device_check", "Output directory ($OUT)."
    )
    flags.DEFINE_bool("dry_run", False, "Tiny shapes on any platform (a smoke test).")
    flags.DEFINE_float("budget_s", 480.0, "Wall-clock budget; later items are skipped.")
    flags.DEFINE_integer("repeats", 5, "Timed calls per implementation (median).")


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
# (cell, batch, seq_len, hidden, dtype), most wanted first.
SHAPES = [
    ("lstm", 64, 256, 1024, "float32"),  # the goal: at least cuDNN's speed
    ("lstm", 16, 1024, 768, "bfloat16"),  # FlashRNN's
    ("lstm", 16, 1024, 768, "float32"),
    ("lstm", 128, 128, 256, "float32"),  # torchrl's
    ("gru", 128, 128, 256, "float32"),
    ("lstm", 64, 1024, 768, "bfloat16"),
    ("lstm", 256, 1024, 768, "bfloat16"),
]
DRY_SHAPES = [("lstm", 2, 8, 16, "float32"), ("gru", 2, 8, 16, "bfloat16")]
IMPLS = ("ours", "ours-autodiff", "flax", "jax-cudnn", "pallas", "torch")


class Budget:
    def __init__(self, seconds: float):
        self.end = time.time() + seconds

    def left(self) -> float:
        return self.end - time.time()


def run_gpu_tests(budget: Budget) -> dict:
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider"]
    try:
        proc = subprocess.run(
            cmd, cwd=REPO, capture_output=True, text=True, timeout=max(30.0, budget.left() / 3)
        )
    except subprocess.TimeoutExpired:
        return {"status": "timeout"}
    tail = proc.stdout.strip().splitlines()[-1:] if proc.stdout.strip() else []
    return {"status": "passed" if proc.returncode == 0 else "failed", "summary": tail}


def _jax_impl(impl, cell, params, xs, dry_run):
    """(fwd fn, fwd+bwd fn, variables) for a JAX implementation, jitted."""
    import jax
    import jax.numpy as jnp

    import cells
    from cells.kernels import cudnn_lstm

    if impl == "flax":
        import flax.linen as nn

        hidden = xs.shape[-1]
        module = nn.RNN(
            nn.OptimizedLSTMCell(hidden, param_dtype=jnp.float32, dtype=xs.dtype)
            if isinstance(cell, cells.LSTM)
            else nn.GRUCell(hidden, param_dtype=jnp.float32, dtype=xs.dtype)
        )
        variables = {"params": {"cell": cells.interop.to_flax(cell, params)["params"]}}
        apply = module.apply
    elif impl == "jax-cudnn":
        variables = params

        def apply(p, x):
            carry = cell.initial_carry(x.shape[0])
            return cudnn_lstm.scan(cell, p, x, carry, reference=dry_run)[0]
    elif impl == "pallas":
        from cells.kernels import pallas_rnn

        variables = params

        def apply(p, x):
            carry = cell.initial_carry(x.shape[0])
            ys, _ = pallas_rnn.scan(cell, p, x, carry, target="triton", interpret=dry_run)
            return ys
    else:
        backward = "autodiff" if impl == "ours-autodiff" else "fused"
        variables = params

        def apply(p, x):
            return cells.scan(cell, p, x, backward=backward)[0]

    def loss(v, x):
        return jnp.sum(apply(v, x).astype(jnp.float32))

    return jax.jit(apply), jax.jit(jax.grad(loss, argnums=(0, 1))), variables


def _jax_memory(compiled) -> int | None:
    memory = timing.xla_memory(compiled)  # the whole footprint: arguments, outputs, temporaries
    return None if memory is None else sum(memory.values())


def bench_jax(impl, cell, params, xs, repeats, dry_run) -> dict:
    import jax
    import numpy as np

    fwd, grad, variables = _jax_impl(impl, cell, params, xs, dry_run)
    out = {}
    for mode, fn in (("fwd", fwd), ("fwd+bwd", grad)):
        start = time.perf_counter()
        compiled = fn.lower(variables, xs).compile()
        compile_s = time.perf_counter() - start
        result = jax.block_until_ready(compiled(variables, xs))
        call = functools.partial(compiled, variables, xs)
        times = timing.interleaved({mode: call}, repeats)[mode]
        out[mode] = {
            "ms": 1e3 * statistics.median(times),
            "compile_s": compile_s,
            "peak_bytes": _jax_memory(compiled),
        }
        if mode == "fwd":
            out["ys"] = np.asarray(result, np.float32)
    return out


def bench_torch(cell, params, xs, repeats) -> dict:
    import numpy as np
    import torch

    import cells

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if str(xs.dtype) == "bfloat16" else torch.float32
    hidden = xs.shape[-1]
    module = (torch.nn.LSTM if cell.num_gates == 4 else torch.nn.GRU)(
        hidden, hidden, batch_first=True
    )
    state = cells.interop.to_torch(cell, params)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    module = module.to(device=device, dtype=dtype)
    x = torch.from_numpy(np.array(xs, np.float32)).to(device=device, dtype=dtype)
    x.requires_grad_(True)

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    def fwd():
        with torch.no_grad():
            return module(x)[0]

    def fwd_bwd():
        module.zero_grad(set_to_none=True)
        x.grad = None
        module(x)[0].float().sum().backward()

    out = {"ys": fwd().float().cpu().numpy()}
    for mode, fn in (("fwd", fwd), ("fwd+bwd", fwd_bwd)):
        fn()
        sync()
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        times = timing.interleaved({mode: fn}, repeats, wait=lambda _: sync())[mode]
        peak = int(torch.cuda.max_memory_allocated()) if device == "cuda" else None
        out[mode] = {"ms": 1e3 * statistics.median(times), "compile_s": 0.0, "peak_bytes": peak}
    return out


def bench_shape(shape, repeats, dry_run, budget: Budget) -> tuple[list[dict], list[str]]:
    import jax
    import jax.numpy as jnp
    import numpy as np

    import cells

    name, batch, steps, hidden, dtype = shape
    compute = jnp.bfloat16 if dtype == "bfloat16" else None
    cell = cells.get(name)(hidden, compute_dtype=compute)
    params = cell.init(jax.random.key(0), hidden)
    params["b"] = 0.1 * jax.random.normal(jax.random.key(3), params["b"].shape)
    xs = jax.random.normal(jax.random.key(1), (batch, steps, hidden), jnp.float32)
    records, skipped = [], []
    reference = None
    for impl in IMPLS:
        label = f"{name} B={batch} T={steps} H={hidden} {dtype} {impl}"
        if budget.left() <= 0:
            skipped.append(f"{label}: over the budget")
            continue
        if impl == "jax-cudnn" and (name != "lstm" or dtype != "float32"):
            continue  # cuDNN through jax.experimental.rnn: the float32 LSTM only
        if impl == "pallas":
            from cells.kernels import pallas_rnn_triton

            try:
                pallas_rnn_triton.check_hidden(hidden)
            except ValueError:
                skipped.append(f"{label}: the Triton kernels need H a power of two >= 16")
                continue
        try:
            if impl == "torch":
                result = bench_torch(cell, params, xs.astype(compute or jnp.float32), repeats)
            else:
                result = bench_jax(impl, cell, params, xs, repeats, dry_run)
        except ImportError as e:
            skipped.append(f"{label}: {e}")
            continue
        ys = result.pop("ys")
        if reference is None:
            reference = ys
        tol = 5e-2 if dtype == "bfloat16" else 2e-3
        err = float(np.max(np.abs(ys - reference)))
        for mode in ("fwd", "fwd+bwd"):
            records.append(
                {"cell": name, "batch": batch, "seq_len": steps, "hidden": hidden,
                 "dtype": dtype, "impl": impl, "mode": mode, **result[mode],
                 "max_abs_diff_vs_ours": err, "agrees": err <= tol}
            )  # fmt: skip
    return records, skipped


def train_steps(out_dir: str, dry_run: bool, budget: Budget) -> dict:
    if dry_run:
        config = ["--config=experiments/configs/synthetic.py", "--config.train.num_steps=4"]
    else:
        config = ["--config=experiments/configs/ptb_small.py", "--config.train.num_steps=200"]
    workdir = os.path.join(out_dir, "train_run")
    cmd = [sys.executable, "-m", "train.main", *config, f"--workdir={workdir}"]
    start = time.time()
    try:
        proc = subprocess.run(
            cmd, cwd=REPO, capture_output=True, text=True, timeout=max(60.0, budget.left())
        )
    except subprocess.TimeoutExpired:
        return {"command": " ".join(cmd[1:]), "status": "timeout"}
    record = {"command": " ".join(cmd[1:]), "wall_s": time.time() - start}
    if proc.returncode != 0:
        return {**record, "status": "failed", "stderr_tail": proc.stderr[-2000:]}
    with open(os.path.join(workdir, "results.json")) as f:
        results = json.load(f)
    keys = ("steps", "train_time_s", "train_tokens_per_s", "wall_time_s")
    return {**record, "status": "ok", **{k: results.get(k) for k in keys}}


def ratio_table(records: list[dict]) -> str:
    """ours' (and the Pallas kernel's) time over cuDNN's (jax-cudnn, else torch) per shape and
    mode."""
    rows = ["| cell | B | T | H | dtype | mode | ours ms | pallas ms | cuDNN ms (impl) | "
            "ours / cuDNN | pallas / cuDNN |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    keys = dict.fromkeys(
        (r["cell"], r["batch"], r["seq_len"], r["hidden"], r["dtype"], r["mode"]) for r in records
    )
    for key in keys:
        by_impl = {r["impl"]: r for r in records if (r["cell"], r["batch"], r["seq_len"],
                   r["hidden"], r["dtype"], r["mode"]) == key}  # fmt: skip
        ours, pallas = by_impl.get("ours"), by_impl.get("pallas")
        base = by_impl.get("jax-cudnn") or by_impl.get("torch")
        if ours and base:
            pallas_ms = f"{pallas['ms']:.2f}" if pallas else "–"
            pallas_ratio = f"{pallas['ms'] / base['ms']:.2f}" if pallas else "–"
            rows.append(
                "| " + " | ".join(map(str, key)) + f" | {ours['ms']:.2f} | {pallas_ms} | "
                f"{base['ms']:.2f} ({base['impl']}) | {ours['ms'] / base['ms']:.2f} | "
                f"{pallas_ratio} |"
            )
    return "\n".join(rows)


def main(argv) -> None:
    if len(argv) > 1:
        print(f"error: unexpected arguments: {' '.join(argv[1:])}", file=sys.stderr)
        sys.exit(2)
    import jax

    from train import provenance

    dry_run = FLAGS.dry_run
    platform = jax.default_backend()
    if platform != "gpu" and not dry_run:
        print(
            f"error: JAX runs on {platform!r} here, not a GPU; pass --dry-run to test the script "
            "on this machine.",
            file=sys.stderr,
        )
        sys.exit(2)
    out_dir = os.path.abspath(FLAGS.out)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "device_check.json")
    if os.path.exists(path):
        print(f"error: {path} exists; name another --out (or $OUT).", file=sys.stderr)
        sys.exit(2)
    budget = Budget(FLAGS.budget_s)
    started = time.time()
    report = {
        "what": "experiments/studies/accelerators/device_check.py"
        + (" --dry-run" if dry_run else ""),
        "device": str(jax.devices()[0].device_kind),
        "platform": platform,
        "jax": jax.__version__,
        "git_commit": provenance.git_commit(),
        "hardware": provenance.hardware(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    try:
        import torch

        report["torch"] = torch.__version__
        report["torch_cuda"] = bool(torch.cuda.is_available())
    except ImportError:
        report["torch"] = None
    report["gpu_tests"] = (
        {"status": "not run (dry run)"} if dry_run else run_gpu_tests(budget)
    )  # fmt: skip
    records, skipped = [], []
    repeats = 2 if dry_run else FLAGS.repeats
    for shape in DRY_SHAPES if dry_run else SHAPES:
        got, missed = bench_shape(shape, repeats, dry_run, budget)
        records += got
        skipped += missed
        print(f"[device-check] {shape}: {len(got)} records", flush=True)
    report["records"] = records
    report["train"] = train_steps(out_dir, dry_run, budget) if budget.left() > 0 else "skipped"
    report["skipped"] = skipped
    report["wall_s"] = time.time() - started
    with open(path, "w") as f:
        json.dump(report, f, indent=1)
    print(ratio_table(records))
    bad = [r for r in records if not r["agrees"]]
    print(
        f"[device-check] {len(records)} records, {len(bad)} disagreeing, {len(skipped)} skipped, "
        f"{report['wall_s']:.0f} s; wrote {path}"
    )
    if bad:
        sys.exit(1)


if __name__ == "__main__":
    define_flags()
    app.run(main)
