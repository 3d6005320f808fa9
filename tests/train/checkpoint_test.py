"""Checkpoint retention, corrupt fallback bookkeeping, signature refusal, the workdir lock."""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from train import checkpoint, errors


def _state(value):
    return {"w": jnp.full((3,), value, jnp.float32), "step": jnp.int32(value)}


def _abstract():
    return jax.eval_shape(lambda: _state(0))


def _save(ckpts, step, best=None):
    ckpts.save(step, _state(step), {"step": step, "signature": "sig"}, best_step=best)


def _corrupt(workdir, step):
    for path in glob.glob(os.path.join(workdir, "checkpoints", str(step), "**"), recursive=True):
        if os.path.isfile(path):
            open(path, "w").close()


def test_retention_keeps_latest_and_best(tmp_path):
    ckpts = checkpoint.Checkpoints(str(tmp_path), keep=2)
    for step in range(1, 6):
        _save(ckpts, step, best=2 if step >= 2 else None)
    assert ckpts.steps() == [2, 4, 5]
    ckpts.close()


def test_corrupt_steps_move_aside_without_clobbering(tmp_path):
    workdir = str(tmp_path)
    ckpts = checkpoint.Checkpoints(workdir)
    for step in (1, 2):
        _save(ckpts, step)
    _corrupt(workdir, 2)
    state, meta = ckpts.restore_latest(_abstract(), "sig")
    assert meta["step"] == 1 and int(state["step"]) == 1
    assert ckpts.steps() == [1]
    _save(ckpts, 2)  # the same step number again: no clash with the corrupt copy
    _corrupt(workdir, 2)
    _, meta = ckpts.restore_latest(_abstract(), "sig")
    assert meta["step"] == 1
    assert sorted(os.listdir(os.path.join(workdir, checkpoint.CORRUPT))) == ["2", "2.1"]
    ckpts.close()


def test_signature_mismatch_is_a_config_error(tmp_path):
    ckpts = checkpoint.Checkpoints(str(tmp_path))
    _save(ckpts, 1)
    with pytest.raises(errors.ConfigError, match="another shape"):
        ckpts.restore_latest(_abstract(), "other")
    assert ckpts.steps() == [1]
    ckpts.close()


def test_restore_on_one_device(tmp_path):
    ckpts = checkpoint.Checkpoints(str(tmp_path))
    _save(ckpts, 3)
    state, _ = ckpts.restore(3, _abstract())
    np.testing.assert_array_equal(state["w"], np.full(3, 3.0))
    ckpts.close()


def test_lock_is_exclusive_and_freed_by_sigkill(tmp_path):
    workdir = str(tmp_path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from train import checkpoint\n"
            f"checkpoint.WorkdirLock({workdir!r}).acquire()\n"
            "print('locked', flush=True); time.sleep(300)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(errors.ConfigError, match=f"pid {holder.pid}"):
            checkpoint.WorkdirLock(workdir).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    lock = checkpoint.WorkdirLock(workdir)  # the stale lock file does not block
    lock.acquire()
    lock.release()
