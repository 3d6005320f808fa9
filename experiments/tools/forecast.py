r"""The forecasts of a trained forecasting run, in the data's own units: CSV files and a figure.

    python -m experiments.tools.forecast --workdir=DIR [--out=DIR/forecasts] [--split=test]
        [--which=best|latest] [--plot_windows=4] [--nofuture] [--overwrite]

Writes into --out (default WORKDIR/forecasts; an existing file is an error unless --overwrite):

  <split>.csv    one row per (window, step) of every window of the split: `window`, `origin`
                 (the date of the window's last input row), `date` (of the forecast row), `step`
                 (1..H), then for each forecast column c: `c` (the actual value), `c_forecast`,
                 `c_last_value` (the last input value of c: the no-model baseline), all in the
                 CSV's units (the train-fitted StandardScaler inverted).
  future.csv     the H rows after the file's last row, forecast from its last L rows: `date`
                 (extrapolated when the last dates are evenly spaced, else '+k'), `step`,
                 `c_forecast` per column (--nofuture: not written).
  <split>.png    `--plot_windows` evenly spaced windows of the target column: context, actual,
                 forecast and last value.
  <split>_summary.json
                 the run, the checkpoint step, the window count, and MSE / MAE of the forecast
                 and of the last value: standardised (the numbers `train.evaluate` reports) and
                 per column in the CSV's units.

Nothing is written into the workdir itself besides --out, so this is safe beside a live run.
A forecast of one's own CSV from start to finish (experiments/studies/forecasting/README.md,
"Forecasting your own CSV"):

    python -m train.main --workdir=runs/load \
        --config=experiments/configs/forecast_csv.py:path=load.csv,date_column=time,target=load
    python -m experiments.tools.forecast --workdir=runs/load
"""

from __future__ import annotations

import csv
import json
import os
import sys

import numpy as np
from absl import app, flags, logging

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command-line flags (defined only when run as a script, so importing is side-free)."""
    flags.DEFINE_string("workdir", None, "A forecasting run's workdir (with config.json).")
    flags.DEFINE_string("out", None, "Output directory (default: WORKDIR/forecasts).")
    flags.DEFINE_string("split", "test", "Which split's windows: 'train', 'valid' or 'test'.")
    flags.DEFINE_enum("which", "best", ["best", "latest"], "Which checkpoint.")
    flags.DEFINE_integer("plot_windows", 4, "Windows in the figure (0: no figure).")
    flags.DEFINE_bool("future", True, "Write future.csv: the H rows after the file.")
    flags.DEFINE_bool("overwrite", False, "Replace existing output files.")


BATCH = 256  # windows per compiled forecast call (the last batch is padded to it)


def forecast_windows(predict, params, windows) -> np.ndarray:
    """Standardised forecasts [N, H, C] of every window of `windows` (batches of BATCH), with
    `predict(params, x_BxLxC)` the task's (jitted) forecast."""
    out = []
    for lo in range(0, len(windows), BATCH):
        idx = np.arange(lo, min(lo + BATCH, len(windows)))
        x, _ = windows.batch(np.pad(idx, (0, BATCH - len(idx)), mode="edge"))
        out.append(np.asarray(predict(params, x))[: len(idx)])
    return np.concatenate(out)


def future_dates(dates: tuple[str, ...], horizon: int) -> list[str]:
    """The `horizon` dates after `dates`: integers and evenly spaced ISO dates (hours, days,
    months, ...) continue their step; anything else is '+1', '+2', ..."""
    last = dates[-4:]
    try:
        steps = np.diff([int(d) for d in last])
        if len(last) > 1 and (steps == steps[0]).all():
            return [str(int(last[-1]) + k * int(steps[0])) for k in range(1, horizon + 1)]
    except ValueError:
        pass
    try:
        parsed = np.array([np.datetime64(d.strip()) for d in last])
        steps = np.diff(parsed)
        if len(last) > 1 and (steps == steps[0]).all() and steps[0] > np.timedelta64(0):
            ahead = parsed[-1] + steps[0] * np.arange(1, horizon + 1)
            sep = " " if " " in last[-1].strip() else "T"
            return [str(d).replace("T", sep) for d in ahead]
    except ValueError:
        pass
    return [f"+{k}" for k in range(1, horizon + 1)]


