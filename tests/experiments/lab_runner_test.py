"""experiments/lab/runner.py: records written once, finished runs skipped, failures retried,
a diverged training run recorded, several runs at a time, a group asked again as it grows."""

import json
import os
import sys

import pytest

from experiments.lab import Run, records, runner

WRITE = (
    "import json,sys; json.dump({'test': {'x': 1}, 'argv': sys.argv[1:]}, open(sys.argv[1], 'w'))"
)


def test_a_run_is_a_config_or_a_command():
    with pytest.raises(ValueError, match="exactly one of config= and command="):
        Run("x")
    assert Run("a", config="adding.py:length=5").config_path() == os.path.join(
        "experiments", "configs", "adding.py:length=5"
    )
    own = "experiments/studies/s/configs/c.py:x=1"
    assert Run("b", config=own).config_path() == own


def test_commands_run_once_in_parallel_and_a_failure_writes_nothing(tmp_path):
    out, workdirs = str(tmp_path / "out"), str(tmp_path / "work")
    os.makedirs(out)
    runs = [Run(f"ok_{k}", command=("-c", WRITE, "{out}", "{workdir}")) for k in range(3)]
    runs.append(Run("bad", command=("-c", "raise SystemExit(3)")))
    outcomes = runner.run_all(runs, out, workdirs, jobs=2)
    assert outcomes == {"ok_0": "done", "ok_1": "done", "ok_2": "done", "bad": "failed"}
    record = records.read(os.path.join(out, "ok_1.json"))
    # written beside the record, then moved into place; a workdir outside the repo stays absolute
    assert record["argv"] == [os.path.join(out, "ok_1.json.new"), os.path.join(workdirs, "ok_1")]
    assert not os.path.exists(os.path.join(out, "bad.json"))
    assert runner.run_all(runs[:1], out, workdirs) == {"ok_0": "skipped"}
    with pytest.raises(ValueError, match="repeat"):
        runner.run_all(runs[:1] * 2, out, workdirs)


def test_a_diverged_training_run_is_a_result_and_other_failures_are_not(tmp_path):
    log = tmp_path / "stdout.log"
    log.write_text("step 1 | train | loss 9.1\nerror: non-finite loss at step 7 (objective=nan)\n")
    record = runner.diverged("ptb_lr_rnn_1", str(tmp_path), "python -m x", 12.0)
    assert record["status"] == "diverged" and record["command"] == "python -m x"
    assert record["error"] == "error: non-finite loss at step 7 (objective=nan)"
    assert "git_commit" in record and "git_dirty" in record
    inside = os.path.join(records.ROOT, "workdirs", "r", "checkpoints")
    log.write_text(f"non-finite loss at step 2; no checkpoint in {inside}\n")
    record = runner.diverged("x", str(tmp_path), "python", 1.0)
    assert record["error"] == "non-finite loss at step 2; no checkpoint in workdirs/r/checkpoints"
    log.write_text("Traceback ... MemoryError\n")
    assert runner.diverged("x", str(tmp_path), "python", 1.0) is None


def test_a_group_that_grows_as_its_records_land_is_asked_again_until_it_adds_none(tmp_path):
    out, workdirs = str(tmp_path / "out"), str(tmp_path / "work")
    os.makedirs(out)
    asked = []

    def runs_of():  # each record calls for the next run, three in all, and one always fails
        done = len([f for f in os.listdir(out) if f.endswith(".json")])
        asked.append(done)
        grown = [Run(f"step_{k}", command=("-c", WRITE, "{out}", "{workdir}"))
                 for k in range(min(done + 1, 3))]  # fmt: skip
        return [*grown, Run("bad", command=("-c", "raise SystemExit(3)"))]

    outcomes = runner.run_group(runs_of, out, workdirs, jobs=2)
    assert outcomes == {"step_0": "done", "bad": "failed", "step_1": "done", "step_2": "done"}
    assert asked == [0, 1, 2, 3]  # a failure is not retried within the call
    assert runner.run_group(runs_of, out, workdirs) == {
        "step_0": "skipped", "step_1": "skipped", "step_2": "skipped", "bad": "failed"}  # fmt: skip


def test_select_keeps_whole_name_parts():
    runs = [Run(n, command=("-c", "")) for n in ("ett_S_24_lstm", "ett_S_240_gru", "ett_M_24_gru")]
    assert [r.name for r in runner.select(runs, "24")] == ["ett_S_24_lstm", "ett_M_24_gru"]
    assert [r.name for r in runner.select(runs, "ett_S_240_gru")] == ["ett_S_240_gru"]


@pytest.mark.slow
def test_a_training_run_is_collected_from_its_workdir(tmp_path):
    out, workdirs = str(tmp_path / "out"), str(tmp_path / "work")
    run = Run("tiny", config="adding.py:length=10,cell=gru,num_steps=4", overrides=(
        "--config.train.eval_every=2", "--config.model.hidden_size=4"))  # fmt: skip
    assert runner.run_all([run], out, workdirs) == {"tiny": "done"}
    record = json.load(open(os.path.join(out, "tiny.json")))
    assert record["name"] == "tiny" and record["valid_curve"] and sys.executable


def test_force_reruns_a_command_and_replaces_its_record_only_once_the_new_one_exists(tmp_path):
    out, workdirs = str(tmp_path / "out"), str(tmp_path / "work")
    refuse = (  # a command that, like the study scripts, refuses to overwrite its output
        "import json, os, sys; assert not os.path.exists(sys.argv[1]); "
        "json.dump({'v': int(sys.argv[2])}, open(sys.argv[1], 'w'))"
    )
    assert runner.run_all([Run("c", command=("-c", refuse, "{out}", "1"))], out, workdirs)
    assert records.read(os.path.join(out, "c.json")) == {"v": 1}
    failing = Run("c", command=("-c", "raise SystemExit(1)"))
    assert runner.run_all([failing], out, workdirs, force=True) == {"c": "failed"}
    assert records.read(os.path.join(out, "c.json")) == {"v": 1}  # nothing lost
    again = Run("c", command=("-c", refuse, "{out}", "2"))
    assert runner.run_all([again], out, workdirs, force=True) == {"c": "done"}
    assert records.read(os.path.join(out, "c.json")) == {"v": 2}
    assert not os.path.exists(os.path.join(out, "c.json.new"))


def test_a_record_from_a_dirty_tree_is_refused_at_once_and_the_group_goes_on(
    tmp_path, monkeypatch, capsys
):
    """A command whose record says git_dirty, bound for committed results, is not recorded: the
    runner says so when that run ends (not after the group's other runs) and reports it failed."""
    out, workdirs = str(tmp_path / "out"), str(tmp_path / "work")
    monkeypatch.setattr(records, "is_committed", lambda path: True)
    write = "import json, sys; json.dump({'git_dirty': sys.argv[2] == '1'}, open(sys.argv[1], 'w'))"
    runs = [Run(n, command=("-c", write, "{out}", flag)) for n, flag in (("d", "1"), ("c", "0"))]
    assert runner.run_all(runs, out, workdirs) == {"d": "failed", "c": "done"}
    assert sorted(os.listdir(out)) == ["c.json"]  # no record, no leftover for d
    assert "[run] d: not recorded: " in capsys.readouterr().out
