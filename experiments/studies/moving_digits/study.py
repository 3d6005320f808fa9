"""Moving digits (README.md): Shi et al. (2015)'s ConvLSTM encoder-forecaster against a
non-recurrent 3-D convolutional network and an FC-LSTM at the ConvLSTM's parameter count, and
the copy-last-frame and mean-frame baselines, 3 seeds each, in one harness
(train/tasks/moving_digits.py)."""

from __future__ import annotations

import functools
import os

from experiments.lab import Run, records, tables

SEEDS = (0, 1, 2)
CONFIG = "moving_digits.py"
# (model, label, config arguments beyond the seed); the baselines get the ConvLSTM's budget.
MODELS = (
    ("convlstm", "ConvLSTM encoder-forecaster (`model=convlstm`)", ""),
    ("conv3d", "3-D CNN, no recurrence (`model=conv3d`), same parameters", "model=conv3d"),
    ("fc_lstm", "FC-LSTM on flattened frames (`model=fc,cell=lstm`), the nearest width at or "
     "above those parameters", "model=fc,cell=lstm"),
)  # fmt: skip
COPY_LAST = ("copy_last", "copy the last input frame (no parameters)")
MEAN_FRAME = ("mean_frame", "the training frames' per-pixel mean, every frame (no parameters)")
BASELINES = (COPY_LAST, MEAN_FRAME)
CURVE_FRAMES = (1, 5, 10)


@functools.cache
def fc_lstm_width() -> int:
    """The FC-LSTM's width: the narrowest whose model has at least the ConvLSTM model's
    parameters (one unit costs about 5,500 on 1,024-pixel frames, more than the budget's 2%)."""
    from experiments.configs import moving_digits as md_config
    from train import budget, validate

    config = md_config.get_config("model=fc,cell=lstm")
    task_cls = validate.validate(config)
    width = 1
    while budget.count_at(config, task_cls, width) < convlstm_params():
        width += 1
    return width


@functools.cache
def convlstm_params() -> int:
    """The ConvLSTM model's parameter count: the baselines' `param_budget`."""
    from experiments.configs import moving_digits as md_config
    from train import budget, validate

    config = md_config.get_config()
    task_cls = validate.validate(config)
    return budget.count_at(config, task_cls, int(config.model.hidden_size))


def runs(results_dir: str) -> list[Run]:
    del results_dir
    out = []
    for s in SEEDS:
        for model, _, args in MODELS:
            budget = {
                "convlstm": "",
                "conv3d": f"param_budget={convlstm_params()}",
                "fc_lstm": f"hidden_size={fc_lstm_width()}",
            }[model]
            fields = ",".join(a for a in (args, budget, f"seed={s}") if a)
            out.append(Run(f"md_{model}_s{s}", config=f"{CONFIG}:{fields}"))
        out.append(
            Run(
                f"md_copy_last_s{s}",
                command=(
                    "-m",
                    "experiments.studies.moving_digits.copy_last",
                    f"--seed={s}",
                    "--out={out}",
                ),
            )  # fmt: skip
        )
        out.append(
            Run(
                f"md_mean_frame_s{s}",
                command=(
                    "-m",
                    "experiments.studies.moving_digits.copy_last",
                    "--baseline=mean_frame",
                    f"--seed={s}",
                    "--out={out}",
                ),
            )  # fmt: skip
        )
    return out


GROUPS = {"moving_digits": runs}


def _rows(results_dir: str) -> list[tuple[str, str, list[dict]]]:
    """(model, label, its records over the seeds) for every model with records."""
    found = records.load_all(results_dir, prefixes=("md_",))
    rows = []
    for model, label, *_ in (*MODELS, *BASELINES):
        seeds = [found[f"md_{model}_s{s}"] for s in SEEDS if f"md_{model}_s{s}" in found]
        if seeds:
            rows.append((model, label, seeds))
    return rows


def results_table(results_dir: str) -> str:
    body = []
    rows = _rows(results_dir)
    best = min((tables.mean_std([r["test"]["mse_per_frame"] for r in s])[0] for *_, s in rows),
               default=None)  # fmt: skip
    for model, label, seeds in rows:
        mse = [r["test"]["mse_per_frame"] for r in seeds]
        text = tables.fmt_mean_std(mse, digits=1)
        if tables.mean_std(mse)[0] == best:
            text = f"**{text}**"
        per_frame = [
            tables.fmt_mean_std([r["test"][f"mse_frame_{k}"] for r in seeds], digits=1)
            for k in CURVE_FRAMES
        ]
        bce = tables.fmt_mean_std([r["test"]["bce_per_frame"] for r in seeds], digits=1)
        walls = [r["wall_time_s"] for r in seeds]
        trained = model not in {b[0] for b in BASELINES}
        steps = f"{seeds[0].get('steps', '?')}" if trained else "-"
        body.append([label, f"{seeds[0].get('params', 0):,}", f"{text} (n={len(seeds)})",
                     *per_frame, bce, steps, f"{min(walls):.0f}-{max(walls):.0f} s"])  # fmt: skip
    header = ["model", "params", "test MSE per frame", *(f"frame {k}" for k in CURVE_FRAMES),
              "test BCE per frame", "steps", "wall per run"]  # fmt: skip
    return tables.markdown(header, body, align="lrllllllr")


def readme_tables(results_dir: str) -> dict[str, str]:
    return {"moving_digits": results_table(results_dir)}


def figures(results_dir: str, workdirs: str, figures_dir: str) -> list[str]:
    """The test MSE of each predicted frame (from the records) and, where trained runs are in
    workdirs/moving_digits, their predictions beside the truth: from the lowest seed whose
    workdirs hold the most trained models, so every row is the same seed's test sequence."""
    from experiments.studies.moving_digits import render

    os.makedirs(figures_dir, exist_ok=True)
    written = []
    path = os.path.join(figures_dir, "mse_per_frame.png")
    if render.plot_mse_per_frame(_rows(results_dir), path):
        written.append(path)
    path = os.path.join(figures_dir, "predictions.png")
    seed = figure_seed(workdirs)
    trained = {model: os.path.join(workdirs, f"md_{model}_s{seed}") for model, *_ in MODELS}
    if render.plot_predictions(trained, path, seed):
        written.append(path)
    return written


def figure_seed(workdirs: str) -> int:
    """The seed of the predictions figure: the lowest with the most finished runs (a
    results.json) in `workdirs` (seed 0 when none has any); a run still training is skipped."""

    from experiments.studies.moving_digits import render

    def count(seed: int) -> int:
        return sum(render.finished(os.path.join(workdirs, f"md_{model}_s{seed}"))
                   for model, *_ in MODELS)  # fmt: skip

    return max(SEEDS, key=lambda seed: (count(seed), -seed))


def headline(results_dir: str) -> dict:
    """The trained models' test MSE per frame next to copy-last's, once records exist."""
    rows = _rows(results_dir)
    if not rows:
        return {}
    parts = []
    for model, _, seeds in rows:
        mse = tables.fmt_mean_std([r["test"]["mse_per_frame"] for r in seeds], digits=1)
        parts.append(f"{model.replace('_', '-')} {mse} (n={len(seeds)})")
    return {"ours": "test MSE per frame, 32 x 32, 10 frames ahead: " + ", ".join(parts)}
