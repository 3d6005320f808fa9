r"""Gathers the forecasting and long-range results into markdown tables and pictures.

    python -m experiments.report --out=DIR              # DIR/report.md (+ figures)
    python -m experiments.report --out=DIR --readme=README.md --docstrings

reads experiments/results/{ett_*,adding_*,copy_*,gradient_flow_*,gates_*}.json (written by
experiments/run_grid.py, gradient_flow.py and gates.py), draws forecast-vs-actual plots of
ETTh1 test windows from the trained workdirs (when they exist), and writes the tables. With
--readme it replaces the README section between `<!-- section:forecast -->` and
`<!-- /section:forecast -->` by the generated text; with --docstrings it fills the `[results]`
blocks of the ett / adding / copy / airline / sunspots config docstrings. Nothing here is typed
by hand except the published rows, which are labelled as such (REFERENCE.md, secondary).
"""

from __future__ import annotations

import functools
import glob
import os
import sys

import numpy as np
from absl import app, flags, logging

from experiments import ltsf_report, records
from experiments.run_grid import LONG_RANGE_MODELS

FLAGS = flags.FLAGS
ROOT = records.ROOT
FIGURES = records.FIGURES_DIR
HORIZONS = (24, 48, 168, 336, 720)
CELLS = ("rnn", "lstm", "gru")

# Informer (Zhou et al. 2021) Table 1/2 as transcribed in later papers: (MSE, MAE).
# Published, secondary (see shared/REFERENCE.md (beside the repository)); not measured here.
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
SECTION = "forecast"  # the README section this script generates


