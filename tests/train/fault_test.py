"""Faults that must not damage a workdir: what a refused or failed run leaves behind."""

from __future__ import annotations

import os

import pytest
import train_testing as tt

from train import errors, evaluate, trainer


def test_a_refused_restart_leaves_config_json_and_evaluation_intact(tmp_path):
    """SGD momentum is not a frozen field but adds an optimizer trace (another state shape):
    the restart is refused by the checkpoint signature, after the frozen-field check passed."""
    workdir = str(tmp_path / "run")
    config = tt.tiny_config(**{"train.num_steps": 8, "optim.optimizer": "sgd"})
    trainer.train_and_evaluate(config, workdir)
    path = os.path.join(workdir, "config.json")
    before = open(path).read()
    changed = tt.tiny_config(
        **{"train.num_steps": 16, "optim.optimizer": "sgd", "optim.momentum": 0.9}
    )
    with pytest.raises(errors.ConfigError, match="another shape"):
        trainer.train_and_evaluate(changed, workdir)
    assert open(path).read() == before  # the record still describes the checkpoints
    result = evaluate.evaluate_workdir(workdir, "test")
    assert result["checkpoint_step"] == tt.results(workdir)["best_step"]
    # The original command still resumes (and, its steps done, just evaluates again).
    trainer.train_and_evaluate(config, workdir)


def test_an_eval_batch_too_large_for_a_split_is_refused_before_step_one(tmp_path):
    from train import config_base

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog\n" * 40)
    config = config_base.base_config()
    config.task = "lm"
    config.data.path = str(corpus)
    config.data.level = "char"
    config.data.valid_fraction = 0.1
    config.data.test_fraction = 0.0
    config.model.hidden_size = 8
    config.model.embed_size = 4
    config.train.batch_size = 2
    config.train.seq_len = 8
    config.train.num_steps = 4
    config.eval.batch_size = 500  # the valid split (about 180 characters) cannot fill it
    workdir = tmp_path / "run"
    with pytest.raises(errors.ConfigError, match="config.eval.batch_size"):
        trainer.train_and_evaluate(config, str(workdir))
    assert not (workdir / "checkpoints").exists() or not os.listdir(workdir / "checkpoints")
    assert not (workdir / "metrics.jsonl").exists()


@pytest.fixture(scope="module")
def distinct_best(tmp_path_factory):
    """A finished tiny run whose best checkpoint is not its latest (3 checkpoints kept)."""
    tmp_path = tmp_path_factory.mktemp("distinct_best")
    for seed in range(6):
        workdir = str(tmp_path / f"run{seed}")
        config = tt.tiny_config(
            **{
                "seed": seed,
                "train.num_steps": 24,
                "train.eval_every": 4,
                "optim.learning_rate": 0.3,
            }
        )
        result = trainer.train_and_evaluate(config, workdir)
        steps = sorted(int(n) for n in os.listdir(os.path.join(workdir, "checkpoints")))
        if result["best_step"] not in (None, steps[-1]) and len(steps) >= 3:
            return workdir, config, result, steps
    pytest.skip("no seed gave a best checkpoint before the last one")


def _corrupt(workdir, step):
    for root, _, names in os.walk(os.path.join(workdir, "checkpoints", str(step))):
        for name in names:
            open(os.path.join(root, name), "w").close()


@pytest.mark.parametrize("fault", ["best deleted", "best corrupt", "best and latest corrupt"])
def test_a_lost_best_checkpoint_falls_back_without_a_traceback(tmp_path, fault, distinct_best):
    import shutil

    original, config, result, steps = distinct_best
    workdir = str(tmp_path / "run")
    shutil.copytree(original, workdir)
    best = result["best_step"]
    if fault == "best deleted":
        shutil.rmtree(os.path.join(workdir, "checkpoints", str(best)))
    else:
        _corrupt(workdir, best)
        if fault == "best and latest corrupt":
            _corrupt(workdir, steps[-1])
    got = evaluate.evaluate_workdir(workdir, "test")
    assert got["checkpoint_step"] != best
    assert got["checkpoint_step"] in steps
    kept = sorted(os.listdir(os.path.join(workdir, "checkpoints")))
    if fault != "best deleted":  # moved aside, never deleted
        assert str(best) in os.listdir(os.path.join(workdir, "checkpoints_corrupt"))
        assert str(best) not in kept
    # Resuming with more steps trains on and evaluates a readable checkpoint at the end.
    more = config.copy_and_resolve_references()
    more.train.num_steps = 28
    final = trainer.train_and_evaluate(more, workdir)
    assert final["steps"] == 28 and final["test"]["loss"] > 0
