"""Recurrent vs attention at equal CPU budgets (README.md): character language models on
Tiny Shakespeare, a GPT as nanoGPT writes it against recurrent families, scored on the same
fixed validation windows.

Groups:
  nanogpt   the GPT at nanoGPT's published CPU configuration (experiments/configs/
            shakespeare_gpt.py defaults), 3 seeds: the baseline checked against their README's
            validation loss of about 1.88 nats/char before it is set against anything.
"""

from __future__ import annotations

from experiments.lab import Run, records, tables

SEEDS = (0, 1, 2)
NANOGPT_LOSS = 1.88  # nanoGPT's README, its CPU command (nats/char, validation)
NANOGPT_TOLERANCE = 0.02  # the bar: within 2% of it


def nanogpt_runs(results_dir: str) -> list[Run]:
    del results_dir
    return [Run(f"gpt_nanogpt_s{s}", config=f"shakespeare_gpt.py:seed={s}") for s in SEEDS]


GROUPS = {"nanogpt": nanogpt_runs}
DEFAULT_GROUPS = ("nanogpt",)


def _nanogpt(results_dir: str) -> list[dict]:
    found = records.load_all(results_dir, prefixes=("gpt_nanogpt_s",))
    return [found[f"gpt_nanogpt_s{s}"] for s in SEEDS if f"gpt_nanogpt_s{s}" in found]


def nanogpt_table(results_dir: str) -> str:
    """One row per seed and the mean: validation nats/char on every window of 64, steps, time."""
    runs = _nanogpt(results_dir)
    rows = []
    for r in runs:
        rows.append([f"seed {r['config']['seed']}", f"{r['valid']['loss']:.4f}",
                     f"{r['valid']['bits_per_char']:.4f}", f"{r['steps']:,}",
                     f"{r.get('best_step') or r['steps']:,}", f"{r['params']:,}",
                     f"{r['train_time_s']:.0f} s", r["git_commit"][:7]])  # fmt: skip
    if runs:
        losses = [r["valid"]["loss"] for r in runs]
        mean = tables.mean_std(losses)[0]
        gap = (mean - NANOGPT_LOSS) / NANOGPT_LOSS
        rows.append([f"**mean (n={len(runs)})**", f"**{tables.fmt_mean_std(losses, 4)}**",
                     tables.fmt_mean_std([r["valid"]["bits_per_char"] for r in runs], 4),
                     "", "", "", "", f"{gap:+.1%} from {NANOGPT_LOSS}"])  # fmt: skip
    header = ["run", "valid nats/char", "bits/char", "steps", "best step", "params",
              "train time", "commit"]  # fmt: skip
    return tables.markdown(header, rows, align="lrrrrrrl")


def readme_tables(results_dir: str) -> dict[str, str]:
    return {"nanogpt": nanogpt_table(results_dir)}


def headline(results_dir: str) -> dict:
    runs = _nanogpt(results_dir)
    if not runs:
        return {}
    losses = tables.fmt_mean_std([r["valid"]["loss"] for r in runs], 3)
    return {
        "ours": f"GPT at nanoGPT's CPU configuration: valid {losses} nats/char (n={len(runs)})",
        "published": f"nanoGPT README: about {NANOGPT_LOSS}",
    }
