"""The Tiny Shakespeare study: its tables come from result files only, and its groups name the
committed runs."""

import os

from experiments.lab import records
from experiments.studies.shakespeare_char import study

RESULTS = os.path.join(records.STUDIES_DIR, "shakespeare_char", "results")


def test_the_groups_name_the_committed_runs():
    names = {g: [r.name for r in study.GROUPS[g](RESULTS)] for g in study.GROUPS}
    assert names["full"] == [f"shakespeare_char_{cell}" for cell in ("lstm", "gru", "rnn")]
    assert len(names["small"]) == 3 and names["timing"] == ["timing_shakespeare_char"]
    for group in names.values():
        for name in group:
            assert os.path.exists(os.path.join(RESULTS, f"{name}.json")), name
    for run in study.GROUPS["small"](RESULTS):  # the arguments the records were made with
        command = records.read(os.path.join(RESULTS, f"{run.name}.json"))["command"]
        args = " ".join((f"--config={run.config_path()}", *run.overrides))
        assert command == f"python -m train.main {args} --workdir=workdirs/{run.name}"


def test_tables_come_from_the_records():
    tables = study.readme_tables(RESULTS)
    assert "| shakespeare_char_lstm | lstm | 874,881 | 3000 | 1.572 | 2.268 |" in tables["runs"]
    assert "| shakespeare_small_gru | 2.962 | 2.688 | 2.606 | 2.588 |" in tables["curves_small"]
    assert "| 3,000 steps | 0.3 |" in tables["timing"]  # 0.41 CPU s x 3,000 steps
    assert tables["samples"].count("Sample from") == 4


def test_headline_and_config_block():
    assert study.headline(RESULTS)["ours"].endswith("LSTM 2.268, GRU 2.142, RNN 2.368")
    text = study.config_results(RESULTS)["shakespeare_char.py"]
    assert text.isascii() and all(len(line) < 100 for line in text.splitlines())
