"""The forecasting study's tables and figures (ETTh1 under the Informer protocol, the classic
series), from the records in results/; the LTSF tables are ltsf.py's. Nothing here is typed by
hand except the published rows, which are labelled as such.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from experiments.lab import tables

HORIZONS = (24, 48, 168, 336, 720)

# (MSE, MAE) published by Zhou et al. 2021 (Informer, AAAI; Table 1 univariate, Table 2
# multivariate; github.com/zhouhaoyi/Informer2020), as transcribed in later papers (secondary);
# not measured here.
PUBLISHED = {
    "S": {
        "Informer": {
            24: (0.098, 0.247),
            48: (0.158, 0.319),
            168: (0.183, 0.346),
            336: (0.222, 0.387),
            720: (0.269, 0.435),
        },
        "LSTMa": {
            24: (0.114, 0.272),
            48: (0.193, 0.358),
            168: (0.236, 0.392),
            336: (0.580, 0.698),
            720: (0.683, 0.768),
        },
    },
    "M": {
        "Informer": {
            24: (0.577, 0.549),
            48: (0.685, 0.625),
            168: (0.931, 0.752),
            336: (1.128, 0.873),
            720: (1.215, 0.896),
        },
        "LSTMa": {
            24: (0.650, 0.624),
            48: (0.702, 0.675),
            168: (1.212, 0.867),
            336: (1.424, 0.994),
            720: (1.960, 1.322),
        },
    },
}

PUB_ORDER = ("LSTMa", "Informer")


@functools.cache
def persistence(features: str, horizon: int, input_len: int = 96) -> tuple[float, float]:
    """Test MSE / MAE of repeating the last input row, on the same windows and scaling."""
    from experiments.configs import ett
    from train.tasks import forecast

    config = ett.get_config(f"features={features},horizon={horizon},input_len={input_len}")
    windows = forecast.ForecastData(config.data).windows["test"]
    se = ae = count = 0.0
    for lo in range(0, len(windows), 4096):
        x, y = windows.batch(np.arange(lo, min(lo + 4096, len(windows))))
        err = y.astype(np.float64) - x[:, -1:, :]
        se, ae, count = se + np.sum(err**2), ae + np.sum(np.abs(err)), count + err.size
    return se / count, ae / count


def ett_table(results: dict, features: str, baseline: bool = True) -> str:
    """Horizon rows; ours (LSTM, GRU, and NLinear: the linear model with the same last-value
    normalisation) next to published Informer and LSTMa, MSE / MAE."""
    head = (
        "| horizon | LSTM (ours) MSE / MAE | GRU (ours) MSE / MAE | NLinear (ours) MSE / MAE | "
        "last value (no model) | LSTMa (published) | Informer (published) | "
        "ours beat LSTMa (MSE) |\n"
        "|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for h in HORIZONS:
        cells, wins = [], []
        for cell in ("lstm", "gru"):
            r = results.get(f"ett_{features}_{h}_{cell}")
            if r is None:
                cells.append("not run")
                continue
            mse, mae = r["test"]["mse"], r["test"]["mae"]
            cells.append(f"{mse:.3f} / {mae:.3f}")
            wins.append(mse < PUBLISHED[features]["LSTMa"][h][0])
        linear = results.get(f"ett_{features}_{h}_nlinear")
        cells.append("not run" if linear is None else _fmt_pair(linear["test"]))
        if baseline:
            cells.append("{:.3f} / {:.3f}".format(*persistence(features, h)))
        else:
            cells.append("–")
        pub = [f"{m:.3f} / {a:.3f}" for m, a in (PUBLISHED[features][k][h] for k in PUB_ORDER)]
        verdict = "–" if not wins else ("yes" if all(wins) else ("partly" if any(wins) else "no"))
        row = " | ".join([str(h), *cells, *pub, verdict])
        rows.append(f"| {row} |")
    return head + "\n".join(rows) + "\n"


def _fmt_pair(metrics: dict) -> str:
    return f"{metrics['mse']:.3f} / {metrics['mae']:.3f}"


def seq2seq_table(results: dict) -> str:
    """Direct head vs seq2seq decoder (LSTM), where both ran."""
    rows = []
    for features in ("S", "M"):
        for h in HORIZONS:
            direct = results.get(f"ett_{features}_{h}_lstm")
            s2s = results.get(f"ett_{features}_{h}_lstm_seq2seq")
            if direct and s2s:
                cells = [f"{r['test']['mse']:.3f} / {r['test']['mae']:.3f}" for r in (direct, s2s)]
                walls = (
                    f"{direct['steps']} / {s2s['steps']} ({direct['wall_time_s']:.0f} / "
                    f"{s2s['wall_time_s']:.0f})"
                )
                rows.append(f"| {features} | {h} | {cells[0]} | {cells[1]} | {walls} |")
    if not rows:
        return ""
    return (
        "| features | horizon | LSTM direct head MSE / MAE | LSTM seq2seq decoder MSE / MAE | "
        "steps (wall s) direct / seq2seq |\n|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )


def ett_checks_table(results: dict, features: str) -> str:
    """Per horizon, what the README's conclusions read: whether the last value beats LSTMa's
    published MSE, whether each cell beats the last value, and NLinear's test MSE over the
    better recurrent model's (below 1: the linear model with the same last-value normalisation
    is ahead)."""

    def mse(name: str) -> float | None:
        r = results.get(name)
        return None if r is None else r["test"]["mse"]

    def yes(flag: bool | None) -> str:
        return "–" if flag is None else ("yes" if flag else "no")

    rows = []
    for h in HORIZONS:
        last = persistence(features, h)[0]
        cells = {c: mse(f"ett_{features}_{h}_{c}") for c in ("lstm", "gru")}
        beats = [yes(None if m is None else m < last) for m in cells.values()]
        ran = [m for m in cells.values() if m is not None]
        linear = mse(f"ett_{features}_{h}_nlinear")
        ratio = "–" if linear is None or not ran else f"{linear / min(ran):.2f}"
        lstma = yes(last < PUBLISHED[features]["LSTMa"][h][0])
        rows.append(f"| {h} | {lstma} | {' | '.join(beats)} | {ratio} |")
    return (
        "| horizon | last value beats LSTMa (MSE) | LSTM beats the last value | "
        "GRU beats the last value | NLinear MSE / the better of LSTM and GRU |\n"
        "|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )


def ett_equal_table(results: dict) -> str:
    """Multivariate ETTh1 at equal budget: LSTM, GRU and NLinear each 10 epochs of batch 32 with
    the same early stopping, test MSE mean ± std over 3 seeds, NLinear's mean over the better
    cell's, the median steps run and how many cell runs chose their last epoch."""
    rows = []
    for h in HORIZONS:
        runs = {
            model: [results.get(f"ett_M_{h}_{model}_s{s}") for s in range(3)]
            for model in ("lstm_equal", "gru_equal", "nlinear")
        }
        done = {m: [r for r in rs if r is not None] for m, rs in runs.items()}
        mse = {m: [r["test"]["mse"] for r in rs] for m, rs in done.items()}
        means = {m: float(np.mean(values)) for m, values in mse.items() if values}
        cells = [m for m in ("lstm_equal", "gru_equal") if m in means]
        ratio = (
            f"{means['nlinear'] / min(means[m] for m in cells):.2f}"
            if "nlinear" in means and cells
            else "–"
        )
        row = [str(h)]
        for m in runs:
            mae = [r["test"]["mae"] for r in done[m]]
            row.append(
                f"{tables.fmt_mean_std(mse[m])} / {tables.fmt_mean_std(mae)} ({len(mae)})"
                if mae else "not run"
            )  # fmt: skip
        row.append(ratio)
        steps = [
            str(int(np.median([r["steps"] for r in done[m]]))) if done[m] else "–" for m in runs
        ]
        row.append(" / ".join(steps))
        cell_runs = done["lstm_equal"] + done["gru_equal"]
        at_last = sum(r["best_step"] == r["steps"] for r in cell_runs)
        row.append(f"{at_last} of {len(cell_runs)}")
        rows.append("| " + " | ".join(row) + " |")
    return (
        "| horizon | LSTM MSE / MAE (seeds) | GRU MSE / MAE (seeds) | NLinear MSE / MAE (seeds) | "
        "NLinear MSE / the better cell's | median steps LSTM / GRU / NLinear | "
        "cell runs whose best epoch was the last |\n"
        "|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )


def ett_runs_summary(results: dict) -> str:
    runs = [
        r
        for n, r in results.items()
        if n.startswith("ett_") and n.count("_") == 3 and n.endswith(("_lstm", "_gru"))
    ]
    if not runs:
        return "No ETTh1 run has finished yet.\n"
    wall = sum(r["wall_time_s"] for r in runs)
    commits = {r["git_commit"][:7] for r in runs}
    hw = runs[0]["hardware"]
    steps = [r["steps"] for r in runs]
    return (
        f"{len(runs)} of 20 ETTh1 runs finished; {wall / 60:.1f} min of wall time in all "
        f"({hw['cpu_count']}-core {hw.get('cpu', hw['platform'])} CPU, shared with other jobs), "
        f"{min(steps)}-{max(steps)} steps each (early stopping on validation MSE); "
        f"{len(commits)} different commits (each JSON records its own).\n"
    )


def example_table(results: dict) -> str:
    rows = []
    for name in ("airline_lstm", "sunspots_lstm"):
        r = results.get(name)
        if r:
            d = r["config"]["data"]
            rows.append(
                f"| {os.path.basename(d['path'])} | {d['input_len']} -> {d['horizon']} | "
                f"{r['test']['mse']:.3f} / {r['test']['mae']:.3f} | "
                f"{r['wall_time_s']:.0f} | {r['git_commit'][:7]} | "
                f"{r['hardware'].get('cpu', r['hardware']['platform'])}, "
                f"{r['hardware']['cpu_count']} cores |"
            )
    if not rows:
        return ""
    return (
        "| series | input -> horizon | LSTM test MSE / MAE (standardised) | wall (s) | commit | "
        "hardware |\n|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )


def plot_forecasts(
    features: str, workdirs: str, path: str, finished=(), window: int = 1000
) -> bool:
    """Forecast vs actual (target OT) on one test window per horizon, LSTM and GRU."""
    import matplotlib

    from train import checkpoint

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def trained(h, cell):  # finished runs only (a running one holds its workdir)
        name = f"ett_{features}_{h}_{cell}"
        return name in finished and os.path.isdir(os.path.join(workdirs, name, "checkpoints"))

    available = [h for h in HORIZONS if trained(h, "lstm") or trained(h, "gru")]
    if not available:
        return False
    fig, axes = plt.subplots(len(available), 1, figsize=(11, 2.4 * len(available)), squeeze=False)
    for ax, h in zip(axes[:, 0], available, strict=True):
        first = True
        for cell, color in (("lstm", "tab:blue"), ("gru", "tab:green")):
            if not trained(h, cell):
                continue
            trained = checkpoint.load_trained(os.path.join(workdirs, f"ett_{features}_{h}_{cell}"))
            task, params = trained.task, trained.params
            windows = task.data.windows["test"]
            idx = np.array([min(window, len(windows) - 1)])
            x, y = windows.batch(idx)
            pred = np.asarray(task.predict(params, x))
            k = task.data.target_index
            past = np.arange(-x.shape[1], 0)
            future = np.arange(h)
            if first:
                first = False
                ax.plot(past, x[0, :, k], color="black", lw=1, label="input (OT)")
                ax.plot(future, y[0, :, k], color="black", lw=1, ls="--", label="actual")
            ax.plot(future, pred[0, :, k], color=color, lw=1.2, label=f"{cell.upper()} forecast")
        ax.set_title(f"ETTh1 '{features}', horizon {h}: test window {int(idx[0])}")
        ax.set_ylabel("OT (standardised)")
        ax.legend(loc="upper left", fontsize=7, ncol=4)
    axes[-1, 0].set_xlabel("hours relative to the forecast start")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _compact(r: dict | None, keys=("mse", "mae")) -> str:
    if r is None:
        return "not run"
    return "/".join(f"{r['test'][k]:.3f}" for k in keys)


def docstring_results(results: dict, config_name: str) -> str | None:
    """The text for a config docstring's [results] block (lines under 100 chars), or None."""
    if config_name == "ett":
        if not any(n.startswith("ett_") for n in results):
            return None
        lines = ["Test MSE/MAE (standardised), best-validation checkpoint; LSTMa published:"]
        for features in ("S", "M"):
            for h in HORIZONS:
                lstm, gru = (results.get(f"ett_{features}_{h}_{c}") for c in ("lstm", "gru"))
                pub = "/".join(f"{v:.3f}" for v in PUBLISHED[features]["LSTMa"][h])
                lines.append(
                    f"  {features} {h:>3}: LSTM {_compact(lstm)}  GRU {_compact(gru)}  "
                    f"(LSTMa {pub})"
                )
        return "\n".join(lines) + "\n"
    r = results.get(f"{config_name}_lstm")
    if r is None:
        return None
    return (
        f"Measured: test MSE {r['test']['mse']:.4f} / MAE {r['test']['mae']:.4f} "
        f"(standardised),\nbest valid step {r.get('best_step')}, {r['wall_time_s']:.0f} s "
        f"wall on {r['hardware']['cpu_count']} CPU cores, commit {r['git_commit'][:7]}.\n"
    )
