"""The moving-digits study's figures: the test MSE of each predicted frame per model (from the
records), and predicted frames beside the truth (from one seed's trained runs)."""

from __future__ import annotations

import os

import numpy as np

from experiments.lab import tables

SEQUENCE = 0  # the test sequence drawn


def plot_mse_per_frame(rows, path: str) -> bool:
    """One line per model: mean test MSE of predicted frame k over the seeds (band: +- std).
    False (nothing written) when no model has records."""
    if not rows:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for _, label, seeds in rows:
        frames = sorted(int(k.rsplit("_", 1)[1]) for k in seeds[0]["test"] if "mse_frame_" in k)
        stats = [tables.mean_std([r["test"][f"mse_frame_{k}"] for r in seeds]) for k in frames]
        mean, std = np.array([m for m, _ in stats]), np.array([s for _, s in stats])
        ax.plot(frames, mean, marker="o", label=f"{label.split(' (')[0]} (n={len(seeds)})")
        ax.fill_between(frames, mean - std, mean + std, alpha=0.2)
    ax.set_xlabel("predicted frame")
    ax.set_ylabel("test MSE (summed over the frame's pixels)")
    ax.set_title("Moving digits: error of each predicted frame")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def finished(workdir: str) -> bool:
    """Whether the run in `workdir` has finished (its results.json), not still training."""
    return os.path.exists(os.path.join(workdir, "results.json"))


def plot_predictions(workdirs: dict[str, str], path: str, seed: int) -> bool:
    """Test sequence SEQUENCE of `seed`'s test set (every workdir is that seed's run): the input
    frames and the truth, then each trained model's predictions (best-validation checkpoint) and
    the copy-last baseline. A run still training (no results.json) is left out; False when no
    model's run has finished."""
    from train import checkpoint

    trained = {}
    for model, workdir in workdirs.items():
        if finished(workdir):
            trained[model] = checkpoint.load_trained(workdir, "best")
    if not trained:
        return False
    import jax
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = next(iter(trained.values())).task
    frames = first.examples("test")["x"][SEQUENCE : SEQUENCE + 1]
    steps_in, steps_out = first.input_frames, first.output_frames
    canvas = first.canvas
    rows = [("input | truth", frames[0])]
    for model, loaded in trained.items():
        logits = loaded.task.predict_logits(loaded.params, frames)
        predicted = np.asarray(jax.nn.sigmoid(logits))[0].reshape(steps_out, canvas, canvas)
        rows.append((model, np.concatenate([np.full_like(frames[0, :steps_in], np.nan),
                                            predicted])))  # fmt: skip
    last = np.repeat(frames[0, steps_in - 1 : steps_in], steps_out, axis=0)
    rows.append(("copy last", np.concatenate([np.full_like(last, np.nan), last])))
    total = steps_in + steps_out
    fig, axes = plt.subplots(len(rows), total, figsize=(total * 0.75, len(rows) * 0.85))
    for r, (name, sequence) in enumerate(rows):
        for t in range(total):
            ax = axes[r, t]
            ax.set_xticks([])
            ax.set_yticks([])
            if not np.isnan(sequence[t]).all():
                ax.imshow(sequence[t], cmap="gray", vmin=0.0, vmax=1.0)
            else:
                ax.set_frame_on(False)  # keeps the row's label
            if t == 0:
                ax.set_ylabel(name, fontsize=7)
            if r == 0:
                ax.set_title(f"{'in' if t < steps_in else 'out'} {t + 1}", fontsize=6)
    fig.suptitle(f"Moving digits, seed {seed}'s test sequence {SEQUENCE}: predictions beside "
                 "the truth", fontsize=9)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
