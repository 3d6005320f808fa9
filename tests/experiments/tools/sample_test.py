"""Tests for experiments/tools/sample.py: determinism with a seed, prompt handling, clear errors."""

import os
import subprocess
import sys

import jax
import pytest

from experiments.tools import sample
from train import config_base, errors, trainer
from train.tasks import lm

jax.config.update("jax_numpy_rank_promotion", "raise")

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _config(path, level="char"):
    config = config_base.base_config()
    config.task = "lm"
    config.data.path = str(path)
    config.data.level = level
    config.data.valid_fraction = 0.2
    config.data.test_fraction = 0.0
    config.model.cell = "gru"
    config.model.hidden_size = 16
    config.model.num_layers = 1
    config.model.embed_size = 8
    config.train.batch_size = 2
    config.train.seq_len = 8
    config.train.num_steps = 2
    config.train.log_every = 1
    config.train.eval_every = 0
    config.train.checkpoint_every = 0
    config.eval.batch_size = 1
    return config


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample")
    path = root / "text.txt"
    path.write_text("ROMEO: what light through yonder window breaks\n" * 20)
    workdir = str(root / "run")
    trainer.train_and_evaluate(_config(path), workdir)
    return workdir


def test_same_seed_same_text(workdir):
    task, params = sample.load(workdir)
    a = sample.generate(task, params, "ROMEO:", 50, 0.8, seed=0)
    b = sample.generate(task, params, "ROMEO:", 50, 0.8, seed=0)
    c = sample.generate(task, params, "ROMEO:", 50, 0.8, seed=1)
    assert a == b
    assert a != c
    assert len(a) == 50 and set(a) <= set(task.corpus.vocab.tokens)
    assert sample.generate(task, params, "ROMEO:", 0, 0.8, seed=0) == ""
    assert len(sample.generate(task, params, "", 5, 1.0, seed=0)) == 5  # starts from '\n'


def test_low_temperature_is_greedy(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("abcabcabc\n" * 10)
    task = lm.LMTask(_config(path))
    params = task.init_params(jax.random.key(0))
    # Near-zero temperature: every seed picks the argmax, so the text no longer depends on it.
    texts = {sample.generate(task, params, "ab", 20, 1e-4, seed=s) for s in range(3)}
    assert len(texts) == 1


def test_errors(workdir, tmp_path):
    task, params = sample.load(workdir)
    with pytest.raises(sample.SampleError, match="--temperature"):
        sample.generate(task, params, "R", 5, 0.0, seed=0)
    with pytest.raises(sample.SampleError, match="--prompt"):
        sample.generate(task, params, "ROMEO: \u00e9", 5, 0.8, seed=0)
    with pytest.raises(errors.ConfigError, match="no config.json"):
        sample.load(str(tmp_path / "nothing"))


def test_cli_prints_prompt_and_sample_or_one_line_error(workdir, tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "experiments.tools.sample",
        f"--workdir={workdir}",
        "--prompt=ROMEO:",
    ]
    out = subprocess.run(cmd + ["--length=30"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ROMEO:") and len(out.stdout) == len("ROMEO:") + 30 + 1
    bad = subprocess.run(
        [sys.executable, "-m", "experiments.tools.sample", f"--workdir={tmp_path}"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "error: --workdir" in bad.stderr
