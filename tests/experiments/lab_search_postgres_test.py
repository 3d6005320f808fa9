"""A search shared through one PostgreSQL database (Optuna's RDB storage): two worker processes
on one study, as two machines would run it. Needs a server: `.ci/run` starts one with
`.ci/postgres.sh` and sets RNN_TEST_POSTGRES_URL; without it the test is skipped."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import uuid

import optuna
import pytest
from lab_search_test import TINY

from experiments.lab import records, search

URL = os.environ.get("RNN_TEST_POSTGRES_URL")

pytestmark = pytest.mark.skipif(
    not URL,
    reason="no PostgreSQL server: start one with "
    "`export RNN_TEST_POSTGRES_URL=$(bash .ci/postgres.sh)` (installs Debian's postgresql)",
)


def test_two_workers_share_one_study_without_running_a_trial_twice(tmp_path):
    name = f"test-{uuid.uuid4().hex[:8]}"
    trials = 6
    command = [
        sys.executable, "-m", "experiments", "search", "synthetic.py", "--space=lr",
        f"--trials={trials}", *[f"--set={t}" for t in TINY], f"--storage={URL}",
        f"--name={name}", f"--out={tmp_path}", "--jobs=2", "--seeds=0,1",
        f"--record={tmp_path / 'record.json'}",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=records.ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    logs = [(tmp_path / f"worker{i}.log").read_text() for i in range(2)]
    assert all("compiled and ran the first step" in log for log in logs), "a worker ran nothing"

    storage = optuna.storages.RDBStorage(search.storage_url(URL, str(tmp_path)))
    study = optuna.load_study(study_name=name, storage=storage)
    done = [t for t in study.get_trials() if t.state.is_finished()]
    # Each worker checks the count before it starts a trial: at most one extra when both
    # start the last one at once.
    assert trials <= len(done) <= trials + 1
    assert len({t.number for t in done}) == len(done)
    workdirs = [t.user_attrs["workdir"] for t in done]
    assert len(set(workdirs)) == len(workdirs)
    for t in done:  # every trial trained what it drew, in its own workdir
        with open(os.path.join(t.user_attrs["workdir"], "config.json")) as f:
            config = json.load(f)
        assert config["optim"]["learning_rate"] == t.params["optim.learning_rate"]

    record = records.read(str(tmp_path / "record.json"))
    complete = [t for t in done if t.state == optuna.trial.TrialState.COMPLETE]
    assert record["best_trial"]["number"] == min(complete, key=lambda t: t.value).number
    assert record["best_trial"]["value"] == study.best_value
    assert "rnn-search-test" not in json.dumps(record)  # the password stays out of records

    reruns = optuna.load_study(
        study_name=f"{name}:best{study.best_trial.number}:seeds", storage=storage
    )
    seeds = collections.Counter(
        t.params["seed"] for t in reruns.get_trials()
        if t.state == optuna.trial.TrialState.COMPLETE
    )  # fmt: skip
    assert seeds == {0: 1, 1: 1}  # each seed rerun once, by whichever worker took it
