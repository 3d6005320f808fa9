"""Checkpoints (orbax CheckpointManager), corrupt-checkpoint fallback, the workdir lock, and
`load_trained`, the one way code outside the training loop loads a trained model.

Layout of a workdir:

    DIR/checkpoints/<step>/state   the TrainState (params, optimizer state, step, rng, carry)
    DIR/checkpoints/<step>/meta    JSON: data-iterator position, best-metric bookkeeping,
                                   train sums not yet logged, state signature, and a CRC-32
                                   per saved array (verified on restore: a flipped bit makes
                                   the checkpoint unreadable, handled like any corrupt one)
    DIR/checkpoints_corrupt/       unreadable checkpoints moved aside (never deleted)
    DIR/.lock                      held (flock) by the live run; the OS frees it when it dies

Kept: the newest `keep` checkpoints plus the best one (by the validation metric). Saves are
synchronous: when `save` returns, the step is on disk; a run killed while saving leaves only an
unfinished temporary directory that orbax ignores. A save that fails for lack of disk space
removes its unfinished directory and raises CheckpointError naming the cause; the checkpoints
written before it are untouched.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import glob
import logging as py_logging
import os
import shutil
import sys
import tempfile
import time
import zlib
from typing import Any

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from absl import logging
from jax.experimental import multihost_utils

from train import optim
from train import state as state_lib
from train import workdir as workdir_lib
from train.errors import ConfigError
from train.tasks import base, registry

CHECKPOINTS = "checkpoints"
CORRUPT = "checkpoints_corrupt"
LOCK = ".lock"


class CheckpointError(RuntimeError):
    """No readable checkpoint although some exist (nothing is moved or deleted), or a
    checkpoint could not be written (disk full)."""


class ChecksumError(ValueError):
    """A restored array differs from the one saved (a flipped bit, a damaged file)."""


_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def disk_full(error: BaseException) -> OSError | None:
    """The 'no space left' OSError behind `error` (its cause/context chain), or None."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in _DISK_FULL:
            return error
        for code in _DISK_FULL:  # tensorstore's errors carry the C library's text only
            if os.strerror(code) in str(error):
                return OSError(code, os.strerror(code))
        error = error.__cause__ or error.__context__
    return None


def _full_reason(error: OSError) -> str:
    return "disk quota exceeded" if error.errno == errno.EDQUOT else "no space left on device"


def checksums(state) -> dict[str, str]:
    """CRC-32 (hex) of every array of `state` this process holds whole, keyed by tree path.

    Arrays split over processes (the batch-sharded carry of a multi-host run) are skipped."""
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            continue
        if jax.dtypes.issubdtype(getattr(leaf, "dtype", None), jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)  # a typed PRNG key: its raw words
        data = np.ascontiguousarray(jax.device_get(leaf))
        out[jax.tree_util.keystr(path)] = f"{zlib.crc32(data.tobytes()) & 0xFFFFFFFF:08x}"
    return out


