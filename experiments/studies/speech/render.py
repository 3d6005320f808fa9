r"""The speech study's rendering: a table over seeds, confusion matrices and a transcribed
spectrogram.

    python -m experiments run speech               # 51 runs, resumable
    python -m experiments report speech --figures  # the table, and the figures from workdirs/speech

Reads the run JSONs `spoken_digits_<split>_<model>_s<seed>` and `connected_digits_<split>_
<model>_s<seed>` (--results) and renders one table: per task, split and model the test
accuracy (isolated digits) or the digit error rate and string accuracy (connected digits, CTC
greedy decoding), mean ± sample std over the seeds, and the wall time per run. From the
trained workdirs (--workdirs) it draws the confusion matrices of the isolated-digit models named
by --confusion (test split, the best-validation checkpoint) and the log-mel spectrogram of one
connected test string with its reference, greedy and beam transcriptions (--spectrogram).
Figures go to the study's results/figures/.
"""

from __future__ import annotations

import os
import re

import numpy as np

from experiments.lab import tables

_NAME = re.compile(r"^(spoken_digits|connected_digits)_(speaker_\w+?)_(\w+)_s(\d+)$")
SPLITS = ("speaker_dependent", "speaker_independent")
STUDY_DIR = os.path.dirname(os.path.abspath(__file__))
CONFUSION_RUNS = (
    "spoken_digits_speaker_independent_bilstm_s0",
    "spoken_digits_speaker_independent_bilstm_cmvn_s0",
)
SPECTROGRAM_RUN = "connected_digits_speaker_independent_bilstm_cmvn_s0"


def group_runs(results: dict) -> dict:
    """{(task, split, model): {seed: record}} of the speech runs among `results`."""
    groups: dict = {}
    for name, record in results.items():
        match = _NAME.match(name)
        if match and "test" in record:
            task, split, model, seed = match.groups()
            groups.setdefault((task, split, model), {})[int(seed)] = record
    return groups


def _mean_std(values: list[float]) -> str:
    return tables.fmt_mean_std(values)


# The test metrics each task reports, in table order.
METRICS = {
    "spoken_digits": ("accuracy",),
    "connected_digits": ("digit_error_rate", "string_accuracy"),
}
COLUMNS = ("accuracy", "digit_error_rate", "string_accuracy")


def summarize_runs(task: str, runs: dict) -> tuple[list[int], dict[str, str], list[float]]:
    """(seeds, {metric: 'mean ± std'} of the task's metrics, wall times) of one group."""
    seeds = sorted(runs)
    tests = [runs[s]["test"] for s in seeds]
    values = {m: _mean_std([t[m] for t in tests]) for m in METRICS[task]}
    return seeds, values, [runs[s].get("wall_time_s", 0.0) for s in seeds]


