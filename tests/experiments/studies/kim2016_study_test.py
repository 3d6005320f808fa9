"""The Kim et al. 2016 study: its tables come from result files only, and its groups name the
committed runs with the arguments they were run with."""

import json
import os

from experiments.lab import records
from experiments.studies.kim2016 import study

RESULTS = os.path.join(records.STUDIES_DIR, "kim2016", "results")


def _record(variant, seed, test_ppl):
    name = f"ptb_kim_small_{variant}_s{seed}"
    return {
        "task": "lm", "name": name, "status": "complete", "epochs": 25.0,
        "train_time_s": 2500.0, "config": {"seed": seed},
        "valid": {"perplexity": test_ppl + 5.0}, "test": {"perplexity": test_ppl},
        "hardware": {"cpu": "cpu", "cpu_count": 2}, "git_commit": "abcdef1234567",
    }  # fmt: skip


def test_ablation_table_reports_seeds_and_the_target(tmp_path):
    for variant, seed, ppl in (("baseline", 0, 98.0), ("baseline", 1, 100.0), ("tied", 0, 94.05)):
        (tmp_path / f"ptb_kim_small_{variant}_s{seed}.json").write_text(
            json.dumps(_record(variant, seed, ppl))
        )
    variants = study.by_variant(str(tmp_path))
    text = study.ablation_table(variants)
    assert (
        "| baseline | 0, 1 | 104.00 ± 1.41 | 99.00 ± 1.41 | +0.0% | 99.00 ± 1.41 | "
        "100.00 ± 0.00 |" in text
    )
    assert "| tied | 0 | 99.05 | 94.05 | -5.0% | 94.05 | 100.00 | complete |" in text
    assert "| nt_asgd | – | not run | not run |" in text  # an ablation row not run yet
    lines = study.versus_paper(variants)
    assert "s0: test perplexity 98.00 vs the paper's 97.6 (+0.4%; meets the target <= 99.6" in lines
    assert "s1: test perplexity 100.00 vs the paper's 97.6 (+2.5%; misses the target" in lines


def test_the_groups_name_the_committed_runs_with_their_recorded_arguments():
    runs = study.GROUPS["baseline"](RESULTS) + study.GROUPS["ablation"](RESULTS)
    assert len(runs) == 8
    for run in runs:
        command = records.read(os.path.join(RESULTS, f"{run.name}.json"))["command"]
        assert command == (
            f"python -m train.main --config={run.config_path()} --workdir=workdirs/{run.name}"
        )


def test_headline_and_config_block():
    assert "94.75 ± 0.21 (2 seeds)" in study.headline(RESULTS)["ours"]
    text = study.config_results(RESULTS)["ptb_kim_small.py"]
    assert text.isascii() and all(len(line) < 100 for line in text.splitlines())
    assert "tied 92.78 (-2.1%)" in text
