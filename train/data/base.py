"""What every data pipeline shares: where data paths resolve, bundled-file checksums, the
resumable training-iterator interface and padded evaluation batches.

This module is below the tasks: `train/tasks/` imports it, never the other way round.
"""

from __future__ import annotations

import abc
import functools
import gzip
import hashlib
import os
import pathlib
import stat
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from train.errors import ConfigError

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA_DIR = REPO_ROOT / "data"
# Where the bundled data lived before it moved to the top-level data/ (2026-12): configs recorded
# in older workdirs and result files name it, and still resolve (`resolve_path`).
_FORMER_DATA_PREFIX = "experiments/data/"

Batch = dict[str, Any]


def resolve_path(path: str) -> pathlib.Path:
    """A relative path resolves against the working directory first, then the repo root; a
    bundled file named by its former place (experiments/data/..., in configs recorded before the
    move) resolves to its place under data/."""
    p = pathlib.Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return p
    if p.as_posix().startswith(_FORMER_DATA_PREFIX) and not (REPO_ROOT / p).exists():
        return DATA_DIR / p.as_posix()[len(_FORMER_DATA_PREFIX) :]
    return REPO_ROOT / p


def check_data_path(path, directory_ok: bool = False) -> pathlib.Path:
    """`path` resolved (`resolve_path`), once it is known to be data one can read: a regular
    file, or a directory where `directory_ok` (a corpus directory).

    The one check of config.data.path for every task (`train.validate` before any task runs,
    then each loader on the file it opens). It looks at the path with stat() before opening
    anything: opening a FIFO for reading blocks until some writer appears, i.e. forever.
    Raises ConfigError, one line naming config.data.path and what would be valid.
    """
    resolved = resolve_path(str(path))
    try:
        mode = os.stat(resolved).st_mode
    except OSError:
        raise ConfigError(
            f"config.data.path: no such file or directory {str(path)!r} (relative paths resolve "
            f"against {os.getcwd()}, then the repository root)."
        ) from None
    wanted = "a file or a directory" if directory_ok else "a file"
    if stat.S_ISDIR(mode):
        if not directory_ok:
            raise ConfigError(f"config.data.path: {str(resolved)!r} is a directory; give {wanted}.")
        if not os.access(resolved, os.R_OK | os.X_OK):
            raise ConfigError(f"config.data.path: directory {str(resolved)!r} is not readable.")
        return resolved
    if not stat.S_ISREG(mode):
        raise ConfigError(
            f"config.data.path: {str(resolved)!r} is not a regular file (a pipe, device or "
            f"socket); give {wanted}."
        )
    try:
        with open(resolved, "rb") as f:  # a regular file: opening cannot block
            f.read(1)
    except OSError as e:
        raise ConfigError(
            f"config.data.path: cannot read {str(resolved)!r} ({e.strerror})."
        ) from None
    return resolved


def fingerprint(path: str) -> dict[str, str]:
    """sha256 of the data at `path` (resolved as `resolve_path`): {relative name: hex digest}
    of the file, or of every regular file under the directory (sorted), for telling whether the
    data a workdir was trained on has changed. Unreadable entries are skipped."""
    root = resolve_path(path)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    out = {}
    for file in files:
        digest = hashlib.sha256()
        try:
            with open(file, "rb") as f:
                for block in iter(lambda f=f: f.read(1 << 20), b""):
                    digest.update(block)
        except OSError:
            continue
        out[file.name if file == root else str(file.relative_to(root))] = digest.hexdigest()
    return out


@functools.cache
def _bundled_checksums() -> dict[str, str]:
    sums = {}
    sums_file = DATA_DIR / "SHA256SUMS"
    if sums_file.exists():
        for line in sums_file.read_text().splitlines():
            if line.strip():
                digest, name = line.split(maxsplit=1)
                sums[name.strip()] = digest
    return sums


def verify_checksum(path: pathlib.Path, raw: bytes) -> None:
    """Raises ConfigError when a file bundled under data/ differs from SHA256SUMS."""
    try:
        rel = pathlib.Path(path).resolve().relative_to(DATA_DIR.resolve()).as_posix()
    except ValueError:
        return  # a user's own file: nothing to check against
    expected = _bundled_checksums().get(rel)
    if expected is None:
        return
    got = hashlib.sha256(raw).hexdigest()
    if got != expected:
        raise ConfigError(
            f"data file {path}: sha256 {got} does not match data/SHA256SUMS "
            f"({expected}); restore the bundled copy (git checkout {path})."
        )


