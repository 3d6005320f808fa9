"""Shared helpers for the training-system tests: a tiny synthetic config and a CLI runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np
import pytest

import cells
from train import checkpoint, metrics

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SYNTHETIC = os.path.join("experiments", "configs", "synthetic.py")
# What an unknown cell's one-line error lists: every registered name, from the registry.
REGISTERED_CELLS = "registered cells: " + ", ".join(cells.names())
# Compiled executables are cached across the test subprocesses (each would compile the same
# train step again); the cache changes nothing numerically.
_CACHE = os.path.join(tempfile.gettempdir(), "rnn_cells_train_tests_jax_cache")

# The tiny config every loop test uses (as --config.* overrides for the CLI).
TINY = {
    "model.hidden_size": 8,
    "model.embed_size": 8,
    "data.steps_per_epoch": 6,
    "data.eval_windows": 2,
    "train.num_steps": 24,
    "train.batch_size": 8,
    "train.seq_len": 5,
    "train.log_every": 4,
    "train.eval_every": 8,
    "train.checkpoint_every": 8,
    "train.keep_checkpoints": 2,
    "eval.batch_size": 8,
}


def tiny_config(**overrides):
    """The synthetic config shrunk to TINY, with `overrides` ('train.num_steps'=...) applied."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("synthetic_config", os.path.join(REPO, SYNTHETIC))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    for key, value in {**TINY, **overrides}.items():
        group, field = key.split(".") if "." in key else (None, key)
        target = config if group is None else config[group]
        target[field] = value
    return config


def tiny_lm_config(tmp_path, valid_fraction: float = 0.2):
    """(the corpus file, a tiny character-level LM config on it: 4 steps, eval batch 2)."""
    from train import config_base
    from train.tasks import lm

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog\n" * 40)
    config = config_base.base_config()
    config.task = "lm"
    config.data.path = str(corpus)
    config.data.level = "char"
    config.data.valid_fraction = valid_fraction
    config.data.test_fraction = 0.0
    config.model.hidden_size = 8
    config.model.embed_size = 4
    config.model.update(lm.REGULARIZATION)  # recurrent_dropout, weight_drop ... all off
    config.train.batch_size = 2
    config.train.seq_len = 8
    config.train.num_steps = 4
    config.eval.batch_size = 2
    return corpus, config


def cli_args(workdir: str, **overrides) -> list[str]:
    args = [f"--config={SYNTHETIC}", f"--workdir={workdir}"]
    return args + [f"--config.{k}={v}" for k, v in {**TINY, **overrides}.items()]


@pytest.fixture(scope="module", autouse=True)
def compile_cache():
    """Persistent compilation cache for in-process runs of one test module (restored after)."""
    from jax._src import compilation_cache

    names = (
        "jax_compilation_cache_dir",
        "jax_persistent_cache_min_compile_time_secs",
        "jax_persistent_cache_min_entry_size_bytes",
    )
    old = {n: getattr(jax.config, n) for n in names}
    for n, v in zip(names, (_CACHE, 0, -1), strict=True):
        jax.config.update(n, v)
    compilation_cache.reset_cache()
    yield
    for n, v in old.items():
        jax.config.update(n, v)
    compilation_cache.reset_cache()


def env(**extra) -> dict:
    e = dict(os.environ)
    e.update(
        JAX_PLATFORMS="cpu",
        JAX_COMPILATION_CACHE_DIR=_CACHE,
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="-1",
        PYTHONPATH=REPO,
    )
    e.update(extra)
    return e


def run_cli(args: list[str], module: str = "train.main", timeout: float = 300, **env_extra):
    """Runs `python -m module args` from the repo root; returns the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env=env(**env_extra),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_cli(args: list[str], **env_extra) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "train.main", *args],
        cwd=REPO,
        env=env(**env_extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_step(proc: subprocess.Popen, workdir: str, step: int, timeout: float = 240) -> None:
    """Blocks until metrics.jsonl has a train event at >= `step` (or the process ends)."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        events = metrics.read_events(workdir)
        if any(e["split"] == "train" and e["step"] >= step for e in events):
            return
        time.sleep(0.02)
    raise AssertionError(f"process did not reach step {step} (rc={proc.poll()})")


def params_of(workdir: str, which: str = "latest"):
    return checkpoint.load_trained(workdir, which).params


def assert_trees_equal(a, b) -> None:
    """Bitwise equality of two pytrees of arrays."""
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(la, lb, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def max_abs_diff(a, b) -> float:
    """Largest |a - b| over two pytrees of arrays with the same structure."""
    assert jax.tree.structure(a) == jax.tree.structure(b)
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in pairs)


def results(workdir: str) -> dict:
    with open(os.path.join(workdir, "results.json")) as f:
        return json.load(f)


LM_TEXT = "to be or not to be that is the question\n" * 40  # a tiny character corpus


def tiny_gpt_config(path, **model):
    """A tiny GPT LM config on the corpus file `path` (4 heads of 4, context 8, 6 steps)."""
    from train import config_base
    from train.tasks import lm

    config = config_base.base_config()
    config.task = "lm"
    config.data.path = str(path)
    config.data.level = "char"
    config.data.valid_fraction = 0.2
    config.data.test_fraction = 0.0
    config.data.update(lm.DATA_FIELDS)
    config.data.train_windows = "random"
    config.data.eval_window = 8
    config.model.update(lm.REGULARIZATION)
    config.model.update(lm.GPT_FIELDS)
    config.model.kind = "gpt"
    config.model.hidden_size = 16
    config.model.num_layers = 2
    config.model.num_heads = 4
    config.model.block_size = 8
    config.model.tie_embeddings = True
    config.model.objective = "token_mean"
    for k, v in model.items():
        config.model[k] = v
    config.optim.optimizer = "adamw"
    config.optim.weight_decay = 0.1
    config.optim.decay_matrices_only = True
    config.train.batch_size = 4
    config.train.seq_len = 8
    config.train.num_steps = 6
    config.train.log_every = 3
    config.train.eval_every = 3
    config.train.checkpoint_every = 3
    config.eval.batch_size = 3
    return config
