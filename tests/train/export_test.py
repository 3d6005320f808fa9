"""train/export.py: each task's training step exported for CUDA and TPU (lowered here, on the
CPU), serialised and read back; the CPU export runs and equals the jitted step."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import train_testing

from experiments.configs import adding, copy, ett, ptb_small
from train import export, optim, steps, trainer
from train import state as state_lib
from train.tasks import registry


def _tiny_lm():
    """Zaremba's small LM, shrunk, on Tiny Shakespeare characters, with the AWD-LSTM
    regularisers on (their masks and rng use are part of the exported program)."""
    config = ptb_small.get_config()
    config.data.path = "data/tinyshakespeare/input.txt.gz"
    config.data.level = "char"
    config.data.test_fraction = 0.0
    config.model.hidden_size = 8
    config.train.seq_len = 5
    config.model.update(
        {"locked_dropout": True, "dropout": 0.2, "weight_drop": 0.3, "recurrent_dropout": 0.2}
    )
    config.model.update({"zoneout": 0.1, "ar_alpha": 1.0, "tar_beta": 1.0, "embed_dropout": 0.1})
    return config


# One small config per task (lm: regularised, char-level; synthetic; forecast: ETTh1; adding;
# copy).
CONFIGS = {
    "lm": _tiny_lm,
    "synthetic": lambda: train_testing.tiny_config(),
    "forecast": lambda: ett.get_config("horizon=4,input_len=8,hidden_size=6"),
    "adding": lambda: adding.get_config("length=6,hidden_size=5"),
    "copy": lambda: copy.get_config("length=4,hidden_size=5"),
}


def _small(config):
    config.train.batch_size = 4
    return config


@pytest.mark.parametrize("task_name", list(CONFIGS))
def test_train_step_lowers_for_cuda_and_tpu(task_name):
    config = _small(CONFIGS[task_name]())
    assert config.task == task_name
    exported = export.train_step(config)
    assert exported.platforms == ("cuda", "tpu")
    restored = export.load(exported.serialize(), config)
    assert restored.platforms == ("cuda", "tpu")
    assert str(restored.exported.in_avals) == str(exported.exported.in_avals)


# Compiling and running the CPU export costs two compilations per task: one in the default run.
@pytest.mark.parametrize(
    "task_name",
    [pytest.param(t, marks=() if t == "adding" else pytest.mark.slow) for t in CONFIGS],
)
def test_the_cpu_export_equals_the_jitted_step(task_name):
    config = _small(CONFIGS[task_name]())
    exported = export.train_step(config, platforms=("cpu", "cuda", "tpu"))
    restored = export.load(exported.serialize(), config)
    task = registry.get_task(config)
    tx, _ = optim.make_optimizer(
        config.optim, trainer.num_train_steps(config, task), task.steps_per_epoch()
    )
    state = state_lib.create(task, tx, config.seed, config.train.batch_size)
    batch = next(task.train_iterator())
    step = jax.jit(
        lambda s, b: steps.train_step(
            s, b, task=task, tx=tx, grad_clip_norm=config.optim.grad_clip_norm
        )
    )
    want_state, want_sums = step(state, batch)
    got_state, got_sums = restored.call(state, batch)
    for a, b in zip(
        jax.tree.leaves((got_state, got_sums)),
        jax.tree.leaves((want_state, want_sums)),
        strict=True,
    ):
        if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            a, b = jax.random.key_data(a), jax.random.key_data(b)
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)
    # The step trained: parameters moved.
    before, after = jax.tree.leaves(state.params), jax.tree.leaves(got_state.params)
    assert any(
        not np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(before, after, strict=True)
    )
    with pytest.raises(ValueError, match="do not have the structure"):
        restored.call(state.params, batch)
