r"""`make demo`: train a small LSTM and GRU character model on Tiny Shakespeare and compare them.

    python -m experiments.tools.demo [--root=runs/demo] [--num_steps=1000]

Both models go through the real training loop (`train.trainer.train_and_evaluate`) with the
`shakespeare_char` config shrunk to a few minutes on a 2-core CPU (1 layer of 128 units,
batch 32 x 64 characters). Afterwards it prints a table (parameters, validation bits/char,
training tokens/s), a 200-character sample from each model, and where the TensorBoard logs and
a PNG of the learning curves were written. Re-running reuses finished workdirs.
"""

from __future__ import annotations

import json
import math
import os
import time

from absl import app, flags, logging

from experiments.configs import shakespeare_char
from experiments.tools import sample
from train import checkpoint, metrics, models, trainer

_ROOT = flags.DEFINE_string("root", "runs/demo", "Directory for the two workdirs and the plot.")
_NUM_STEPS = flags.DEFINE_integer("num_steps", 1000, "Training steps per model.")
CELLS = ("lstm", "gru")


def demo_config(cell: str, num_steps: int):
    """shakespeare_char, shrunk: 1 x 128 units, 64-char windows, `num_steps` Adam steps."""
    config = shakespeare_char.get_config()
    config.name = f"demo_{cell}"
    config.model.cell = cell
    config.model.hidden_size = 128
    config.model.num_layers = 1
    config.model.embed_size = 32
    config.model.dropout = 0.0
    config.optim.learning_rate = 5e-3
    config.optim.warmup_steps = 50
    config.train.num_steps = num_steps
    config.train.seq_len = 64
    config.train.log_every = 50
    config.train.eval_every = max(1, num_steps // 3)
    config.train.checkpoint_every = max(1, num_steps // 3)
    return config


def plot_curves(workdirs: dict[str, str], path: str) -> None:
    """Train and validation bits/char against step, one colour per cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (cell, workdir), colour in zip(workdirs.items(), ("C0", "C1"), strict=False):
        events = [e for e in metrics.read_events(workdir) if not e.get("final")]
        for split, style in (("train", "-"), ("valid", "o--")):
            pts = [(e["step"], e["bits_per_char"]) for e in events if e["split"] == split]
            if pts:
                xs, ys = zip(*pts, strict=True)
                ax.plot(xs, ys, style, color=colour, label=f"{cell} {split}")
    ax.set_xlabel("step")
    ax.set_ylabel("bits / char")
    ax.set_title("Tiny Shakespeare, character LM")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    root = _ROOT.value
    workdirs, rows, samples = {}, [], {}
    start = time.time()
    for cell in CELLS:
        config = demo_config(cell, _NUM_STEPS.value)
        workdir = os.path.join(root, cell)
        workdirs[cell] = workdir
        print(f"== training {cell}: {config.train.num_steps} steps -> {workdir}", flush=True)
        results = trainer.train_and_evaluate(config, workdir)
        trained = checkpoint.load_trained(workdir, "best")
        task, params = trained.task, trained.params
        tokens = results["steps"] * config.train.batch_size * config.train.seq_len
        rows.append(
            (
                cell,
                models.count_params(params),
                results["valid"]["bits_per_char"],
                tokens / max(results["train_time_s"], 1e-9),
                results["train_time_s"],
            )
        )
        samples[cell] = sample.generate(task, params, "ROMEO:", 200, 0.8, seed=0)

    print("\n| cell | params | valid bits/char | train tokens/s | train time (s) |")
    print("|---|---:|---:|---:|---:|")
    for cell, n, bpc, tps, secs in rows:
        print(f"| {cell} | {n:,} | {bpc:.3f} | {tps:,.0f} | {secs:.0f} |")
    for cell in CELLS:
        print(f"\n--- {cell} sample (prompt 'ROMEO:', temperature 0.8, seed 0) ---")
        print("ROMEO:" + samples[cell])
    png = os.path.join(root, "learning_curves.png")
    plot_curves(workdirs, png)
    with open(os.path.join(root, "summary.json"), "w") as f:
        json.dump({"rows": rows, "samples": samples}, f, indent=2)
    print(
        "\nTensorBoard logs: "
        + ", ".join(os.path.join(w, "tensorboard") for w in workdirs.values())
    )
    print(f"  (tensorboard --logdir {root})")
    print(f"Learning curves:  {png}")
    print(f"Total time: {math.ceil(time.time() - start)} s")


if __name__ == "__main__":
    app.run(main)
