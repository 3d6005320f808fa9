"""Does the cells' initialisation scheme change how fast a model learns? (README.md)

Seeds 0, 1, 2 of each `init_scheme` on flax's seq2seq addition example (with flax's own
nn.LSTMCell model as the reference) and on MNIST-1D through the trainer; each run is
`runs.py` (one record with its curve, wall and CPU time).
"""

from __future__ import annotations

from experiments.lab import Run, records, tables

SCHEMES = ("cells", "flax", "torch", "keras")
REFERENCE = "flax-model"  # seq2seq only: flax's nn.LSTMCell model, flax's own init
SEEDS = (0, 1, 2)
METRIC = {"seq2seq": "exact_match", "mnist1d": "test_accuracy"}
LABEL = {"cells": "cells (default)", REFERENCE: "flax-model (flax's nn.LSTMCell)"}
METRIC_LABEL = {"seq2seq": "exact match, step 1,200", "mnist1d": "test accuracy"}


def _runs(task: str) -> list[Run]:
    """Seed by seed, so a partial grid stays balanced."""
    schemes = (*SCHEMES, REFERENCE) if task == "seq2seq" else SCHEMES
    return [
        Run(
            f"{task}_{scheme}_s{seed}",
            command=(
                "-m",
                "experiments.studies.init_schemes.runs",
                f"--task={task}",
                f"--scheme={scheme}",
                f"--seed={seed}",
                "--out={out}",
                "--workdir={workdir}",
            ),
        )  # fmt: skip
        for seed in SEEDS
        for scheme in schemes
    ]


GROUPS = {"mnist1d": lambda results_dir: _runs("mnist1d"),
          "seq2seq": lambda results_dir: _runs("seq2seq")}  # fmt: skip


def _by_scheme(results_dir: str, task: str) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for record in records.load_all(results_dir).values():
        if record["task"] == task:
            out.setdefault(record["scheme"], []).append(record)
    for group in out.values():
        group.sort(key=lambda r: r["seed"])
    return {s: out[s] for s in (*SCHEMES, REFERENCE) if s in out}


def results_table(results_dir: str) -> str:
    """Per task and scheme: the metric's mean ± std over seeds and each seed's value."""
    rows = []
    for task in ("seq2seq", "mnist1d"):
        for scheme, group in _by_scheme(results_dir, task).items():
            values = [r[METRIC[task]] for r in group]
            per_seed = ", ".join(f"{v:.3f}" for v in values)
            label = LABEL.get(scheme, scheme)
            rows.append([task, label, METRIC_LABEL[task], tables.fmt_mean_std(values), per_seed])
    return tables.markdown(["task", "scheme", "metric", "mean ± std", "per seed"], rows)


def curve_table(results_dir: str) -> str:
    """seq2seq exact match at every evaluation (mean over seeds) per scheme, and the mean over
    the evaluations (how fast it learns; mean ± std over seeds)."""
    groups = _by_scheme(results_dir, "seq2seq")
    if not groups:
        return ""
    steps = next(iter(groups.values()))[0]["curve"]["eval_steps"]
    rows = []
    for scheme, group in groups.items():
        curves = [r["curve"]["accuracy"] for r in group]
        means = [sum(col) / len(col) for col in zip(*curves, strict=True)]
        areas = [sum(curve) / len(curve) for curve in curves]
        rows.append([scheme, *(f"{m:.3f}" for m in means), tables.fmt_mean_std(areas)])
    header = ["scheme", *(f"step {s}" for s in steps), "mean over steps"]
    return tables.markdown(header, rows, align="l" + "r" * (len(steps) + 1))


def readme_tables(results_dir: str) -> dict[str, str]:
    return {"results": results_table(results_dir), "curves": curve_table(results_dir)}


def headline(results_dir: str) -> dict:
    """Our 'flax' scheme against flax's own model: seq2seq exact match, mean over steps."""
    groups = _by_scheme(results_dir, "seq2seq")
    area = {s: tables.fmt_mean_std([sum(c) / len(c) for c in (r["curve"]["accuracy"]
            for r in groups[s])]) for s in ("flax", REFERENCE)}  # fmt: skip
    return {
        "ours": f"init_scheme='flax' learns as flax does: {area['flax']} vs "
        f"{area[REFERENCE]} (seq2seq exact match, mean over steps)",
        "published": "-",
    }
