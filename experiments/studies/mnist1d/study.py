"""MNIST-1D (Greydanus & Kobak 2024): the published GRU baseline, with PyTorch's and this
library's initialisation, next to the authors' CNN, MLP and logistic regression trained in the
same harness, 3 seeds each (README.md). Every other cell in the GRU's place is the leaderboard's
MNIST-1D column."""

from __future__ import annotations

import os

import cells
from experiments.lab import Run, records, tables

SEEDS = (0, 1, 2)
# (run prefix, label, published final-model accuracy in %, or "")
ROWS = (
    ("mnist1d_gru_torchinit", "GRU, 6 units x 2 directions, flatten head, PyTorch's "
     "initialisation (`torch_init=True`, as the published baseline)", "91%"),
    ("mnist1d_gru", "the same GRU, this library's initialisers", ""),
    ("mnist1d_gru_ln", "GRU with layer norm (`gru_ln`)", ""),
    ("mnist1d_cnn", "CNN (`model=cnn`: the authors' ConvBase, 3 strided convolutions, 25 "
     "channels)", "94%"),
    ("mnist1d_mlp", "MLP (`model=mlp`: MLPBase, 100 units, one residual layer)", "68%"),
    ("mnist1d_logistic", "logistic regression (`model=logistic`)", "32%"),
)  # fmt: skip
NOTES = {  # what a row's accuracy column says instead of the seeds' values
    "mnist1d_gru_ln": "(layer norm of a one-feature input keeps only its sign: the leaderboard "
    "notes)",
}
FINAL_MODEL = "mnist1d_final_model"


def mnist1d_runs(results_dir: str) -> list[Run]:
    """The published GRU with PyTorch's init, the published non-recurrent models, then every
    registered cell in the GRU's place (the GRU first), 3 seeds each."""
    torch_init = [
        Run(f"mnist1d_gru_torchinit_s{s}", config=f"mnist1d.py:cell=gru,torch_init=True,seed={s}")
        for s in SEEDS
    ]
    baselines = [
        Run(f"mnist1d_{model}_s{s}", config=f"mnist1d.py:model={model},seed={s}")
        for model in ("cnn", "mlp", "logistic")
        for s in SEEDS
    ]
    every_cell = [
        Run(f"mnist1d_{cell}_s{s}", config=f"mnist1d.py:cell={cell},seed={s}")
        for cell in ("gru", *(c for c in cells.names(grids=False) if c != "gru"))
        for s in SEEDS
    ]
    return torch_init + baselines + every_cell


GROUPS = {"mnist1d": mnist1d_runs}


def _percent(values: list[float], per_seed: bool = True, bold: bool = False) -> str:
    """'89.3 ± 1.1% (89.6, 88.1, 90.3)': mean ± std in percent (bold if asked), each seed's."""
    text = tables.fmt_mean_std([100 * v for v in values], digits=1) + "%"
    text = f"**{text}**" if bold else text
    if per_seed:
        text += " (" + ", ".join(f"{100 * v:.1f}" for v in values) + ")"
    return text


def results_table(results_dir: str) -> str:
    """One row per model of ROWS that has records: both accuracies over the seeds, each
    column's best mean in bold."""
    runs = records.load_all(results_dir, prefixes=("mnist1d_",))
    final_path = os.path.join(results_dir, f"{FINAL_MODEL}.json")
    final_rows = records.read(final_path)["rows"] if os.path.exists(final_path) else []
    final = {r["name"]: r["final_test"]["accuracy"] for r in final_rows}
    rows = {}  # prefix -> (its records, best-checkpoint accuracies, final ones or None)
    for prefix, _, _ in ROWS:
        seeds = [runs[f"{prefix}_s{s}"] for s in SEEDS if f"{prefix}_s{s}" in runs]
        finals = [final.get(f"{prefix}_s{s}") for s in SEEDS]
        if seeds:
            rows[prefix] = (seeds, [r["test"]["accuracy"] for r in seeds],
                            None if None in finals else finals)  # fmt: skip
    means = [{p: tables.mean_std(v[k])[0] for p, v in rows.items() if v[k]} for k in (1, 2)]
    top = [max(m.values(), default=None) for m in means]
    body = []
    for prefix, label, published in ROWS:
        if prefix not in rows:
            continue
        seeds, accuracies, finals = rows[prefix]
        note = NOTES.get(prefix)
        accuracy = _percent(accuracies, note is None, means[0][prefix] == top[0])
        accuracy = f"{accuracy} {note}" if note else accuracy
        final_text = (
            "-" if finals is None else _percent(finals, note is None, means[1][prefix] == top[1])
        )
        walls = [r["wall_time_s"] for r in seeds]
        body.append([label, f"{seeds[0]['params']:,}", accuracy, final_text, published,
                     f"{min(walls):.0f}-{max(walls):.0f} s"])  # fmt: skip
    header = ["model", "params", "test accuracy, best-validation checkpoint, 3 seeds",
              "final model (step 8,000), 3 seeds", "published", "wall per run"]  # fmt: skip
    return tables.markdown(header, body, align="lrllrl")


def readme_tables(results_dir: str) -> dict[str, str]:
    return {"mnist1d": results_table(results_dir)}


def headline(results_dir: str) -> dict:
    runs = records.load_all(results_dir, prefixes=("mnist1d_gru_torchinit_",))
    return {
        "ours": "GRU test accuracy "
        + _percent([r["test"]["accuracy"] for r in runs.values()], per_seed=False)
        + " (best-validation checkpoint, 3 seeds)",
        "published": "91% (Greydanus & Kobak 2024)",
    }
