"""The lab: what every study shares, so that a study is one folder (experiments/studies/<name>/).

- `runner`: runs a study's runs (train.main or a command), resumable, skipping finished ones,
  several at a time (`Run`, `run_all`).
- `records`: atomic JSON records, provenance, refusal to overwrite committed results.
- `tables`: mean ± std, Markdown tables, the generated-table markers in a study's README.
- `timing`: the one interleaved timer and the one peak-memory reader every benchmark uses.
- `study`: finds the studies and loads one (`load`, `names`).

The command line is experiments/__main__.py: `python -m experiments run|report|list`.
"""

from experiments.lab.runner import Run

__all__ = ["Run"]