def read_text(path) -> str:
    """A data file's text: a regular file, gunzipped when it ends in .gz, checked against
    SHA256SUMS when bundled, UTF-8 (a byte-order mark is allowed and dropped).

    Raises ConfigError, one line naming the file, for a path that is not a readable regular
    file (`check_data_path`), a '.gz' that is not gzip or is cut short, and text that is not
    UTF-8.
    """
    path = check_data_path(path)
    raw = path.read_bytes()
    verify_checksum(path, raw)
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise ConfigError(
                f"config.data.path: {str(path)!r} ends in .gz but is not a complete gzip file "
                f"({e}); recompress it or drop the .gz suffix."
            ) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"config.data.path: {str(path)!r} is not UTF-8 text (byte {raw[e.start]:#04x} at "
            f"offset {e.start}); re-save it as UTF-8."
        ) from None


class DataIterator(abc.ABC, Iterator[Batch]):
    """An endless training-data iterator whose position can be saved and restored."""

    @abc.abstractmethod
    def __next__(self) -> Batch: ...

    @abc.abstractmethod
    def get_state(self) -> dict[str, int]:
        """The position, as a JSON-serialisable dict of ints."""

    @abc.abstractmethod
    def set_state(self, state: dict[str, int]) -> None:
        """Moves to a position returned by `get_state`."""


class EpochIterator(DataIterator):
    """Endless shuffled batches of `num_examples` examples: one permutation per epoch (from
    default_rng([seed, epoch])), the last partial batch dropped; fewer examples than one batch
    are sampled with replacement. `take(idx)` returns the batch dict of the examples at idx;
    every batch also carries 'weight' [B] = 1. The position is (epoch, index)."""

    def __init__(self, num_examples: int, batch_size: int, seed: int, take):
        self.num_examples, self.batch_size, self.seed, self.take = (
            num_examples, batch_size, seed, take
        )  # fmt: skip
        self.steps_per_epoch = max(1, num_examples // batch_size)
        self.epoch, self.index = 0, 0

    def __next__(self):
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.num_examples)
        lo = self.index * self.batch_size
        idx = order[lo : lo + self.batch_size]
        if len(idx) < self.batch_size:
            idx = np.resize(order, self.batch_size)
        self.index += 1
        if self.index >= self.steps_per_epoch:
            self.epoch, self.index = self.epoch + 1, 0
        return {**self.take(idx), "weight": np.ones((len(idx),), np.float32)}

    def get_state(self):
        return {"epoch": self.epoch, "index": self.index}

    def set_state(self, state):
        self.epoch, self.index = int(state["epoch"]), int(state["index"])


class SeededIterator(DataIterator):
    """Endless generated batches: batch k is make_batch(np.random.default_rng([seed, 0, k])),
    so the position is the batch counter k (tasks whose training examples are drawn fresh)."""

    def __init__(self, make_batch, seed: int):
        self.make_batch, self.seed, self.step = make_batch, seed, 0

    def __next__(self):
        batch = self.make_batch(np.random.default_rng([self.seed, 0, self.step]))
        self.step += 1
        return batch

    def get_state(self):
        return {"step": self.step}

    def set_state(self, state):
        self.step = int(state["step"])


def padded_batches(num_examples: int, batch_size: int, take) -> Iterator[Batch]:
    """Every example once, in order, in batches of exactly `batch_size` (one compiled shape).

    `take(idx)` returns the batch dict of the examples at the int array `idx`. The last batch is
    filled up with copies of its last example, and every batch carries 'weight' [B]: 1 for real
    examples, 0 for the copies (metrics are weighted sums, so the copies count for nothing).
    """
    for lo in range(0, num_examples, batch_size):
        idx = np.arange(lo, min(lo + batch_size, num_examples))
        weight = np.zeros((batch_size,), np.float32)
        weight[: len(idx)] = 1.0
        idx = np.concatenate([idx, np.full(batch_size - len(idx), idx[-1])])
        yield {**take(idx), "weight": weight}