def _fmt(x, digits=3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


# -- ETTh1 ------------------------------------------------------------------------------------
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
        "**Direct head vs seq2seq decoder** (LSTM; `python -m experiments.run_grid seq2seq`; "
        "the seq2seq runs had up to 2000 steps in both modes):\n\n"
        "| features | horizon | LSTM direct head MSE / MAE | LSTM seq2seq decoder MSE / MAE | "
        "steps (wall s) direct / seq2seq |\n|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )


def ett_notes(results: dict, features: str) -> str:
    """Generated remarks: ours vs the last-value baseline, and that baseline vs LSTMa."""
    beat = {"lstm": [], "gru": []}
    for h in HORIZONS:
        last_mse = persistence(features, h)[0]
        for cell in beat:
            r = results.get(f"ett_{features}_{h}_{cell}")
            if r is not None:
                beat[cell].append(r["test"]["mse"] < last_mse)
    if not any(beat.values()):
        return ""
    lstma = sum(persistence(features, h)[0] < PUBLISHED[features]["LSTMa"][h][0] for h in HORIZONS)
    ours = ", ".join(
        f"{cell.upper()} beats it at {sum(v)} of {len(v)} run horizons"
        for cell, v in beat.items()
        if v
    )
    text = (
        f"Last value (the forecast = the last input row, no training) beats LSTMa's published "
        f"MSE at {lstma} of 5 horizons; {ours}."
    )
    return text + linear_note(results, features) + "\n"


def linear_note(results: dict, features: str) -> str:
    """Where the gain over LSTMa comes from: NLinear against the better of LSTM and GRU."""
    ratios = []
    for h in HORIZONS:
        linear = results.get(f"ett_{features}_{h}_nlinear")
        ours = [results.get(f"ett_{features}_{h}_{c}") for c in ("lstm", "gru")]
        ours = [r["test"]["mse"] for r in ours if r is not None]
        if linear is not None and ours:
            ratios.append((h, linear["test"]["mse"] / min(ours)))
    if not ratios:
        return ""
    spread = ", ".join(f"{r:.2f} at {h}" for h, r in ratios)
    level = sum(r <= 1.02 for _, r in ratios)  # within 2%, or better
    verdict = (
        "most of the gain over LSTMa comes from the last-value normalisation that both use (it "
        "removes the level shift between the training year and the test months), not from the "
        "recurrence"
        if level == len(ratios)
        else "the recurrence adds accuracy where the ratio is above 1"
    )
    return (
        " NLinear (`experiments/configs/ltsf.py:model=nlinear,input_len=96`, trained as DLinear's "
        "scripts: one linear map over time from x - x_L, plus x_L) over the better recurrent "
        f"model, test MSE ratio: {spread}; it matches (within 2%) or beats them at {level} of "
        f"{len(ratios)} horizons: {verdict}."
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


# -- long-range -------------------------------------------------------------------------------
def long_range_table(results: dict, task: str) -> str:
    metric = "mse" if task == "adding" else "cross_entropy"
    lengths = sorted(
        {
            r["config"]["data"]["length"]
            for n, r in results.items()
            if n.startswith(f"{task}_") and "config" in r
        }
    )
    if not lengths:
        return f"No {task} run has finished yet.\n"
    extra = "" if task == "adding" else " copy acc |"
    head = (
        f"| T | test-set baseline {metric} |"
        + "".join(
            f" {c.upper()} test {metric} |{extra.replace('copy', c.upper() + ' copy')}"
            f" {c.upper()} steps to solve |"
            for c in CELLS
        )
        + " wall time (s) RNN / LSTM / GRU |\n"
    )
    per_cell = 3 if task == "copy" else 2
    head += "|---|---|" + "---|" * (per_cell * len(CELLS) + 1) + "\n"
    rows = []
    for t in lengths:
        line = [str(t)]
        walls = []
        base = None
        for cell in CELLS:
            r = results.get(f"{task}_{t}_{cell}")
            if r is None:
                line += ["not run"] * per_cell
                walls.append("–")
                continue
            base = r["baseline"]["test"][metric]
            line.append(_fmt(r["test"][metric], 4))
            if task == "copy":
                line.append(_fmt(r["test"]["copy_accuracy"], 3))
            solved_at = r.get("steps_to_solve")
            line.append(f"{solved_at}" if solved_at is not None else f"not in {r['steps']}")
            walls.append(f"{r['wall_time_s']:.0f}")
        line.insert(1, _fmt(base, 4))
        line.append(" / ".join(walls))
        rows.append("| " + " | ".join(line) + " |")
    return head + "\n".join(rows) + "\n"


def long_range_cell(r: dict) -> str:
    """One run of the long-range study: test loss / the test set's trivial baseline, the copy
    accuracy (copy), and the step the validation set was first solved at (or the budget)."""
    if r.get("status") == "diverged":
        step = r["error"].split(" at step ")[-1].split(" ")[0] if " at step " in r["error"] else "?"
        return f"diverged (step {step})"
    text = f"{r['relative_loss']['test']:.3f}"
    if "copy_accuracy" in r["test"]:
        text += f", acc {100 * r['test']['copy_accuracy']:.1f}%"
    solved_at = r.get("steps_to_solve")
    return text + (f", **solved at {solved_at:,}**" if solved_at else f", not in {r['steps']:,}")


def long_range_study_table(results: dict, task: str) -> str:
    """The long_range grid (`run_grid long_range`): one row per T, one column per model."""
    runs = {n: r for n, r in results.items() if n.startswith(f"long_{task}_")}
    lengths = sorted({int(n.split("_")[2]) for n in runs})
    if not lengths:
        return f"No long-range {task} run has finished yet.\n"
    budgets = {t: max((r.get("num_steps", 0) for n, r in runs.items()
                       if n.startswith(f"long_{task}_{t}_")), default=0)
               for t in lengths}  # fmt: skip
    # The IRNN's rate check (`run_grid long_range_irnn`), a column where it ran.
    models = LONG_RANGE_MODELS + tuple(
        sorted({n.split("_", 3)[3] for n in runs if "_irnn_lr" in n})
    )
    names = [m.upper() if "_lr" not in m else f"IRNN, Adam {m.split('_lr')[1]}" for m in models]
    head = "| T | budget (steps) | " + " | ".join(names) + " |\n"
    head += "|---|---|" + "---|" * len(models) + "\n"
    rows = []
    for t in lengths:
        cells = []
        for model in models:
            r = runs.get(f"long_{task}_{t}_{model}")
            cells.append("not run" if r is None else long_range_cell(r))
        rows.append(f"| {t} | {budgets[t]:,} | " + " | ".join(cells) + " |")
    return head + "\n".join(rows) + "\n"


def long_range_cells_table(results: dict, length: int = 400) -> str:
    """`run_grid long_range_cells`: every other cell on the adding problem at T = `length`."""
    prefix = f"long_adding_{length}_"
    runs = {n[len(prefix) :]: r for n, r in sorted(results.items()) if n.startswith(prefix)}
    runs = {c: r for c, r in runs.items() if c not in LONG_RANGE_MODELS and "_lr" not in c}
    if not runs:
        return ""
    return (
        "| cell | " + " | ".join(c.upper() for c in runs) + " |\n"
        "|---|" + "---|" * len(runs) + "\n"
        f"| T = {length} | " + " | ".join(long_range_cell(r) for r in runs.values()) + " |\n"
    )


def long_range_wall_hours(results: dict) -> float:
    """Summed wall time of the long-range study's runs, in hours."""
    return (
        sum(r.get("wall_time_s", 0.0) for n, r in results.items() if n.startswith("long_")) / 3600
    )


def gradient_flow_table(results: dict) -> str:
    """One row per (T, model, trained or not), ordered by T; a model measured in two files
    (the same config and seed) is listed once."""
    rows = {}
    for name, r in sorted(results.items()):
        if not name.startswith("gradient_flow_"):
            continue
        t = r["length"]
        for cell, entry in r["cells"].items():
            for which in ("untrained", "trained"):
                if which in entry and (t, cell, which) not in rows:
                    norms = entry[which]["norms"]
                    mid = norms[len(norms) // 2]
                    rows[t, cell, which] = (
                        f"| {t} | {cell.upper()} | {which} | {norms[0]:.2e} | "
                        f"{mid:.2e} | {norms[-1]:.2e} | {norms[-1] / norms[0]:.1e} |"
                    )
    rows = [row for key, row in sorted(rows.items(), key=lambda kv: kv[0][0])]
    if not rows:
        return "Not measured yet.\n"
    return (
        "| T | cell | model | k=0 | k=T/2 | k=T-1 | ratio k=T-1 / k=0 |\n"
        "|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )


def gates_table(results: dict) -> str:
    rows = []
    for name, r in sorted(results.items()):
        if not name.startswith("gates_"):
            continue
        for cell, entry in r["cells"].items():
            for which in ("untrained", "trained"):
                if which in entry:
                    text = ", ".join(
                        f"{g} {s['mean']:.2f} ({100 * s['saturated']:.0f}%)"
                        for g, s in sorted(entry[which].items())
                    )
                    rows.append(f"| {r['length']} | {cell.upper()} | {which} | {text} |")
    if not rows:
        return "Not measured yet.\n"
    return (
        "| T | cell | model | gate: mean activation (saturated share) |\n"
        "|---|---|---|---|\n" + "\n".join(rows) + "\n"
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
                f"{r['wall_time_s']:.0f} |"
            )
    if not rows:
        return ""
    return (
        "| series | input -> horizon | LSTM test MSE / MAE (standardised) | wall (s) |\n"
        "|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )


# -- figures ----------------------------------------------------------------------------------
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


# -- the document -----------------------------------------------------------------------------
def _image(name: str, rel_to: str) -> str:
    path = os.path.join(FIGURES, name)
    if not os.path.exists(path):
        return ""
    return f"![{name}]({os.path.relpath(path, rel_to)})\n"


def section(results: dict, rel_to: str = ROOT) -> str:
    """The README section (markdown), generated from the result JSONs."""
    parts = [
        "## Forecasting and long-range dependencies\n",
        "*Generated by `python -m experiments.report --readme=README.md`; every number below "
        "comes from a run JSON under `experiments/results/` (command, commit, hardware and wall "
        "time inside). Published rows are copied from the Informer paper as transcribed in "
        "later papers (secondary), not measured here.*\n",
        "### ETTh1, Informer protocol\n",
        "Train rows [0, 8640), valid [8640 - L, 11520), test [11520 - L, 14400); scaler fitted "
        "on train; MSE / MAE on standardised values over every test window; input L = 96 "
        "hours; a 1-layer, 64-unit encoder with a direct multi-horizon head, trained on x - x_L "
        "(last-value normalisation), Adam 1e-3, batch 64, at most 2000 steps (univariate) or 1000 "
        "steps (multivariate, to fit the shared 2-core CPU), early stopping on valid MSE "
        "(5 evaluations, one per 100 steps); the best checkpoint is evaluated on test. Run: "
        "`python -m experiments.run_grid ett_S ett_M ett_linear` "
        "(one cell: `python -m train.main --config=experiments/configs/ett.py:features=S,"
        "horizon=24,cell=lstm --workdir=DIR`).\n",
        ett_runs_summary(results),
        "**Univariate** (OT from OT):\n",
        ett_table(results, "S"),
        ett_notes(results, "S"),
        "**Multivariate** (all 7 columns from all 7):\n",
        ett_table(results, "M"),
        ett_notes(results, "M"),
        seq2seq_table(results),
        _image("ett_S_forecasts.png", rel_to),
        _image("ett_M_forecasts.png", rel_to),
        ltsf_report.section(results),
    ]
    segrnn_figure = _image("segrnn_M_96_forecasts.png", rel_to)
    if segrnn_figure:
        parts += [
            "SegRNN (GRU), ETTh1 multivariate, H = 96, seed 0: four test windows of OT, with the "
            "last value for scale (`python -m experiments.tools.forecast "
            "--workdir=workdirs/segrnn_gru_M_96_s0`, its `test.png`):\n",
            segrnn_figure,
        ]
    examples = example_table(results)
    if examples:
        parts += [
            "**Classic series** (`experiments/configs/airline.py`, `sunspots.py`; "
            "chronological 70/10/20 split):\n",
            examples,
        ]
    parts += [
        "### Forecasting your own CSV, start to finish\n",
        "Train on any CSV with a date column (chronological 70/10/20 split, scaler fitted on "
        "train), then write the forecasts in the file's own units:\n\n"
        "```bash\n"
        "python -m train.main --workdir=runs/load \\\n"
        "    --config=experiments/configs/forecast_csv.py:path=load.csv,date_column=time,"
        "target=load,features=S,input_len=48,horizon=24\n"
        "python -m experiments.tools.forecast --workdir=runs/load    # -> runs/load/forecasts/\n"
        "```\n\n"
        "`forecasts/test.csv` has one row per (test window, step): the window's last input "
        "date, the forecast date, the actual value, the forecast and the last-value baseline per "
        "column; `future.csv` forecasts the `horizon` rows after the file's end (dates continue "
        "the file's spacing); `test.png` plots a few test windows; `test_summary.json` gives "
        "MSE / MAE, standardised (as `train.evaluate`) and in the file's units. Any forecasting "
        "workdir works (`ett.py`, `ltsf.py`, `segrnn.py` runs alike); an existing output file is "
        "an error unless `--overwrite`.\n",
        "### Adding problem\n",
        "Two channels (U[0,1] values, two markers, one per half); target the marked sum; "
        "1-layer, 32 units, Adam 1e-2, batch 50, clip 1, at most 3000 steps, early stopping "
        "after 15 evaluations without progress. Baseline = always predicting 1, its MSE on "
        "each fixed set (1/6 in expectation); solved = MSE at most 5% of the same set's "
        "baseline (steps to solve: the first evaluation, every 100 steps, where validation is). "
        "Run: `python -m experiments.run_grid adding`. Wall times are from a 2-core CPU "
        "shared with other jobs whose load varied during the grid: compare them loosely.\n",
        long_range_table(results, "adding"),
        "### Copy memory\n",
        "10 symbols from 8, T blanks, a delimiter, recall; 1-layer, 64 units, same optimiser, at "
        "most 2000 steps; "
        "baseline = the best memoryless predictor (each step's target frequencies on the same "
        "fixed set; 10 log(8) / (T + 20) in expectation); solved = cross-entropy at most 5% of "
        "it. Run: "
        "`python -m experiments.run_grid copy`.\n",
        long_range_table(results, "copy"),
        "### Long-range study: longer budgets, the IRNN and chrono initialisation\n",
        "`python -m experiments.run_grid long_range` (results in `experiments/results/"
        "long_range/`, seed 0): the adding problem at T = 100 / 200 / 400 / 750 and copy memory "
        "at T = 100 / 200 / 500 with the budgets in the tables, the tanh RNN, the IRNN (Le et "
        "al. 2015: ReLU, W_hh = I), the LSTM and GRU, and the LSTM and GRU with chrono "
        "initialisation (Tallec & Ollivier 2018, chrono_t_max = T). Same models and optimiser "
        "as above (Adam 1e-2, clip 1; the IRNN at 1e-3, since at 1e-2 it diverges within a few "
        "steps, and at 1e-4 in a column of its own from `run_grid long_range_irnn`), no "
        "patience-based early stopping; a run ends at its budget or at the first validation "
        "pass (every 100 steps) that solves the task (`train.stop_when_solved`: loss <= 5% of "
        "the valid set's trivial baseline), and the best-validation checkpoint is tested. Each "
        "entry: test loss / the test set's trivial baseline (1 = no better than the constant "
        "or memoryless predictor), for copy the recall accuracy (chance 12.5%), and the step "
        f"solved at or the steps run. Summed wall time {long_range_wall_hours(results):.2f} h "
        "on the 2-core CPU, up to four runs sharing it.\n",
        "**Adding problem** (relative test MSE):\n",
        long_range_study_table(results, "adding"),
        "Every other registered cell at T = 400, the same budget and stopping rule (`python -m "
        "experiments.run_grid long_range_cells`; IndRNN, a ReLU recurrence, at Adam 1e-3 like "
        "the IRNN):\n",
        long_range_cells_table(results),
        "**Copy memory** (relative test cross-entropy, recall accuracy):\n",
        long_range_study_table(results, "copy"),
        "### Inside the cells\n",
        "Gradient flow: mean ||dL/dh_t|| over test sequences of the adding problem, by distance "
        "k to the step the loss reads (`python -m experiments.gradient_flow --length=T`); "
        "0 means the float32 gradient underflowed. At T = 400 `--models=all` adds every "
        "registered cell and the chrono-initialised LSTM / GRU (`LSTM_CHRONO`, `GRU_CHRONO`: "
        "chrono_t_max = T), untrained and trained: the trained models are the long-range "
        "study's adding T = 400 runs (`python -m experiments.run_grid long_range "
        "long_range_cells`, the second for every other cell; `--run_prefix=long_adding`).\n",
        gradient_flow_table(results),
        *[
            _image(os.path.basename(p), rel_to)
            for p in sorted(glob.glob(os.path.join(FIGURES, "gradient_flow_*.png")))
        ],
        "Gate statistics from `cells.scan(..., return_trace=True)` on adding-problem test "
        "sequences (`python -m experiments.gates --length=T`); saturated = sigmoid gate "
        "< 0.05 or > 0.95, tanh value |v| > 0.95, ReLU unit (IRNN, IndRNN) at 0.\n",
        gates_table(results),
        *[
            _image(os.path.basename(p), rel_to)
            for p in sorted(glob.glob(os.path.join(FIGURES, "gates_T*.png")))
        ],
    ]
    return "\n".join(p for p in parts if p)


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
    if config_name in ("adding", "copy"):
        runs = {n: r for n, r in results.items() if n.startswith(config_name + "_")}
        if not runs:
            return None
        metric = "mse" if config_name == "adding" else "cross_entropy"
        lines = [f"Test {metric} (steps to solve; wall s); baseline per T in the JSONs:"]
        for name, r in sorted(
            runs.items(), key=lambda kv: (kv[1]["config"]["data"]["length"], kv[0])
        ):
            solved = r.get("steps_to_solve")
            lines.append(
                f"  {name}: {r['test'][metric]:.4f} "
                f"({solved if solved is not None else 'unsolved'}; "
                f"{r['wall_time_s']:.0f} s)"
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


def update_docstrings(results: dict) -> list[str]:
    changed = []
    for name in ("ett", "adding", "copy", "airline", "sunspots"):
        body = docstring_results(results, name)
        path = os.path.join(ROOT, "experiments", "configs", f"{name}.py")
        if body is None or not os.path.exists(path):
            continue
        if records.update_docstring_results(path, body):
            changed.append(path)
    return changed


def define_flags() -> None:
    """The command-line flags (defined only when run as a script, so importing is side-free)."""
    flags.DEFINE_string("out", None, "Directory for report.md (required).")
    flags.DEFINE_string("results", records.RESULTS_DIR, "Directory of the run JSONs.")
    flags.DEFINE_string("workdirs", os.path.join(ROOT, "workdirs"), "Trained workdirs (plots).")
    flags.DEFINE_string("readme", "", "README.md whose forecast section to fill.")
    flags.DEFINE_bool("docstrings", False, "Fill the configs' [results] blocks.")
    flags.DEFINE_bool("plots", True, "Restore the trained ETTh1 models to plot forecasts.")


def main(argv) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)
    if not FLAGS.out:
        print("error: --out is required: the directory for report.md.", file=sys.stderr)
        sys.exit(2)
    results = records.load_all(FLAGS.results)
    results |= records.load_all(os.path.join(FLAGS.results, "long_range"))
    os.makedirs(FLAGS.out, exist_ok=True)
    if FLAGS.plots:
        os.makedirs(FIGURES, exist_ok=True)
        for features in ("S", "M"):
            path = os.path.join(FIGURES, f"ett_{features}_forecasts.png")
            if plot_forecasts(features, FLAGS.workdirs, path, finished=set(results)):
                print(f"wrote {path}")
    out = os.path.join(FLAGS.out, "report.md")
    with open(out, "w") as f:
        f.write(section(results, rel_to=os.path.abspath(FLAGS.out)))
    print(f"wrote {out}")
    if FLAGS.readme:
        rel = os.path.dirname(os.path.abspath(FLAGS.readme))
        records.update_readme(FLAGS.readme, SECTION, section(results, rel_to=rel))
        print(f"updated {FLAGS.readme}")
    if FLAGS.docstrings:
        for path in update_docstrings(results):
            print(f"updated {path}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
