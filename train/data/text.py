"""Text corpora for language modelling: reading, vocabulary, and the truncated-BPTT layout.

A corpus is read once into int32 id arrays, one per split:

* a directory holding one file each whose name contains 'train', 'valid' and 'test' (Mikolov's
  Penn Treebank: `data/ptb/ptb.{train,valid,test}.txt.gz`), or
* one text file split by position: the first (1 - valid - test) fraction trains, then valid,
  then test; with test_fraction 0 the test split *is* the validation split (Tiny Shakespeare's
  usual 90% / 10%).

Files may be gzip-compressed (`.gz`). Files bundled under `data/` are checked against
`data/SHA256SUMS` when read. Word level splits each line on whitespace and ends it
with one '<eos>' (Mikolov / Zaremba); char level keeps every character, newlines included.

The vocabulary comes from the training split only: words by descending count then alphabetically
(TensorFlow's PTB reader), characters in sorted order. Tokens of valid/test unseen in training map
to '<unk>', which is added to the vocabulary only when such tokens exist (PTB already has it).

Training layout (Zaremba et al. 2014; TF `ptb_producer`): the train ids are cut into batch_size
parallel streams, ids_BxL = ids[:B * L].reshape(B, L) with L = N // B, and epoch e's step i is the
window inputs = ids_BxL[:, i*T:(i+1)*T], targets = ids_BxL[:, i*T+1:(i+1)*T+1], for
i < (L - 1) // T. Row b of consecutive windows is one contiguous stretch of text, so the carry
can pass from one window to the next; 'reset' is True on each epoch's first window.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import pathlib
from collections.abc import Iterator

import numpy as np

from train.data import base
from train.errors import ConfigError

EOS = "<eos>"
UNK = "<unk>"
LEVELS = ("word", "char")
SPLITS = ("train", "valid", "test")


# -- files ------------------------------------------------------------------------------------
def read_text(path: pathlib.Path) -> str:
    """The file's text (see `train.data.base.read_text`: gunzipped, checksum-verified, UTF-8)."""
    return base.read_text(path)


def tokenize(text: str, level: str) -> list[str]:
    """Word level: whitespace-split tokens with one '<eos>' per line. Char level: characters."""
    if level == "char":
        return list(text)
    tokens = []
    for line in text.splitlines():
        tokens.extend(line.split())
        tokens.append(EOS)
    return tokens