def errors(pred, truth) -> dict:
    """MSE / MAE over all values and per column (last axis)."""
    diff = np.asarray(pred, np.float64) - np.asarray(truth, np.float64)
    flat = diff.reshape(-1, diff.shape[-1])
    return {
        "mse": float(np.mean(flat**2)),
        "mae": float(np.mean(np.abs(flat))),
        "mse_per_column": np.mean(flat**2, axis=0).tolist(),
        "mae_per_column": np.mean(np.abs(flat), axis=0).tolist(),
    }


def write_split_csv(path, data, windows, pred_NxHxC, actual_NxHxC, last_NxC) -> None:
    """<split>.csv: one row per (window, step); values in the CSV's units."""
    L, H = windows.input_len, windows.horizon
    dates = data.table.dates
    header = ["window", "origin", "date", "step"]
    for c in data.columns:
        header += [c, f"{c}_forecast", f"{c}_last_value"]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for n in range(pred_NxHxC.shape[0]):
            origin = windows.start + n + L - 1
            triples = np.stack(  # [H, C, 3] -> [H, 3C]: actual, forecast, last value per column
                [
                    actual_NxHxC[n],
                    pred_NxHxC[n],
                    np.broadcast_to(last_NxC[n], (H, len(last_NxC[n]))),
                ],
                axis=-1,
            ).reshape(H, -1)
            for k in range(H):
                writer.writerow(
                    [n, dates[origin], dates[origin + 1 + k], k + 1]
                    + [f"{v:.7g}" for v in triples[k]]
                )


