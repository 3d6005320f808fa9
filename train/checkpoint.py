"""Checkpoints (orbax CheckpointManager), corrupt-checkpoint fallback, the workdir lock, and
`restore_params`, the one way other code loads a trained model.

Layout of a workdir:

    DIR/checkpoints/<step>/state   the TrainState (params, optimizer state, step, rng, carry)
    DIR/checkpoints/<step>/meta    JSON: data-iterator position, best-metric bookkeeping,
                                   train sums not yet logged, state signature
    DIR/checkpoints_corrupt/       unreadable checkpoints moved aside (never deleted)
    DIR/.lock                      held (flock) by the live run; the OS frees it when it dies

Kept: the newest `keep` checkpoints plus the best one (by the validation metric). Saves are
synchronous: when `save` returns, the step is on disk; a run killed while saving leaves only an
unfinished temporary directory that orbax ignores.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import tempfile
import time
from typing import Any

import jax
import ml_collections
import orbax.checkpoint as ocp
from absl import logging
from jax.experimental import multihost_utils

from train.tasks import base

CHECKPOINTS = "checkpoints"
CORRUPT = "checkpoints_corrupt"
LOCK = ".lock"


class CheckpointError(RuntimeError):
    """No readable checkpoint although some exist (nothing is moved or deleted)."""


class WorkdirLock:
    """An exclusive flock on DIR/.lock, held for the life of the run (freed by the OS on death)."""

    def __init__(self, workdir: str):
        self.path = os.path.join(workdir, LOCK)
        self._fd = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise base.ConfigError(
                f"workdir {os.path.dirname(self.path)} is in use by another live run "
                f"(pid {owner}); wait for it to finish or use another --workdir."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _drop_closed_loop_tracebacks(text: str) -> str:
    """Removes the 'RuntimeError: Event loop is closed' tracebacks of a failed restore."""
    out, block = [], []
    for line in text.splitlines(keepends=True):
        if line.startswith("Traceback (most recent call last):"):
            out += block
            block = [line]
        elif block:
            block.append(line)
            if not line.startswith(" "):  # the exception line ends the traceback
                if "Event loop is closed" not in line:
                    out += block
                block = []
        else:
            out.append(line)
    return "".join(out + block)


@contextlib.contextmanager
def _quiet_failed_restores(failures: list):
    """Filters stderr (fd 2) while restoring possibly corrupt checkpoints.

    When a restore fails, tensorstore callbacks still scheduled on orbax's (then closed)
    asyncio loop print 'Event loop is closed' tracebacks from C++ threads; they are noise, not
    errors. Everything else written meanwhile is passed through. `failures` is the caller's
    list of failed restores: when it is not empty, late callbacks get a moment to print.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            if failures:
                time.sleep(1.0)
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            sys.stderr.write(_drop_closed_loop_tracebacks(tmp.read().decode(errors="replace")))
            sys.stderr.flush()


def _abstract(tree, sharding=None):
    """ShapeDtypeStructs (with a sharding, default the first local device) for restoring."""
    default = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])

    def leaf(x, s=None):
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s or default)

    if sharding is None:
        return jax.tree.map(leaf, tree)
    return jax.tree.map(leaf, tree, sharding)