# -- vocabulary -------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Vocab:
    """A bijection between tokens and ids 0..V-1."""

    tokens: tuple[str, ...]

    @functools.cached_property
    def index(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def build(cls, tokens: list[str], level: str) -> Vocab:
        counts = collections.Counter(tokens)
        if level == "char":
            return cls(tuple(sorted(counts)))
        return cls(tuple(sorted(counts, key=lambda t: (-counts[t], t))))

    def encode(self, tokens: list[str]) -> np.ndarray:
        """int32 ids; tokens outside the vocabulary map to '<unk>' (KeyError when it has none)."""
        index = self.index
        unk = index.get(UNK)
        if unk is None:
            return np.array([index[t] for t in tokens], np.int32)
        return np.array([index.get(t, unk) for t in tokens], np.int32)

    def decode(self, ids, level: str) -> str:
        words = [self.tokens[int(i)] for i in ids]
        if level == "char":
            return "".join(words)
        return " ".join(words).replace(f" {EOS} ", "\n").replace(EOS, "\n")


# -- corpus -----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Corpus:
    """A tokenised corpus: the vocabulary and one int32 id array per split."""

    vocab: Vocab
    level: str
    splits: dict[str, np.ndarray]
    source: str


def _split_files(directory: pathlib.Path) -> dict[str, pathlib.Path]:
    files = {}
    for split in SPLITS:
        found = sorted(p for p in directory.iterdir() if p.is_file() and split in p.name)
        if len(found) != 1:
            raise ConfigError(
                f"config.data.path: directory {str(directory)!r} must hold exactly one file whose "
                f"name contains {split!r}, found {[p.name for p in found]}."
            )
        files[split] = found[0]
    return files


def _split_tokens(tokens, valid_fraction: float, test_fraction: float, path) -> dict:
    n = len(tokens)
    n_test = int(n * test_fraction)
    n_valid = int(n * valid_fraction)
    n_train = n - n_valid - n_test
    parts = {"train": tokens[:n_train], "valid": tokens[n_train : n_train + n_valid]}
    parts["test"] = tokens[n_train + n_valid :] if test_fraction > 0 else parts["valid"]
    for split, part in parts.items():
        if len(part) < 2:
            raise ConfigError(
                f"config.data.path: {str(path)!r} has {n} tokens, too few for a {split} split "
                f"(valid_fraction={valid_fraction}, test_fraction={test_fraction})."
            )
    return parts


@functools.lru_cache(maxsize=4)
def load_corpus(
    path: str, level: str, valid_fraction: float = 0.1, test_fraction: float = 0.0
) -> Corpus:
    """Reads and tokenises a corpus (see the module docstring). Cached per arguments."""
    if level not in LEVELS:
        raise ConfigError(f"config.data.level must be one of {LEVELS}, got {level!r}.")
    p = base.resolve_path(path)
    if p.is_dir():
        files = _split_files(p)
        parts = {s: tokenize(read_text(f), level) for s, f in files.items()}
    elif p.is_file():
        if not (0.0 < valid_fraction < 1.0 and 0.0 <= test_fraction < 1.0 - valid_fraction):
            raise ConfigError(
                "config.data.valid_fraction must lie in (0, 1) and test_fraction in "
                f"[0, 1 - valid_fraction), got {valid_fraction} and {test_fraction}."
            )
        parts = _split_tokens(tokenize(read_text(p), level), valid_fraction, test_fraction, p)
    else:
        raise ConfigError(f"config.data.path: no such file or directory {path!r}.")
    vocab = Vocab.build(parts["train"], level)
    train_types = set(vocab.tokens)
    if UNK not in train_types and any(
        t not in train_types for s in ("valid", "test") for t in parts[s]
    ):
        vocab = Vocab(vocab.tokens + (UNK,))
    splits = {s: vocab.encode(toks) for s, toks in parts.items()}
    return Corpus(vocab=vocab, level=level, splits=splits, source=str(p))


# -- the truncated-BPTT layout ----------------------------------------------------------------
def stream_layout(ids: np.ndarray, batch_size: int) -> np.ndarray:
    """ids [N] -> ids_BxL [B, N // B]: batch_size parallel streams; the N % B tail is dropped."""
    length = len(ids) // batch_size
    return ids[: batch_size * length].reshape(batch_size, length)


def windows_per_epoch(num_tokens: int, batch_size: int, seq_len: int) -> int:
    return (num_tokens // batch_size - 1) // seq_len


class WindowIterator(base.DataIterator):
    """Endless training windows over the parallel streams, epoch after epoch.

    Each batch: 'inputs' and 'targets' [B, T] int32, 'reset' [B] bool (True on an epoch's
    first window). The position {'epoch', 'step'} is saved in checkpoints.
    """

    def __init__(self, ids: np.ndarray, batch_size: int, seq_len: int):
        self.ids_BxL = stream_layout(ids, batch_size)
        self.seq_len = seq_len
        self.steps_per_epoch = windows_per_epoch(len(ids), batch_size, seq_len)
        if self.steps_per_epoch < 1:
            raise ConfigError(
                f"config.train.batch_size={batch_size} x config.train.seq_len={seq_len} needs "
                f"more than the {len(ids)} training tokens; lower one of them."
            )
        self.epoch, self.step = 0, 0

    def __next__(self):
        t, i = self.seq_len, self.step
        window = self.ids_BxL[:, i * t : (i + 1) * t + 1]
        batch = {
            "inputs": window[:, :-1],
            "targets": window[:, 1:],
            "reset": np.full((self.ids_BxL.shape[0],), i == 0),
        }
        self.step += 1
        if self.step == self.steps_per_epoch:
            self.epoch, self.step = self.epoch + 1, 0
        return batch

    def get_state(self) -> dict[str, int]:
        return {"epoch": int(self.epoch), "step": int(self.step)}

    def set_state(self, state: dict[str, int]) -> None:
        step = int(state["step"])
        if not 0 <= step < self.steps_per_epoch:
            raise ValueError(f"WindowIterator: step {step} outside [0, {self.steps_per_epoch}).")
        self.epoch, self.step = int(state["epoch"]), step


def eval_windows(ids: np.ndarray, batch_size: int, seq_len: int) -> Iterator[dict]:
    """One pass over all B * (L - 1) targets of the stream layout, in consecutive windows.

    The last window is padded to seq_len with 'mask' 0 so every batch has the same shape;
    'mask' [B, T] float32 is 1 on real targets. With batch_size 1 every token but the first is
    predicted (the whole split); with B > 1 the N % B tail and each stream's first token are not.
    """
    ids_BxL = stream_layout(ids, batch_size)
    b, length = ids_BxL.shape
    if length < 2:
        raise ConfigError(
            f"config.eval.batch_size={batch_size} is too large for a split of {len(ids)} tokens."
        )
    for start in range(0, length - 1, seq_len):
        stop = min(start + seq_len, length - 1)
        n = stop - start
        inputs = np.zeros((b, seq_len), np.int32)
        targets = np.zeros((b, seq_len), np.int32)
        mask = np.zeros((b, seq_len), np.float32)
        inputs[:, :n] = ids_BxL[:, start:stop]
        targets[:, :n] = ids_BxL[:, start + 1 : stop + 1]
        mask[:, :n] = 1.0
        yield {
            "inputs": inputs,
            "targets": targets,
            "mask": mask,
            "reset": np.full((b,), start == 0),
        }


class RandomWindowIterator(base.DataIterator):
    """Endless training windows at random offsets (nanoGPT's `get_batch`).

    Batch k: for each row an offset o uniform in [0, N - T) (with replacement), inputs
    ids[o : o + T] and targets ids[o + 1 : o + T + 1]; 'reset' all True (a window carries
    nothing from the one before). The offsets come from a generator seeded with (seed, k), so
    the position is k alone and a resumed run draws the same windows.
    """

    def __init__(self, ids: np.ndarray, batch_size: int, seq_len: int, seed: int):
        if len(ids) <= seq_len:
            raise ConfigError(
                f"config.train.seq_len={seq_len} needs more than the {len(ids)} training tokens."
            )
        self.ids, self.batch_size, self.seq_len, self.seed = ids, batch_size, seq_len, seed
        self.step = 0

    def offsets(self, step: int) -> np.ndarray:
        """The B window offsets of batch `step`."""
        rng = np.random.default_rng([self.seed, step])
        return rng.integers(0, len(self.ids) - self.seq_len, size=self.batch_size)

    def __next__(self):
        rows_BxT1 = np.stack([self.ids[o : o + self.seq_len + 1] for o in self.offsets(self.step)])
        self.step += 1
        return {
            "inputs": rows_BxT1[:, :-1],
            "targets": rows_BxT1[:, 1:],
            "reset": np.ones((self.batch_size,), bool),
        }

    def get_state(self) -> dict[str, int]:
        return {"step": int(self.step)}

    def set_state(self, state: dict[str, int]) -> None:
        step = int(state["step"])
        if step < 0:
            raise ValueError(f"RandomWindowIterator: step {step} < 0.")
        self.step = step


def fixed_windows(ids: np.ndarray, batch_size: int, window: int) -> Iterator[dict]:
    """Every non-overlapping window of `window` targets, each scored from inside itself.

    Window j (j < (N - 1) // window) has inputs ids[j W : (j + 1) W] and targets
    ids[j W + 1 : (j + 1) W + 1]: every token but the first is a target once, predicted from the
    tokens of its own window only (no carried state; 'reset' True). The (N - 1) % W targets of
    the last partial window are not scored, so every model sees the same windows. Windows come
    batch_size at a time; the last batch is padded with rows of 'mask' 0.
    """
    count = (len(ids) - 1) // window
    if count < 1:
        raise ConfigError(
            f"config.data.eval_window={window} is longer than the split ({len(ids)} tokens)."
        )
    for start in range(0, count, batch_size):
        rows = range(start, min(start + batch_size, count))
        inputs = np.zeros((batch_size, window), np.int32)
        targets = np.zeros((batch_size, window), np.int32)
        mask = np.zeros((batch_size, window), np.float32)
        for i, j in enumerate(rows):
            inputs[i] = ids[j * window : (j + 1) * window]
            targets[i] = ids[j * window + 1 : (j + 1) * window + 1]
            mask[i] = 1.0
        yield {
            "inputs": inputs,
            "targets": targets,
            "mask": mask,
            "reset": np.ones((batch_size,), bool),
        }