def plot(path, data, windows, pred, actual, last, split: str, count: int) -> None:
    """`count` evenly spaced windows of the target column (CSV units)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = data.target_index
    L, H = windows.input_len, windows.horizon
    picks = np.unique(np.linspace(0, len(windows) - 1, count).astype(int))
    fig, axes = plt.subplots(len(picks), 1, figsize=(11, 2.4 * len(picks)), squeeze=False)
    context = data.scaler.inverse_transform(data.series_NxC)[:, k]
    for ax, n in zip(axes[:, 0], picks, strict=True):
        first = windows.start + n
        ax.plot(np.arange(-L, 0), context[first : first + L], color="black", lw=1, label="input")
        future = np.arange(H)
        ax.plot(future, actual[n, :, k], color="black", lw=1, ls="--", label="actual")
        ax.plot(future, pred[n, :, k], color="tab:blue", lw=1.2, label="forecast")
        ax.plot(future, np.full(H, last[n, k]), color="tab:gray", lw=1, ls=":", label="last value")
        origin = data.table.dates[first + L - 1]
        ax.set_title(f"{split} window {n} (last input row {origin})", fontsize=9)
        ax.set_ylabel(data.columns[k])
        ax.legend(loc="upper left", fontsize=7, ncol=4)
    axes[-1, 0].set_xlabel("steps relative to the forecast start")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def forecasting_task(workdir: str):
    """The ForecastTask a workdir was trained on (its data loaded); ConfigError when the
    workdir has no config.json or holds another kind of run."""
    from train import workdir as workdir_lib
    from train.errors import ConfigError
    from train.tasks import forecast, registry

    config = workdir_lib.load_config(workdir)
    if config.task != "forecast":
        raise ConfigError(
            f"--workdir {workdir!r} holds a {config.task!r} run; experiments.tools.forecast needs "
            "a forecasting run (config.task='forecast')."
        )
    task = registry.get_task(config)
    assert isinstance(task, forecast.ForecastTask)
    return task


def write_forecasts(
    workdir: str,
    out: str | None = None,
    split: str = "test",
    which: str = "best",
    plot_windows: int = 4,
    future: bool = True,
    overwrite: bool = False,
) -> dict:
    """Writes the files above; returns the summary. Raises ConfigError on bad input."""
    import jax

    from train import checkpoint
    from train.errors import ConfigError

    task = forecasting_task(workdir)
    data = task.data
    if split not in data.windows:
        raise ConfigError(f"--split must be one of {', '.join(data.windows)}, got {split!r}.")
    if plot_windows < 0:
        raise ConfigError(f"--plot_windows must be >= 0, got {plot_windows}.")
    out = out or os.path.join(workdir, "forecasts")
    names = [f"{split}.csv", f"{split}_summary.json"]
    names += [f"{split}.png"] * (plot_windows > 0) + ["future.csv"] * future
    existing = [n for n in names if os.path.exists(os.path.join(out, n))]
    if existing and not overwrite:
        raise ConfigError(
            f"--out {out!r} already holds {', '.join(existing)}; name another --out or pass "
            "--overwrite."
        )
    trained = checkpoint.load_trained(workdir, which, task)
    windows = data.windows[split]
    L, H = windows.input_len, windows.horizon
    idx = np.arange(len(windows))
    x_scaled, y_scaled = windows.batch(idx)
    predict = jax.jit(task.predict)
    pred_scaled = forecast_windows(predict, trained.params, windows)
    last_scaled = np.broadcast_to(x_scaled[:, -1:, :], y_scaled.shape)
    n_cols = len(data.columns)

    def original(a):
        return data.scaler.inverse_transform(np.asarray(a).reshape(-1, n_cols)).reshape(a.shape)

    pred, actual = original(pred_scaled), original(y_scaled)
    last = original(x_scaled[:, -1, :])
    os.makedirs(out, exist_ok=True)
    write_split_csv(os.path.join(out, f"{split}.csv"), data, windows, pred, actual, last)

    if future:  # the file's last L rows in, the H rows after the file out
        ahead_scaled = np.asarray(predict(trained.params, data.series_NxC[None, -L:, :]))[0]
        ahead = data.scaler.inverse_transform(ahead_scaled)
        with open(os.path.join(out, "future.csv"), "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["date", "step"] + [f"{c}_forecast" for c in data.columns])
            for k, date in enumerate(future_dates(data.table.dates, H)):
                writer.writerow([date, k + 1] + [f"{v:.7g}" for v in ahead[k]])

    if plot_windows:
        plot(os.path.join(out, f"{split}.png"), data, windows, pred, actual, last, split,
             plot_windows)  # fmt: skip
    summary = {
        "workdir": workdir,
        "split": split,
        "checkpoint_step": trained.step,
        "windows": len(windows),
        "input_len": L,
        "horizon": H,
        "columns": list(data.columns),
        "standardised": {
            "forecast": errors(pred_scaled, y_scaled),
            "last_value": errors(last_scaled, y_scaled),
        },
        "original_units": {
            "forecast": errors(pred, actual),
            "last_value": errors(np.broadcast_to(last[:, None, :], actual.shape), actual),
        },
        "files": sorted(names),
    }
    with open(os.path.join(out, f"{split}_summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return summary


def main(argv):
    if len(argv) > 1:
        print(f"error: unexpected arguments: {' '.join(argv[1:])}", file=sys.stderr)
        sys.exit(2)
    logging.set_verbosity(logging.WARNING)
    if not FLAGS.workdir:
        print("error: --workdir is required.", file=sys.stderr)
        sys.exit(2)
    from train.errors import ConfigError

    workdir = os.path.expanduser(FLAGS.workdir)
    out = os.path.expanduser(FLAGS.out) if FLAGS.out else None
    try:
        summary = write_forecasts(
            workdir,
            out,
            FLAGS.split,
            FLAGS.which,
            FLAGS.plot_windows,
            FLAGS.future,
            FLAGS.overwrite,
        )
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    std, units = summary["standardised"], summary["original_units"]
    print(
        f"{summary['windows']} {summary['split']} windows x {summary['horizon']} steps -> "
        f"{out or os.path.join(workdir, 'forecasts')}: "
        f"MSE {std['forecast']['mse']:.4f} standardised "
        f"(last value {std['last_value']['mse']:.4f}), "
        f"MAE {units['forecast']['mae']:.4g} in the CSV's units "
        f"(last value {units['last_value']['mae']:.4g})"
    )


if __name__ == "__main__":
    define_flags()
    app.run(main)