class Checkpoints:
    """Saves and restores (TrainState, meta) under DIR/checkpoints."""

    def __init__(self, workdir: str, keep: int = 3):
        self.workdir = workdir
        self.keep = keep
        self.directory = os.path.join(os.path.abspath(workdir), CHECKPOINTS)
        options = ocp.CheckpointManagerOptions(
            enable_async_checkpointing=False, create=True, max_to_keep=None
        )
        self.manager = ocp.CheckpointManager(
            self.directory, options=options, item_names=("state", "meta")
        )

    def steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def save(self, step: int, state, meta: dict[str, Any], best_step: int | None = None) -> None:
        """Writes step `step` (synchronously), then prunes to the newest `keep` + the best."""
        self.manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)
            ),
            force=True,
        )
        self.manager.wait_until_finished()
        steps = self.steps()
        keep = set(steps[-self.keep :]) | {best_step}
        for s in steps:
            if s not in keep:
                self.manager.delete(s)

    def read_meta(self, step: int) -> dict[str, Any]:
        restored = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        return restored.meta

    def restore(self, step: int, abstract_state, shardings=None):
        """(state, meta) of `step`, placed as `shardings` (default: the first local device)."""
        target = _abstract(abstract_state, shardings)
        restored = self.manager.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore()
            ),
        )
        return restored.state, restored.meta

    def restore_latest(self, abstract_state, signature: str, shardings=None):
        """The newest readable checkpoint as (state, meta), or None when there is none.

        Unreadable newer checkpoints are moved to DIR/checkpoints_corrupt/ with a warning (only
        once a readable one is found). Raises ConfigError when the newest readable checkpoint
        holds a state of another shape (the config changed), CheckpointError when checkpoints
        exist but none is readable.
        """
        failures = []
        with _quiet_failed_restores(failures):
            found = self._newest_readable(abstract_state, signature, shardings, failures)
        if found is not None:
            for bad_step, error in failures:
                self._move_aside(bad_step, error)
            return found
        if failures:
            detail = "; ".join(f"step {s}: {str(e).splitlines()[0][:200]}" for s, e in failures)
            raise CheckpointError(
                f"no readable checkpoint in {self.directory} ({detail}); nothing was changed. "
                "Move the directory away to start afresh."
            )
        return None

    def _newest_readable(self, abstract_state, signature, shardings, failures):
        for step in reversed(self.steps()):
            try:
                meta = self.read_meta(step)
            except Exception as e:  # noqa: BLE001 - any failure to read means "unreadable"
                failures.append((step, e))
                continue
            if meta.get("signature") != signature:
                raise base.ConfigError(
                    f"checkpoint step {step} in {self.directory} holds a train state of another "
                    "shape than this config builds (model, optimizer or batch changed); use a new "
                    "--workdir or restore the original config."
                )
            try:
                return self.restore(step, abstract_state, shardings)
            except Exception as e:  # noqa: BLE001
                failures.append((step, e))
        return None

    def _move_aside(self, step: int, error: Exception) -> None:
        source = os.path.join(self.directory, str(step))
        corrupt_dir = os.path.join(os.path.abspath(self.workdir), CORRUPT)
        target = os.path.join(corrupt_dir, str(step))
        n = 1
        while os.path.exists(target):
            target = os.path.join(corrupt_dir, f"{step}.{n}")
            n += 1
        if jax.process_index() == 0:
            logging.warning(
                "checkpoint step %d is unreadable (%s); moved it to %s, resuming from an older one",
                step,
                str(error).splitlines()[0][:200],
                target,
            )
            os.makedirs(corrupt_dir, exist_ok=True)
            os.rename(source, target)
        if jax.process_count() > 1:
            multihost_utils.sync_global_devices(f"checkpoint_move_aside_{step}")
        self.manager.reload()

    def close(self) -> None:
        self.manager.close()


def load_config(workdir: str) -> ml_collections.ConfigDict:
    """The config a workdir was trained with (DIR/config.json)."""
    with open(os.path.join(workdir, "config.json")) as f:
        return ml_collections.ConfigDict(json.load(f))


def restore_params(workdir: str, which: str = "best"):
    """(config, params) of a workdir's best (default) or latest checkpoint, on one device.

    'best' is the checkpoint with the lowest validation `config.train.best_metric`; when no
    evaluation happened it falls back to the latest.
    """
    from train import trainer  # local import: trainer imports this module

    if which not in ("best", "latest"):
        raise ValueError(f"which must be 'best' or 'latest', got {which!r}.")
    config = load_config(workdir)
    ckpts = Checkpoints(workdir)
    try:
        if not ckpts.steps():
            raise FileNotFoundError(f"no checkpoints in {ckpts.directory}")
        latest = ckpts.steps()[-1]
        step = latest
        if which == "best":
            best = ckpts.read_meta(latest).get("best_step")
            step = best if best is not None else latest
        abstract_state, _ = trainer.abstract_state(config)
        state, _ = ckpts.restore(step, abstract_state)
    finally:
        ckpts.close()
    return config, state.params
