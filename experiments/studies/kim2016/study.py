"""Does our LSTM-Word-Small reach Kim et al. 2016's PTB perplexity, and which of AWD-LSTM's
regularisers help it at that size and budget? (README.md)

Runs of experiments/configs/ptb_kim_small.py (`:variant=NAME,seed=N`), named
ptb_kim_small_<variant>_s<seed>; each record is the LM record of the PTB study's
`lm_record.collect`.
"""

from __future__ import annotations

import textwrap

from experiments.configs import ptb_kim_small
from experiments.lab import Run, records, tables
from experiments.studies.ptb_zaremba import lm_record

PREFIX = "ptb_kim_small_"
# Kim, Jernite, Sontag & Rush 2016, "Character-Aware Neural Language Models", Table 3:
# LSTM-Word-Small's test perplexity on PTB.
PAPER_TEST = 97.6
TARGET = 1.02  # a reproduction is within 2% of the paper's test perplexity
SEEDS = (0, 1)
ABLATION = tuple(v for v in ptb_kim_small.VARIANTS if v != "baseline")
CURVE_EPOCHS = (1, 5, 10, 15, 20, 25)
README_PATH = "experiments/studies/kim2016/README.md"


def collect(name: str, workdir: str) -> dict:
    """The LM record of a training run (the runner writes it)."""
    return lm_record.collect(workdir, name)


def baseline(results_dir: str) -> list[Run]:
    """LSTM-Word-Small, seeds 0 and 1."""
    return [
        Run(f"{PREFIX}baseline_s{seed}", config=f"ptb_kim_small.py:seed={seed}", collect=collect)
        for seed in SEEDS
    ]


def ablation(results_dir: str) -> list[Run]:
    """Each ablation row, seed 0."""
    return [
        Run(f"{PREFIX}{v}_s0", config=f"ptb_kim_small.py:variant={v},seed=0", collect=collect)
        for v in ABLATION
    ]


GROUPS = {"baseline": baseline, "ablation": ablation}


def variant_of(record: dict) -> str:
    return record["name"][len(PREFIX) :].rsplit("_s", 1)[0]


def by_variant(results_dir: str) -> dict[str, list[dict]]:
    """variant -> its runs (by seed), in the config's order of variants."""
    out: dict[str, list[dict]] = {name: [] for name in ptb_kim_small.VARIANTS}
    for r in records.load_all(results_dir, (PREFIX,)).values():
        out.setdefault(variant_of(r), []).append(r)
    for runs in out.values():
        runs.sort(key=lambda r: r["config"]["seed"])
    return out


def _test(runs: list[dict]) -> list[float]:
    return [r["test"]["perplexity"] for r in runs]


def ablation_table(variants: dict[str, list[dict]]) -> str:
    """One row per variant: perplexities (mean ± std over seeds), test against the baseline's
    mean, seconds per epoch."""
    base = _test(variants.get("baseline", []))
    base_mean = tables.mean_std(base)[0] if base else None
    rows = []
    for variant, runs in variants.items():
        if not runs:
            rows.append([variant, "–", "not run", "not run", "–", "–", "–", "–"])
            continue
        mean_test = tables.mean_std(_test(runs))[0]
        versus = "–" if base_mean is None else f"{100.0 * (mean_test / base_mean - 1.0):+.1f}%"
        rows.append([
            variant, ", ".join(str(r["config"]["seed"]) for r in runs),
            tables.fmt_mean_std([r["valid"]["perplexity"] for r in runs], digits=2),
            tables.fmt_mean_std(_test(runs), digits=2), versus,
            tables.fmt_mean_std([(r.get("last") or r)["test"]["perplexity"] for r in runs], 2),
            tables.fmt_mean_std([r["train_time_s"] / r["epochs"] for r in runs], digits=2),
            ", ".join(sorted({r["status"] for r in runs})),
        ])  # fmt: skip
    header = ["variant", "seeds", "valid ppl (best ckpt)", "test ppl (best ckpt)",
              "test vs baseline", "test ppl (last ckpt)", "s / epoch", "status"]  # fmt: skip
    return tables.markdown(header, rows, align="llrrrrrl")


