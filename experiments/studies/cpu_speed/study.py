"""Speed on CPU: the fused cells against flax.linen and PyTorch, interleaved in one process, with
the GEMMs-only floor, the parallel-scan cells, memory at long T, compile time and a ptb_small
step (README.md; the investigation behind the numbers is PERF_NOTES.md)."""

from __future__ import annotations

import os

from experiments.lab import Run, records, runner, tables
from train import metrics

GRID = "bench_cpu_grid_idle_reuse"  # the default grid, idle machine, malloc reuse on
TARGET_SHAPES = ((1, 1024, 256), (32, 128, 512), (64, 128, 256))  # the (B, T, H)
IMPLS = ("ours", "gemms-only", "ours-autodiff", "flax", "torch")

GROUPS = {
    "grid": lambda results_dir: [
        Run(GRID, command=("-m", "experiments.studies.cpu_speed.bench",
                           "--impls=ours,gemms-only,ours-autodiff,flax,torch", "--json={out}"))
    ],
    "parallel": lambda results_dir: [
        Run("bench_parallel_cpu", command=("-m", "experiments.studies.cpu_speed.bench_parallel",
                                           "--json={out}"))
    ],
    # The RG-LRU's rows of the parallel part and the mLSTM's part, measured after those cells
    # were added (the record above predates them).
    "parallel_rglru_mlstm": lambda results_dir: [
        Run("bench_parallel_rglru_mlstm_cpu",
            command=("-m", "experiments.studies.cpu_speed.bench_parallel",
                     "--parts=parallel,mlstm", "--json={out}"))
    ],
    # The ConvLSTM's layer of the moving-digits study, both convolution methods, beside the
    # dense LSTM (measured after that cell was added).
    "convlstm": lambda results_dir: [
        Run("bench_parallel_convlstm_cpu",
            command=("-m", "experiments.studies.cpu_speed.bench_parallel",
                     "--parts=convlstm", "--json={out}"))
    ],
    # oneDNN's RNN primitive (cells.scan(backend='onednn'), the optional extension) against our
    # XLA path, flax and PyTorch at the shapes of the oneDNN issue, forward and forward+backward.
    "onednn": lambda results_dir: [
        Run(f"bench_onednn_B{b}_T{t}_H{h}",
            command=("-m", "experiments.studies.cpu_speed.bench", "--cells=lstm,gru",
                     f"--batch={b}", f"--seq_len={t}", f"--hidden={h}", "--modes=fwd,fwd+bwd",
                     "--impls=ours,ours-onednn,flax,torch", f"--repeats={repeats}",
                     "--max_gflop=2000", "--json={out}"))
        for b, t, h, repeats in ONEDNN_SHAPES
    ],
    # Where oneDNN overtakes our XLA path as the batch and width grow (what backend='auto'
    # uses: cells.kernels.onednn_rnn.faster_than_xla): forward+backward, T = 128.
    "onednn_batch": lambda results_dir: [
        Run(f"bench_onednn_batch_T128_H{h}",
            command=("-m", "experiments.studies.cpu_speed.bench", "--cells=lstm,gru",
                     f"--batch={batches}", "--seq_len=128", f"--hidden={h}", "--modes=fwd+bwd",
                     "--impls=ours,ours-onednn", "--repeats=5", "--max_gflop=2000",
                     "--json={out}"))
        for h, batches in ((256, "1,4,8,16,32"), (512, "8,16,32"), (1024, "8,16,32"))
    ],
    # One epoch of ptb_small (2-layer LSTM, B = 20, T = 35) on each engine: loss curves and time.
    "onednn_ptb": lambda results_dir: [
        Run(f"ptb_small_epoch_{backend}", config="ptb_small.py", collect=collect_with_train_curve,
            overrides=("--config.train.num_epochs=1", f"--config.train.scan_backend={backend}"))
        for backend in ("xla", "onednn")
    ],
}  # fmt: skip
ONEDNN_SHAPES = ((1, 1024, 256, 5), (32, 128, 512, 5), (64, 256, 1024, 3))  # B, T, H, repeats


def collect_with_train_curve(name: str, workdir: str) -> dict:
    """The runner's record plus every logged training loss ('train_curve')."""
    record = runner.collect(name, workdir)
    record["train_curve"] = [
        {k: e[k] for k in ("step", "loss") if k in e}
        for e in metrics.read_events(workdir)
        if e.get("split") == "train" and not e.get("final")
    ]
    return record


def target_table(results_dir: str) -> str:
    """Forward+backward median tokens/s at the target shapes, each implementation, and our
    ratios against flax and PyTorch."""
    grid = records.read(os.path.join(results_dir, f"{GRID}.json"))["records"]
    speed = {
        (r["cell"], r["batch"], r["seq_len"], r["hidden"], r["impl"]): r["tokens_per_s"]
        for r in grid
        if r.get("mode") == "fwd+bwd" and "tokens_per_s" in r
    }
    rows = []
    for b, t, h in TARGET_SHAPES:
        for cell in ("lstm", "gru"):
            values = [speed.get((cell, b, t, h, impl)) for impl in IMPLS]
            if None in values:
                continue
            ours, flax, torch = values[0], values[3], values[4]
            rows.append([cell.upper(), b, t, h, *(f"{v:,.0f}" for v in values),
                         f"{ours / flax:.2f}x", f"{ours / torch:.2f}x"])  # fmt: skip
    header = ["cell", "B", "T", "H", "ours (fused)", "gemms-only", "ours (autodiff)", "flax",
              "PyTorch", "ours/flax", "ours/PyTorch"]  # fmt: skip
    return tables.markdown(header, rows)


