"""experiments/run_grid.py: group contents and the record of a diverged run."""

from experiments import run_grid


def test_groups_name_every_run_once():
    for group, count in (("ptb_lr", 9), ("ltsf_linear", 68), ("ltsf_exchange", 40)):
        runs = run_grid.grid(group)
        assert len(runs) == count and len({name for name, _ in runs}) == count
    assert ("ltsf_repeat_M_96", "ltsf.py:dataset=etth1,model=repeat,features=M,horizon=96,"
            "seed=0,epochs=1") in run_grid.grid("ltsf_linear")  # fmt: skip
    assert run_grid.ptb_full_name("gru", 1.0) == "ptb_small_gru"
    assert run_grid.ptb_full_name("rnn", 0.25) == "ptb_small_rnn_lr0.25"


def test_a_diverged_run_is_a_result_and_other_failures_are_not(tmp_path):
    log = tmp_path / "stdout.log"
    log.write_text("step 1 | train | loss 9.1\nerror: non-finite loss at step 7 (objective=nan)\n")
    record = run_grid.diverged("ptb_lr_rnn_1", str(tmp_path), ["python", "-m", "x"], 12.0)
    assert record["status"] == "diverged"
    assert record["error"] == "error: non-finite loss at step 7 (objective=nan)"
    assert record["command"] == "python -m x" and "git_commit" in record
    log.write_text("Traceback ... MemoryError\n")
    assert run_grid.diverged("x", str(tmp_path), ["python"], 1.0) is None