def versus_paper(variants: dict[str, list[dict]]) -> str:
    """Each baseline seed's test perplexity against the paper's."""
    out = []
    for r in variants.get("baseline", []):
        ppl = r["test"]["perplexity"]
        met = "meets" if ppl <= PAPER_TEST * TARGET else "misses"
        out.append(
            f"- {r['name']}: test perplexity {ppl:.2f} vs the paper's {PAPER_TEST} "
            f"({100.0 * (ppl / PAPER_TEST - 1.0):+.1f}%; {met} the target "
            f"<= {PAPER_TEST * TARGET:.1f})."
        )
    return "\n".join(out)


def curves_table(variants: dict[str, list[dict]]) -> str:
    """Validation perplexity after some epochs, per run."""
    rows = []
    for runs in variants.values():
        for r in runs:
            curve = [e["perplexity"] for e in r.get("valid_curve", [])]
            rows.append([r["name"], *(f"{curve[e - 1]:.1f}" if e <= len(curve) else "–"
                                      for e in CURVE_EPOCHS)])  # fmt: skip
    header = ["run", *(f"epoch {e}" for e in CURVE_EPOCHS)]
    return tables.markdown(header, rows, align="l" + "r" * len(CURVE_EPOCHS))


def _runs(variants: dict[str, list[dict]]) -> list[dict]:
    return sorted((r for runs in variants.values() for r in runs), key=lambda r: r["name"])


def readme_tables(results_dir: str) -> dict[str, str]:
    variants = by_variant(results_dir)
    runs = _runs(variants)
    return {
        "ablation": ablation_table(variants),
        "versus_paper": versus_paper(variants),
        "curves": curves_table(variants),
        "samples": lm_record.samples([r for r in runs if r["name"] == f"{PREFIX}baseline_s0"]),
        "commands": lm_record.commands(runs),
        "provenance": lm_record.provenance(runs),
    }


def headline(results_dir: str) -> dict:
    variants = by_variant(results_dir)
    seeds = len(variants["baseline"])
    tied = variants["tied"][0]["test"]["perplexity"]
    return {
        "ours": "PTB test perplexity, LSTM-Word-Small: "
        f"{tables.fmt_mean_std(_test(variants['baseline']), digits=2)} ({seeds} seeds); "
        f"with tied embeddings {tied:.2f} (1 seed)",
        "published": f"{PAPER_TEST} (Kim et al. 2016)",
    }


def config_results(results_dir: str) -> dict[str, str]:
    """The [results] block of ptb_kim_small.py's docstring (ASCII, lines under 100)."""
    variants = by_variant(results_dir)
    runs = _runs(variants)
    base = variants["baseline"]
    base_mean = tables.mean_std(_test(base))[0]
    rows = [
        f"{v} {runs_[0]['test']['perplexity']:.2f} "
        f"({100.0 * (runs_[0]['test']['perplexity'] / base_mean - 1.0):+.1f}%)"
        for v, runs_ in variants.items()
        if v != "baseline" and runs_
    ]
    commits = sorted({r["git_commit"][:7] for r in runs})
    hardware = runs[0]["hardware"]
    text = " ".join([
        f"25 epochs each, {hardware['cpu']} {hardware['cpu_count']} cores shared with other "
        f"runs, commits {', '.join(commits)}. Baseline (seeds "
        f"{', '.join(str(r['config']['seed']) for r in base)}): test perplexity "
        f"{tables.fmt_mean_std(_test(base), digits=2)}, valid "
        f"{tables.fmt_mean_std([r['valid']['perplexity'] for r in base], digits=2)}; paper "
        f"{PAPER_TEST}.",
        "Ablation, seed 0, test (against the baseline mean): " + "; ".join(rows) + ".",
        f"Why each row lands where it does: {README_PATH}.",
    ])  # fmt: skip
    text = text.replace(tables.PLUS_MINUS, "+-")
    return {"ptb_kim_small.py": textwrap.fill(text, width=96, break_on_hyphens=False)}
