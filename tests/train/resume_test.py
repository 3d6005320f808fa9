"""Interrupted runs end exactly where uninterrupted ones do (subprocesses, real signals)."""

from __future__ import annotations

import os
import signal

import pytest
import train_testing as tt
from train_testing import compile_cache  # noqa: F401 - autouse: cached compiles

from train import checkpoint, trainer

# Long enough (in steps) that a signal lands mid-run; the tiny model does ~1000 steps/s.
LONG = {
    "train.num_steps": 3000,
    "train.log_every": 10,
    "train.checkpoint_every": 70,
    "train.eval_every": 500,
    "train.keep_checkpoints": 2,
}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("reference"))
    trainer.train_and_evaluate(tt.tiny_config(**LONG), workdir)
    return workdir


def _assert_same_run(workdir: str, reference: str) -> None:
    tt.assert_trees_equal(tt.params_of(workdir), tt.params_of(reference))
    got, want = tt.results(workdir), tt.results(reference)
    assert got["valid"] == want["valid"] and got["test"] == want["test"]
    assert got["best_step"] == want["best_step"]
    with (
        open(os.path.join(workdir, "metrics.jsonl")) as a,
        open(os.path.join(reference, "metrics.jsonl")) as b,
    ):
        assert a.read() == b.read()


def test_sigkill_mid_run_then_rerun_is_bitwise_identical(reference, tmp_path):
    workdir = str(tmp_path / "w")
    proc = tt.start_cli(tt.cli_args(workdir, **LONG))
    tt.wait_for_step(proc, workdir, 1200)
    proc.kill()
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not os.path.exists(os.path.join(workdir, "results.json"))
    # The same command again: resumes from the latest checkpoint (the lock died with the run).
    rerun = tt.run_cli(tt.cli_args(workdir, **LONG))
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    _assert_same_run(workdir, reference)


def test_sigterm_saves_current_step_and_resumes_exactly(reference, tmp_path):
    workdir = str(tmp_path / "w")
    proc = tt.start_cli(tt.cli_args(workdir, **LONG))
    tt.wait_for_step(proc, workdir, 1200)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    assert "received SIGTERM: saved step" in stderr
    saved = int(stderr.split("saved step ")[1].split()[0])
    assert checkpoint.Checkpoints(workdir).steps()[-1] == saved
    assert 1200 <= saved < 3000
    trainer.train_and_evaluate(tt.tiny_config(**LONG), workdir)  # resume in-process
    _assert_same_run(workdir, reference)