def table(results: dict) -> str:
    """The Markdown table (isolated digits first, then connected; splits as rows)."""
    groups = group_runs(results)
    if not groups:
        return "No speech run has finished yet (`python -m experiments run speech`).\n"
    rows = [
        "| task | split | model | seeds | test accuracy | digit error rate | string accuracy "
        "| wall per run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    isolated_first = sorted(groups.items(), key=lambda kv: (kv[0][0] != "spoken_digits", kv[0]))
    for (task, split, model), runs in isolated_first:
        seeds, values, walls = summarize_runs(task, runs)
        cells = [values.get(column, "–") for column in COLUMNS]
        rows.append(
            f"| {task.replace('_', ' ')} | {split.replace('speaker_', 'speaker-')} | {model} | "
            f"{', '.join(map(str, seeds))} | "
            + " | ".join(cells)
            + f" | {min(walls):.0f}-{max(walls):.0f} s |"
        )
    return "\n".join(rows) + "\n"


def docstring_results(results: dict, task: str) -> str | None:
    """The `[results]` block of the task's config docstring (lines under 100 chars), or None
    while the task has no run."""
    groups = {key: runs for key, runs in group_runs(results).items() if key[0] == task}
    if not groups:
        return None
    if task == "spoken_digits":
        lines = ["Test accuracy, mean +- sample std over the seeds (wall s per run):"]
    else:
        lines = ["Test digit error rate / string accuracy (greedy decoding), mean +- sample std "
                 "(wall s per run):"]  # fmt: skip
    commits = set()
    for (_, split, model), runs in sorted(groups.items()):
        seeds, values, walls = summarize_runs(task, runs)
        commits |= {str(runs[s].get("git_commit", "?"))[:7] for s in seeds}
        value = " / ".join(values[m] for m in METRICS[task]).replace("±", "+-")
        lines.append(
            f"  {split} {model}: {value} ({len(seeds)} seeds; {min(walls):.0f}-{max(walls):.0f} s)"
        )
    lines.append(f"Commits {', '.join(sorted(commits))}; experiments/studies/speech/results/.")
    return "\n".join(lines) + "\n"


def confusion(workdir: str) -> np.ndarray:
    """The 10 x 10 confusion counts [true, predicted] of a spoken_digits run on its test split."""
    import jax

    from train import checkpoint

    trained = checkpoint.load_trained(workdir, "best")
    task = trained.task
    test = task.data.splits["test"]
    matrix = np.zeros((10, 10), np.int64)
    logits_fn = jax.jit(lambda p, x, n: task.logits(p, x, n))
    for lo in range(0, len(test["y"]), 100):
        batch = task.data.take("test", np.arange(lo, min(lo + 100, len(test["y"]))))
        predicted = np.argmax(
            np.asarray(logits_fn(trained.params, batch["x"], batch["lengths"])), -1
        )
        np.add.at(matrix, (batch["y"], predicted), 1)
    return matrix


def plot_confusion(matrix: np.ndarray, title: str, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4.4))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        if count:
            ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                    color="white" if count > matrix.max() / 2 else "black")  # fmt: skip
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("spoken digit")
    accuracy = np.trace(matrix) / max(matrix.sum(), 1)
    ax.set_title(f"{title}\ntest accuracy {accuracy:.3f} ({matrix.sum()} recordings)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def transcribed_example(workdir: str, index: int = 0, beam: int = 8) -> dict:
    """One connected test string: its features [T, F], reference, greedy and beam digits."""
    from train import checkpoint

    trained = checkpoint.load_trained(workdir, "best")
    task = trained.task
    data = task.data.fixed["test"]
    n, k = int(data["lengths"][index]), int(data["label_lengths"][index])
    x, lengths = data["x"][index : index + 1], data["lengths"][index : index + 1]
    return {
        "features": np.asarray(data["x"][index, :n]),
        "reference": [int(d) - 1 for d in data["labels"][index, :k]],
        "greedy": task.decode(trained.params, x, lengths, 0)[0],
        "beam": task.decode(trained.params, x, lengths, beam)[0],
        "beam_width": beam,
    }


def plot_spectrogram(example: dict, title: str, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 3.2))
    ax.imshow(example["features"].T, aspect="auto", origin="lower", cmap="magma")
    digits = lambda ds: "".join(map(str, ds)) or "(none)"  # noqa: E731
    ax.set_title(
        f"{title}\nreference {digits(example['reference'])} | greedy "
        f"{digits(example['greedy'])} | beam {example['beam_width']} {digits(example['beam'])}",
        fontsize=9,
    )
    ax.set_xlabel("step (stacked 10 ms frames)")
    ax.set_ylabel("feature (log-mel, stacked)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def figures(results_dir: str, workdirs: str, figures_dir: str) -> list[str]:
    """Draws the confusion matrices and the spectrogram from the trained runs in `workdirs`
    (skipping a run not there); the paths written."""
    os.makedirs(figures_dir, exist_ok=True)
    written = []
    drawings = [(run, "confusion") for run in CONFUSION_RUNS] + [(SPECTROGRAM_RUN, "spectrogram")]
    for run, draw in drawings:
        workdir = os.path.join(workdirs, run)
        if not os.path.isdir(os.path.join(workdir, "checkpoints")):
            print(f"[speech] no trained workdir for {draw}: {workdir}")
            continue
        name = f"speech_{draw}.png" if draw == "spectrogram" else f"speech_confusion_{run}.png"
        path = os.path.join(figures_dir, name)
        if draw == "confusion":
            plot_confusion(confusion(workdir), run, path)
        else:
            plot_spectrogram(transcribed_example(workdir), run, path)
        written.append(path)
    return written
