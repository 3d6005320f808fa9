"""Tests for train/data/text.py: real corpus counts, vocabulary, stream layout, windows, resume."""

import gzip
import shutil

import jax
import numpy as np
import pytest

from train import errors
from train.data import base as data_base
from train.data import text, timeseries

jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture(scope="module")
def ptb():
    return text.load_corpus("data/ptb", "word")


def test_ptb_counts_match_the_published_ones(ptb):
    assert len(ptb.vocab) == 10_000
    assert {s: len(ids) for s, ids in ptb.splits.items()} == {
        "train": 929_589,
        "valid": 73_760,
        "test": 82_430,
    }
    assert "<unk>" in ptb.vocab.index and "<eos>" in ptb.vocab.index
    # One <eos> per line: 42,068 lines in train.
    assert int(np.sum(ptb.splits["train"] == ptb.vocab.index["<eos>"])) == 42_068
    first = ptb.vocab.decode(ptb.splits["train"][:3], "word")
    assert first == "aer banknote berlitz"


def test_tinyshakespeare_char_split():
    c = text.load_corpus("data/tinyshakespeare/input.txt.gz", "char", 0.1, 0.0)
    assert len(c.vocab) == 65
    n_train, n_valid = len(c.splits["train"]), len(c.splits["valid"])
    assert n_train + n_valid == 1_115_394
    assert n_valid == int(1_115_394 * 0.1)
    np.testing.assert_array_equal(c.splits["test"], c.splits["valid"])  # test = valid
    assert c.vocab.decode(c.splits["train"][:14], "char") == "First Citizen:"


def test_user_word_file_splits_and_unk(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("a b a\nb c\n" * 8 + "a zz\n")
    c = text.load_corpus(str(path), "word", 0.2, 0.1)
    n = sum(len(v) for k, v in c.splits.items())
    assert n == 8 * 7 + 3  # tokens incl. one <eos> per line
    # 'zz' only occurs in the test split: it maps to '<unk>', added to the vocabulary.
    assert c.vocab.tokens[-1] == "<unk>"
    assert c.vocab.decode(c.splits["test"][-3:], "word").split() == ["a", "<unk>"]
    # Word vocabulary order: by count, then alphabetically.
    assert c.vocab.tokens[:2] == ("<eos>", "a") or c.vocab.tokens[:2] == ("a", "<eos>")


def test_gzip_and_plain_give_the_same_corpus(tmp_path):
    src = data_base.DATA_DIR / "tinyshakespeare" / "input.txt.gz"
    plain = tmp_path / "plain.txt"
    plain.write_bytes(gzip.decompress(src.read_bytes())[:5000])
    gz = tmp_path / "plain.txt.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    a = text.load_corpus(str(plain), "char")
    b = text.load_corpus(str(gz), "char")
    assert a.vocab == b.vocab
    np.testing.assert_array_equal(a.splits["train"], b.splits["train"])


@pytest.mark.parametrize(
    "name, read",
    [
        ("ptb/ptb.valid.txt.gz", text.read_text),
        ("ett/ETTh1.csv.gz", lambda path: timeseries.read_csv(str(path))),
    ],
)
def test_bundled_checksum_is_verified(tmp_path, monkeypatch, name, read):
    data = tmp_path / "data"
    shutil.copy(data_base.DATA_DIR / "SHA256SUMS", tmp_path / "SHA256SUMS")
    (data / name).parent.mkdir(parents=True)
    shutil.move(tmp_path / "SHA256SUMS", data / "SHA256SUMS")
    bad = data / name
    bad.write_bytes(gzip.compress(b"date,OT\n2020-01-01,1.0\n"))
    monkeypatch.setattr(data_base, "DATA_DIR", data)
    data_base._bundled_checksums.cache_clear()
    try:
        with pytest.raises(errors.ConfigError, match="SHA256SUMS"):
            read(bad)
    finally:
        data_base._bundled_checksums.cache_clear()


def test_missing_path_is_a_config_error():
    with pytest.raises(errors.ConfigError, match="config.data.path"):
        text.load_corpus("no/such/file.txt", "word")
    with pytest.raises(errors.ConfigError, match="config.data.level"):
        text.load_corpus("data/ptb", "byte")


def test_stream_layout_and_windows():
    ids = np.arange(103, dtype=np.int32)
    it = text.WindowIterator(ids, batch_size=4, seq_len=5)
    # L = 103 // 4 = 25 per stream; (25 - 1) // 5 = 4 windows per epoch.
    assert it.steps_per_epoch == 4
    batches = [next(it) for _ in range(5)]
    np.testing.assert_array_equal(batches[0]["inputs"][:, 0], [0, 25, 50, 75])
    np.testing.assert_array_equal(batches[0]["inputs"][1], np.arange(25, 30))
    np.testing.assert_array_equal(batches[0]["targets"][1], np.arange(26, 31))
    # Carry continuity: each row of window i+1 continues the same row of window i.
    for a, b in zip(batches[:3], batches[1:4], strict=True):
        np.testing.assert_array_equal(b["inputs"][:, 0], a["inputs"][:, -1] + 1)
    assert [bool(b["reset"].all()) for b in batches] == [True, False, False, False, True]
    assert [bool(b["reset"].any()) for b in batches] == [True, False, False, False, True]
    np.testing.assert_array_equal(batches[4]["inputs"], batches[0]["inputs"])  # epoch 2
    assert it.get_state() == {"epoch": 1, "step": 1}


def test_resume_mid_epoch_gives_the_same_next_batch(ptb):
    it = text.WindowIterator(ptb.splits["train"], 20, 20)
    for _ in range(7):
        next(it)
    state = it.get_state()
    expected = next(it)
    resumed = text.WindowIterator(ptb.splits["train"], 20, 20)
    resumed.set_state(state)
    got = next(resumed)
    for k in expected:
        np.testing.assert_array_equal(got[k], expected[k])
    assert text.windows_per_epoch(929_589, 20, 20) == 2323
    with pytest.raises(ValueError):
        resumed.set_state({"epoch": 0, "step": 2323})


def test_eval_windows_cover_every_target_once():
    ids = np.arange(23, dtype=np.int32)
    batches = list(text.eval_windows(ids, batch_size=1, seq_len=5))
    # 22 targets in windows of 5: 5 windows, the last padded with 3 masked positions.
    assert len(batches) == 5
    targets = np.concatenate([b["targets"][0][b["mask"][0] > 0] for b in batches])
    np.testing.assert_array_equal(targets, np.arange(1, 23))
    assert batches[-1]["mask"].sum() == 2
    assert [bool(b["reset"][0]) for b in batches] == [True] + [False] * 4
    two = list(text.eval_windows(ids, batch_size=2, seq_len=4))
    # 2 streams of 11; 10 targets each.
    assert sum(float(b["mask"].sum()) for b in two) == 20
    with pytest.raises(errors.ConfigError, match="config.train.batch_size"):
        text.WindowIterator(ids, batch_size=4, seq_len=10)
