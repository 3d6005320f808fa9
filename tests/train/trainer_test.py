"""End-to-end tests of `train_and_evaluate` on the tiny synthetic task (in-process, fast)."""

from __future__ import annotations

import glob
import json
import os

import jax
import numpy as np
import pytest
import train_testing as tt
from train_testing import compile_cache  # noqa: F401 - autouse: cached compiles

from train import checkpoint, errors, metrics, sharding, steps, trainer

jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One uninterrupted tiny run, shared by the read-only checks below."""
    workdir = str(tmp_path_factory.mktemp("finished"))
    result = trainer.train_and_evaluate(tt.tiny_config(), workdir)
    return workdir, result


def test_end_to_end_outputs(finished):
    workdir, result = finished
    for name in ("config.json", "metrics.jsonl", "results.json"):
        assert os.path.isfile(os.path.join(workdir, name)), name
    assert glob.glob(os.path.join(workdir, "tensorboard", "events.out.tfevents.*"))
    saved = tt.results(workdir)
    assert saved["steps"] == 24 and saved["task"] == "synthetic"
    for key in ("git_commit", "git_dirty", "hardware", "wall_time_s", "date", "command", "config"):
        assert key in saved
    assert saved["valid"] == result["valid"] and set(saved["test"]) == {"loss", "accuracy"}
    events = metrics.read_events(workdir)
    train_steps = [e["step"] for e in events if e["split"] == "train"]
    assert train_steps == [4, 8, 12, 16, 20, 24]
    assert [e["step"] for e in events if e["split"] == "valid" and not e.get("final")] == [
        8,
        16,
        24,
    ]
    finals = [e for e in events if e.get("final")]
    assert [e["split"] for e in finals] == ["valid", "test"]
    # The loss falls (lr 1e-2 Adam learns the easy part of the task within 24 steps).
    losses = [e["loss"] for e in events if e["split"] == "train"]
    assert losses[-1] < losses[0]


def test_retention_keeps_latest_and_best(finished):
    workdir, result = finished
    kept = checkpoint.Checkpoints(workdir).steps()
    best = result["best_step"]
    assert set(kept) == {16, 24} | {best}
    assert kept[-1] == 24


def test_best_checkpoint_reproduces_reported_metrics(finished):
    """load_trained('best') + evaluate gives exactly the numbers in results.json."""
    workdir, result = finished
    trained = checkpoint.load_trained(workdir, "best")
    assert trained.step == result["best_step"]
    task, params = trained.task, trained.params
    mesh = sharding.make_mesh()
    got = trainer.evaluate(task, steps.make_eval_step(task), params, "test", mesh, 8)
    assert got == result["test"]
    valid_events = {
        e["step"]: e["loss"]
        for e in metrics.read_events(workdir)
        if e["split"] == "valid" and not e.get("final")
    }
    assert result["valid"]["loss"] == valid_events[result["best_step"]]
    assert result["best_step"] == min(valid_events, key=valid_events.get)


def test_resume_after_finish_extends_training(finished, tmp_path):
    """Raising num_steps on a finished workdir continues from its last checkpoint."""
    workdir = str(tmp_path / "w")
    trainer.train_and_evaluate(tt.tiny_config(**{"train.num_steps": 16}), workdir)
    out = trainer.train_and_evaluate(tt.tiny_config(**{"train.num_steps": 32}), workdir)
    assert out["steps"] == 32
    steps_logged = [e["step"] for e in metrics.read_events(workdir) if e["split"] == "train"]
    assert steps_logged == sorted(set(steps_logged))  # no duplicates
    assert steps_logged[-1] == 32


def test_corrupt_latest_falls_back_and_matches(finished, tmp_path):
    """Latest checkpoint truncated: warn, move it aside, redo the steps, same final params."""
    ref_dir, ref = finished
    workdir = str(tmp_path / "w")
    trainer.train_and_evaluate(tt.tiny_config(), workdir)
    for path in glob.glob(os.path.join(workdir, "checkpoints", "24", "**"), recursive=True):
        if os.path.isfile(path):
            open(path, "w").close()
    os.remove(os.path.join(workdir, "results.json"))
    out = trainer.train_and_evaluate(tt.tiny_config(), workdir)
    assert os.path.isdir(os.path.join(workdir, "checkpoints_corrupt", "24"))
    tt.assert_trees_equal(tt.params_of(workdir), tt.params_of(ref_dir))
    assert out["test"] == ref["test"] and out["valid"] == ref["valid"]
    with (
        open(os.path.join(ref_dir, "metrics.jsonl")) as a,
        open(os.path.join(workdir, "metrics.jsonl")) as b,
    ):
        assert a.read() == b.read()


def test_all_checkpoints_unreadable_changes_nothing(tmp_path):
    workdir = str(tmp_path / "w")
    trainer.train_and_evaluate(tt.tiny_config(**{"train.num_steps": 8}), workdir)
    target = os.path.join(workdir, "checkpoints", "8", "meta", "metadata")
    open(target, "w").close()
    with pytest.raises(checkpoint.CheckpointError, match="no readable checkpoint"):
        trainer.train_and_evaluate(tt.tiny_config(**{"train.num_steps": 8}), workdir)
    assert os.path.isdir(os.path.join(workdir, "checkpoints", "8"))
    assert not os.path.exists(os.path.join(workdir, "checkpoints_corrupt"))


def test_nan_stops_and_keeps_last_good_checkpoint(tmp_path):
    workdir = str(tmp_path / "w")
    config = tt.tiny_config(**{"data.nan_after_step": 10})
    with pytest.raises(trainer.NonFiniteError, match="non-finite loss at step 11"):
        trainer.train_and_evaluate(config, workdir)
    ckpts = checkpoint.Checkpoints(workdir)
    assert ckpts.steps() == [8]
    params = tt.params_of(workdir)
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(params))
    assert not os.path.exists(os.path.join(workdir, "results.json"))


def test_config_change_refused(finished, tmp_path):
    workdir = str(tmp_path / "w")
    trainer.train_and_evaluate(tt.tiny_config(**{"train.num_steps": 8}), workdir)
    with pytest.raises(errors.ConfigError, match=r"model\.hidden_size: 8 -> 16"):
        trainer.train_and_evaluate(tt.tiny_config(**{"model.hidden_size": 16}), workdir)
    with pytest.raises(errors.ConfigError, match=r"train\.batch_size"):
        trainer.train_and_evaluate(tt.tiny_config(**{"train.batch_size": 4}), workdir)
    with open(os.path.join(workdir, "config.json")) as f:
        assert json.load(f)["model"]["hidden_size"] == 8


def test_live_lock_refused(tmp_path):
    workdir = str(tmp_path / "w")
    os.makedirs(workdir)
    lock = checkpoint.WorkdirLock(workdir)
    lock.acquire()
    try:
        with pytest.raises(errors.ConfigError, match="in use by another live run"):
            trainer.train_and_evaluate(tt.tiny_config(), workdir)
    finally:
        lock.release()
    assert not os.path.exists(os.path.join(workdir, "checkpoints"))


def test_early_stopping_stops_and_stays_stopped(tmp_path):
    """best_metric='accuracy' (lower wins) never improves while the model learns."""
    workdir = str(tmp_path / "w")
    config = tt.tiny_config(
        **{
            "train.best_metric": "accuracy",
            "train.eval_every": 4,
            "train.early_stopping_patience": 2,
            "train.num_steps": 48,
        }
    )
    out = trainer.train_and_evaluate(config, workdir)
    assert out["stopped_early"] and out["steps"] < 48
    again = trainer.train_and_evaluate(config, workdir)
    assert again["steps"] == out["steps"] and again["test"] == out["test"]


def test_unknown_best_metric_is_refused_before_training(tmp_path):
    with pytest.raises(errors.ConfigError, match="best_metric='bogus'.*valid: accuracy, loss"):
        trainer.train_and_evaluate(
            tt.tiny_config(**{"train.best_metric": "bogus"}), str(tmp_path / "w")
        )
    assert not os.path.exists(tmp_path / "w" / "checkpoints")


def test_no_carry_mode_and_epoch_schedule(tmp_path):
    """Independent batches (carry None) and num_epochs with the epoch_decay schedule."""
    config = tt.tiny_config(
        **{
            "data.carry": False,
            "train.num_epochs": 2,
            "train.num_steps": 0,
            "optim.schedule": "epoch_decay",
            "optim.decay_after_epochs": 1,
            "optim.decay_factor": 0.5,
        }
    )
    out = trainer.train_and_evaluate(config, str(tmp_path / "w"))
    assert out["steps"] == 12
    lrs = {
        e["step"]: e["lr"]
        for e in metrics.read_events(str(tmp_path / "w"))
        if e["split"] == "train"
    }
    assert lrs[4] == pytest.approx(1e-2) and lrs[12] == pytest.approx(5e-3)


def test_evaluate_workdir_matches_results(finished):
    from train import evaluate

    workdir, result = finished
    out = evaluate.evaluate_workdir(workdir, "test", "best")
    assert out["checkpoint_step"] == result["best_step"]
    assert {k: out[k] for k in result["test"]} == result["test"]
    latest = evaluate.evaluate_workdir(workdir, "valid", "latest")
    assert latest["checkpoint_step"] == 24
    with pytest.raises(errors.ConfigError, match="--split"):
        evaluate.evaluate_workdir(workdir, "train")


def test_startup_banner_and_compile_time_on_the_console(tmp_path):
    proc = tt.run_cli(tt.cli_args(str(tmp_path / "run"), **{"train.num_steps": 4}))
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr
    assert "task synthetic | 1 x lstm(8) in a Stack |" in err and "parameters | 1 x cpu" in err
    assert "training: 4 steps, batch 8; objective: " in err and "memory estimate" in err
    assert "compiling the train step ..." in err and "compiled and ran the first step in" in err
    assert err.index("compiling") < err.index("step 4/4")
    result = tt.results(str(tmp_path / "run"))
    assert result["params"] == 680 and result["memory_estimate_bytes"]["total"] > 0


def test_the_best_checkpoint_is_not_evaluated_twice_at_the_end(tmp_path, monkeypatch):
    calls = []
    real = trainer.evaluate

    def counting(task, eval_step, params, split, mesh, batch_size):
        calls.append(split)
        return real(task, eval_step, params, split, mesh, batch_size)

    monkeypatch.setattr(trainer, "evaluate", counting)
    workdir = str(tmp_path / "run")
    result = trainer.train_and_evaluate(
        tt.tiny_config(**{"train.num_steps": 8, "train.eval_every": 8}), workdir
    )
    assert result["best_step"] == 8
    assert calls == ["valid", "test"]  # the final 'valid' is step 8's own validation pass
    finals = [e for e in metrics.read_events(workdir) if e.get("final")]
    valids = [e for e in metrics.read_events(workdir) if e["split"] == "valid"]
    assert finals[0]["loss"] == valids[0]["loss"]  # the same numbers, recorded as final


def test_at_most_one_train_step_is_in_flight(tmp_path, monkeypatch):
    """The loop waits for step k - 1 after dispatching step k (XLA:CPU allocates a dispatched
    step's buffers before it runs; a run-ahead to the next log held them all at once)."""
    waited = []
    real = jax.block_until_ready
    monkeypatch.setattr(trainer.jax, "block_until_ready", lambda x: waited.append(x) or real(x))
    config = tt.tiny_config(**{"train.num_steps": 6, "train.log_every": 6})
    trainer.train_and_evaluate(config, str(tmp_path / "run"))
    # The first step's own wait (compile timing), then one wait per later step for the one before.
    assert len(waited) >= 6