def verify_checksums(state, expected: dict[str, str] | None, step: int) -> None:
    """Raises ChecksumError when an array of the restored `state` differs from its checksum.
    Checkpoints written before checksums existed (expected None) pass."""
    if not expected:
        return
    for key, value in checksums(state).items():
        if key in expected and expected[key] != value:
            raise ChecksumError(
                f"checkpoint step {step}: array {key} does not match the checksum saved with it "
                f"(crc32 {value} != {expected[key]}): the file is damaged"
            )


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
            raise ConfigError(
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


class _Held(py_logging.Filter):
    """The absl log records `_held_stderr` holds back, and how its block ended."""

    def __init__(self):
        super().__init__()
        self.records: list = []
        self.drop_orbax = False  # the caller reports the failure in one line: orbax's logs go

    def filter(self, record) -> bool:
        self.records.append(record)
        return False  # held, not emitted (yet)


def _from_orbax(record) -> bool:
    return f"{os.sep}orbax{os.sep}" in (record.pathname or "")


@contextlib.contextmanager
def _held_stderr(failures: list):
    """Holds back what a checkpoint read or write prints to stderr, and lets it go after.

    Orbax and tensorstore report a failure on their own, from their threads: absl log records
    with full tracebacks (a disk that fills during a save logs two, of 60 lines each), and
    'RuntimeError: Event loop is closed' tracebacks that tensorstore callbacks, still scheduled
    on orbax's closed asyncio loop, print from C++ straight to fd 2. The latter are always
    noise and are dropped. Where the caller reports the failure itself in one line, it sets
    `held.drop_orbax` and orbax's records are dropped too. Everything else (our own warnings,
    other libraries' output) is passed through, after the block. `failures` is the caller's
    list of failed reads or writes: when it is not empty, late callbacks get a moment to print.
    """
    held, logger = _Held(), logging.get_absl_logger()
    logger.filters.insert(0, held)  # first: the innermost of nested holds takes the records
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield held
        finally:
            if failures:
                time.sleep(1.0)
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            logger.removeFilter(held)
            tmp.seek(0)
            sys.stderr.write(_drop_closed_loop_tracebacks(tmp.read().decode(errors="replace")))
            sys.stderr.flush()
            for record in held.records:
                if not (held.drop_orbax and _from_orbax(record)):
                    logger.handle(record)


def _failures(failures: list) -> str:
    """'step 8: <first line of its error>; step 4: ...' for a CheckpointError's message."""
    return "; ".join(f"step {s}: {str(e).splitlines()[0][:200]}" for s, e in failures)


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

    def __init__(self, workdir: str, keep: int = 3, create: bool = True):
        self.workdir = workdir
        self.keep = keep
        self.directory = os.path.join(os.path.abspath(workdir), CHECKPOINTS)
        options = ocp.CheckpointManagerOptions(
            enable_async_checkpointing=False, create=create, max_to_keep=None
        )
        self.manager = ocp.CheckpointManager(
            self.directory, options=options, item_names=("state", "meta")
        )

    def steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def save(self, step: int, state, meta: dict[str, Any], best_step: int | None = None) -> None:
        """Writes step `step` (synchronously), then prunes to the newest `keep` + the best.

        Raises CheckpointError, after removing the unfinished directory, when the disk is full.
        """
        meta = {**meta, "checksums": checksums(state)}
        failures, full = [], None
        with _held_stderr(failures) as held:
            try:
                self.manager.save(
                    step,
                    args=ocp.args.Composite(
                        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)
                    ),
                    force=True,
                )
                self.manager.wait_until_finished()
            except Exception as e:
                full = disk_full(e)
                if full is None:
                    raise
                failures.append((step, e))
                held.drop_orbax = True  # orbax's writer threads logged it with tracebacks
        if full is not None:  # after the hold's pause: no writer thread still at work in it
            self._remove_unfinished(step)
            kept = self.steps()
            raise CheckpointError(
                f"could not write checkpoint step {step} in {self.directory}: "
                f"{_full_reason(full)}; the checkpoints before it "
                f"({', '.join(map(str, kept)) or 'none'}) are intact: free some space and rerun "
                "the same command to resume."
            ) from None
        steps = self.steps()
        keep = set(steps[-self.keep :]) | {best_step}
        for s in steps:
            if s not in keep:
                self.manager.delete(s)

    def _remove_unfinished(self, step: int) -> None:
        """Deletes the temporary directory of a failed save of `step` (never a finished one)."""
        if jax.process_index() != 0:
            return
        for path in glob.glob(os.path.join(self.directory, f"{step}.orbax-checkpoint-tmp*")):
            shutil.rmtree(path, ignore_errors=True)
        with contextlib.suppress(Exception):
            self.manager.reload()

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
        verify_checksums(restored.state, restored.meta.get("checksums"), step)
        return restored.state, restored.meta

    def restore_latest(self, abstract_state, signature: str, shardings=None):
        """The newest readable checkpoint as (state, meta), or None when there is none.

        Unreadable newer checkpoints are moved to DIR/checkpoints_corrupt/ with a warning (only
        once a readable one is found). Raises ConfigError when the newest readable checkpoint
        holds a state of another shape (the config changed), CheckpointError when checkpoints
        exist but none is readable.
        """
        failures = []
        with _held_stderr(failures) as held:
            found = self._newest_readable(abstract_state, signature, shardings, failures)
            held.drop_orbax = found is None and bool(failures)  # reported in one line below
        if found is not None:
            for bad_step, error in failures:
                self._move_aside(bad_step, error)
            return found
        if failures:
            raise CheckpointError(
                f"no readable checkpoint in {self.directory} ({_failures(failures)}); nothing "
                "was changed. Move the directory away to start afresh."
            )
        return None

    def restore_best(self, best_step: int, abstract_state, shardings=None):
        """(state, meta, step) of checkpoint `best_step`, or of a stand-in when it is gone.

        A best checkpoint that is missing (deleted) or unreadable (moved to
        DIR/checkpoints_corrupt/, never deleted) is replaced, with a warning, by the remaining
        readable checkpoint with the lowest validation value recorded with it, else the newest
        readable one. Raises CheckpointError when no checkpoint is readable.
        """
        failures = []
        with _held_stderr(failures) as held:
            found = None
            if best_step in self.steps():
                try:
                    found = (*self.restore(best_step, abstract_state, shardings), best_step)
                except Exception as e:  # noqa: BLE001 - unreadable: fall back below
                    failures.append((best_step, e))
            if found is None:
                for step in self._best_candidates(exclude=best_step):
                    try:
                        found = (*self.restore(step, abstract_state, shardings), step)
                        break
                    except Exception as e:  # noqa: BLE001
                        failures.append((step, e))
            held.drop_orbax = found is None  # reported in one line below
        if found is None:  # nothing moved: with no readable stand-in, the files stay to inspect
            detail = f"; {_failures(failures)}" if failures else ""
            raise CheckpointError(
                f"no checkpoint in {self.directory} could be read (the best, step {best_step}, "
                f"is missing or unreadable{detail}); nothing was moved or deleted."
            )
        for bad_step, error in failures:
            self._move_aside(bad_step, error)
        if found[2] != best_step and jax.process_index() == 0:
            logging.warning(
                "the best checkpoint (step %d) is missing or unreadable; using step %d instead",
                best_step,
                found[2],
            )
        return found

    def _best_candidates(self, exclude: int) -> list[int]:
        """Remaining steps, those with a recorded validation value first (lowest first), then
        the rest newest first."""
        scored, unscored = [], []
        for step in reversed(self.steps()):
            if step == exclude:
                continue
            try:
                last_valid = self.read_meta(step).get("last_valid")
            except Exception:  # noqa: BLE001 - unreadable meta: try it last
                last_valid = None
            if last_valid and last_valid[0] == step:
                scored.append((last_valid[1], step))
            else:
                unscored.append(step)
        return [step for _, step in sorted(scored)] + unscored

    def _newest_readable(self, abstract_state, signature, shardings, failures):
        for step in reversed(self.steps()):
            try:
                meta = self.read_meta(step)
            except Exception as e:  # noqa: BLE001 - any failure to read means "unreadable"
                failures.append((step, e))
                continue
            if meta.get("signature") != signature:
                raise ConfigError(
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
        if not os.path.exists(source):  # pruned by a live run meanwhile: nothing to move
            self.manager.reload()
            return
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


@dataclasses.dataclass(frozen=True)
class Trained:
    """A trained model, ready for evaluation, sampling or inspection outside the loop."""

    config: ml_collections.ConfigDict  # the workdir's config.json (today's schema)
    task: base.Task  # the task it builds (data loaded)
    params: Any  # the parameters of `step`, on one device
    step: int  # the checkpoint step they come from


def load_trained(workdir: str, which: str | int = "best", task: base.Task | None = None):
    """The `Trained` model of `workdir`: its 'best', 'latest' or a given checkpoint step.

    'best' is the checkpoint with the lowest validation `config.train.best_metric` (the latest
    when no evaluation has happened yet). Pass `task` to reuse one already built from this
    workdir's config (its data stays loaded). Safe beside a live run: it writes nothing (it
    only moves an unreadable checkpoint aside, when a readable one stands in for it), and a
    checkpoint the run prunes meanwhile is replaced by the next. Raises ConfigError when the
    workdir has no config.json or no checkpoint, CheckpointError (one line, nothing moved)
    when the checkpoint asked for, and every stand-in, cannot be read.
    """
    if which not in ("best", "latest") and not isinstance(which, int):
        raise ValueError(f"which must be 'best', 'latest' or a step number, got {which!r}.")
    config = workdir_lib.load_config(workdir)
    if not os.path.isdir(os.path.join(workdir, CHECKPOINTS)):
        raise ConfigError(f"--workdir {workdir!r} has no checkpoints yet.")
    task = registry.get_task(config) if task is None else task
    failures = []
    with _held_stderr(failures) as held:  # orbax logs unreadable metadata from the start
        ckpts = Checkpoints(workdir, create=False)
        try:
            return _load(ckpts, workdir, which, config, task, failures)
        except CheckpointError:
            held.drop_orbax = True  # the error says it in one line
            raise
        finally:
            ckpts.close()


def _load(ckpts: Checkpoints, workdir: str, which, config, task, failures: list) -> Trained:
    """`load_trained` with its checkpoints open; failed reads are added to `failures`."""
    steps = ckpts.steps()
    if not steps:
        raise ConfigError(f"--workdir {workdir!r} has no checkpoints yet.")
    step = steps[-1]
    abstract = state_lib.abstract(config, task)
    meta = _newest_meta(ckpts, steps, failures)
    if meta is None:  # every meta unreadable: a checkpoint is not readable without its own
        raise CheckpointError(
            f"no checkpoint in {workdir!r} could be read ({_failures(failures)}); nothing was "
            "moved or changed."
        )
    if meta.get("signature") not in (None, state_lib.signature(abstract)):
        raise ConfigError(
            f"the checkpoints in {workdir!r} hold a model of another shape than its "
            "config.json describes (was config.json replaced?); restore the run's own "
            "config.json (results.json keeps a copy)."
        )
    if which == "best":
        best = meta.get("best_step")  # None: no evaluation yet, the latest is used
        if best is not None:
            state, _, step = ckpts.restore_best(best, abstract)
            return Trained(config, task, optim.eval_params(state), step)
    elif isinstance(which, int):
        if which not in steps:
            raise ConfigError(f"{workdir!r} has no checkpoint {which}; it has {steps}.")
        step = which
    for _ in range(3):  # the latest may be pruned by a live run between listing and reading
        try:
            state, _ = ckpts.restore(step, abstract)
            return Trained(config, task, optim.eval_params(state), step)
        except Exception as e:  # noqa: BLE001 - unreadable, unless the step is gone
            failures.append((step, e))
            ckpts.manager.reload()
            if which != "latest" or step in ckpts.steps() or not ckpts.steps():
                raise CheckpointError(
                    f"checkpoint step {step} in {workdir!r} could not be read "
                    f"({_failures(failures[-1:])}); nothing was moved or changed."
                ) from None
            step = ckpts.steps()[-1]
    raise CheckpointError(f"the checkpoints in {workdir!r} kept changing while read.")


def _newest_meta(ckpts: Checkpoints, steps: list[int], failures: list) -> dict | None:
    """The meta of the newest checkpoint whose meta can be read (None when none can; the
    failed reads are added to `failures`)."""
    for step in reversed(steps):
        try:
            return ckpts.read_meta(step)
        except Exception as e:  # noqa: BLE001 - an unreadable newest checkpoint: ask an older one
            failures.append((step, e))
    return None
