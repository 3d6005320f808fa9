"""Forecasting: ETTh1 under the Informer protocol (LSTM, GRU, NLinear against the published LSTMa
and Informer), ETTh1 and Exchange-Rate under the LTSF protocol (DLinear, NLinear, SegRNN and its
ablations), and two classic series (README.md)."""

from __future__ import annotations

import os

from experiments.lab import records, tables
from experiments.studies.forecasting import grid, ltsf, render

GROUPS = {
    "ett_S": lambda results_dir: grid.ett_runs("S"),
    "ett_M": lambda results_dir: grid.ett_runs("M"),
    "ett_linear": lambda results_dir: grid.ett_linear_runs(),
    "ett_M_equal": lambda results_dir: grid.ett_equal_runs(),
    "seq2seq": lambda results_dir: grid.seq2seq_runs(),
    "examples": lambda results_dir: grid.example_runs(),
    "ltsf": lambda results_dir: grid.ltsf(),
    "ltsf_linear": lambda results_dir: grid.ltsf_linear(),
    "ltsf_exchange": lambda results_dir: grid.ltsf_exchange(),
    "ltsf_dlinear_init": lambda results_dir: grid.ltsf_dlinear_init(),
    "ltsf_segrnn": lambda results_dir: grid.ltsf_segrnn(),
    "ltsf_lookback": lambda results_dir: grid.ltsf_lookback(),
    "ltsf_segrnn_init": lambda results_dir: grid.ltsf_segrnn_init(),
}
DEFAULT_GROUPS = ("ett_S", "ett_M", "ett_linear", "seq2seq", "examples", "ltsf")


def readme_tables(results_dir: str) -> dict[str, str]:
    results = records.load_all(results_dir)
    return {
        "ett_runs": render.ett_runs_summary(results),
        "ett_S": render.ett_table(results, "S"),
        "ett_S_checks": render.ett_checks_table(results, "S"),
        "ett_M": render.ett_table(results, "M"),
        "ett_M_checks": render.ett_checks_table(results, "M"),
        "ett_M_equal": render.ett_equal_table(results),
        "seq2seq": render.seq2seq_table(results),
        "ltsf": ltsf.section(results),
        "examples": render.example_table(results),
    }


def config_results(results_dir: str) -> dict[str, str]:
    results = records.load_all(results_dir)
    out = {}
    for name in ("ett", "airline", "sunspots"):
        text = render.docstring_results(results, name)
        if text is not None:
            out[f"{name}.py"] = text
    return out


def figures(results_dir: str, workdirs: str, figures_dir: str) -> list[str]:
    """ETTh1 forecasts against the actual series from the trained Informer-protocol runs."""
    finished = set(records.load_all(results_dir))
    os.makedirs(figures_dir, exist_ok=True)
    written = []
    for features in ("S", "M"):
        path = os.path.join(figures_dir, f"ett_{features}_forecasts.png")
        if render.plot_forecasts(features, workdirs, path, finished=finished):
            written.append(path)
    return written


def headline(results_dir: str) -> dict:
    results = records.load_all(results_dir, prefixes=("segrnn_gru_torchinit_M_96_",))
    mse = [r["test"]["mse"] for r in results.values()]
    published = ltsf.SEGRNN_ETTH1_M[0][0]
    return {
        "ours": "SegRNN (GRU), ETTh1 multivariate H = 96, test MSE "
        f"{tables.fmt_mean_std(mse, digits=4)} (3 seeds)",
        "published": f"{published} (Lin et al. 2023)",
    }