def onednn_table(results_dir: str, prefix: str = "bench_onednn") -> str:
    """Tokens/s of ours (XLA, fused backward), ours through oneDNN, flax and PyTorch at the
    oneDNN issue's shapes, both modes, with oneDNN's ratios to PyTorch and to our XLA path."""
    impls = ("ours", "ours-onednn", "flax", "torch")
    rows, versions = [], set()
    for b, t, h, _ in ONEDNN_SHAPES:
        path = os.path.join(results_dir, f"{prefix}_B{b}_T{t}_H{h}.json")
        if not os.path.exists(path):
            continue
        record = records.read(path)
        versions.add(record["hardware"].get("onednn") or "")
        speed = {(r["cell"], r["mode"], r["impl"]): r["tokens_per_s"] for r in record["records"]}
        for cell in ("lstm", "gru"):
            for mode in ("fwd", "fwd+bwd"):
                values = [speed.get((cell, mode, impl)) for impl in impls]
                if None in values:
                    continue
                ours, onednn, _, torch = values
                rows.append([cell.upper(), b, t, h, mode, *(f"{v:,.0f}" for v in values),
                             f"{onednn / torch:.2f}x", f"{ours / torch:.2f}x",
                             f"{onednn / ours:.2f}x"])  # fmt: skip
    header = ["cell", "B", "T", "H", "mode", "ours (XLA)", "ours (oneDNN)", "flax", "PyTorch",
              "oneDNN/PyTorch", "XLA/PyTorch", "oneDNN/XLA"]  # fmt: skip
    table = tables.markdown(header, rows)
    return table + "\n\noneDNN: " + "; ".join(sorted(v for v in versions if v))


def onednn_batch_table(results_dir: str) -> str:
    """Forward+backward tokens/s of our XLA path and oneDNN as B and H grow (T = 128)."""
    rows = []
    for h in (256, 512, 1024):
        path = os.path.join(results_dir, f"bench_onednn_batch_T128_H{h}.json")
        if not os.path.exists(path):
            continue
        speed = {(r["cell"], r["batch"], r["impl"]): r["tokens_per_s"]
                 for r in records.read(path)["records"]}  # fmt: skip
        for cell in ("lstm", "gru"):
            for b in sorted({k[1] for k in speed if k[0] == cell}):
                xla, onednn = speed[(cell, b, "ours")], speed[(cell, b, "ours-onednn")]
                rows.append([cell.upper(), h, b, f"{xla:,.0f}", f"{onednn:,.0f}",
                             f"{onednn / xla:.2f}x"])  # fmt: skip
    return tables.markdown(["cell", "H", "B", "ours (XLA)", "ours (oneDNN)", "oneDNN/XLA"], rows)


def ptb_epoch_lines(results_dir: str) -> str:
    """One ptb_small epoch on each engine: training time, steps/s, perplexities."""
    lines = []
    for backend in ("xla", "onednn"):
        path = os.path.join(results_dir, f"ptb_small_epoch_{backend}.json")
        if not os.path.exists(path):
            continue
        r = records.read(path)
        curve = r["train_curve"]
        lines.append(
            f"- `scan_backend={backend}`: {r['train_time_s']:.0f} s of training "
            f"({r['steps'] / r['train_time_s']:.2f} steps/s), {r['wall_time_s']:.0f} s wall; "
            f"training loss at steps {curve[0]['step']} / {curve[-1]['step']}: "
            f"{curve[0]['loss']:.4f} / {curve[-1]['loss']:.4f}; valid / test perplexity "
            f"{r['valid']['perplexity']:.2f} / {r['test']['perplexity']:.2f} (commit "
            f"{r['git_commit'][:7]})"
        )
    return "\n".join(lines)


def readme_tables(results_dir: str) -> dict[str, str]:
    return {
        "targets": target_table(results_dir),
        "onednn": onednn_table(results_dir),
        "onednn26": onednn_table(results_dir, "bench_onednn26"),
        "onednn_batch": onednn_batch_table(results_dir),
        "onednn_ptb": ptb_epoch_lines(results_dir),
    }


def headline(results_dir: str) -> dict:
    grid = records.read(os.path.join(results_dir, f"{GRID}.json"))["records"]
    speed = {
        (r["cell"], r["batch"], r["impl"]): r["tokens_per_s"]
        for r in grid
        if r.get("mode") == "fwd+bwd" and (r["seq_len"], r["hidden"]) == (128, 512)
    }
    ratio = {c: speed[(c, 32, "ours")] / speed[(c, 32, "torch")] for c in ("lstm", "gru")}
    return {
        "ours": f"train step at B=32, T=128, H=512: LSTM {ratio['lstm']:.2f}x, GRU "
        f"{ratio['gru']:.2f}x PyTorch's speed (2-core CPU)",
        "published": "-",
    }
