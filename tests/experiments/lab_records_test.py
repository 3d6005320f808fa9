"""experiments/lab/records.py: result files are written atomically, never replaced silently, and
never recorded into a study's committed results from a tree with uncommitted changes."""

import json

import pytest

from experiments.lab import records
from train import metrics


def test_write_refuses_to_replace_unless_asked(tmp_path):
    path = str(tmp_path / "sub" / "run.json")
    records.write(path, {"a": 1})
    assert records.read(path) == {"a": 1}
    with pytest.raises(FileExistsError, match="--force"):
        records.write(path, {"a": 2})
    assert records.read(path) == {"a": 1}
    records.write(path, {"a": 2}, overwrite=True)
    assert records.read(path) == {"a": 2}
    assert not (tmp_path / "sub" / "run.json.tmp").exists()


def test_load_all_by_prefix(tmp_path):
    for name in ("ptb_small_lstm", "adding_100_gru", "ptb_small_gru"):
        (tmp_path / f"{name}.json").write_text(json.dumps({"name": name}))
    assert list(records.load_all(str(tmp_path))) == [
        "adding_100_gru",
        "ptb_small_gru",
        "ptb_small_lstm",
    ]
    assert list(records.load_all(str(tmp_path), ("ptb_",))) == ["ptb_small_gru", "ptb_small_lstm"]


def test_valid_curve_reads_metrics_jsonl(tmp_path):
    events = [
        {"step": 10, "split": "train", "loss": 3.0},
        {"step": 10, "split": "valid", "loss": 2.5, "perplexity": 12.2},
        {"step": 20, "split": "valid", "loss": 2.0, "perplexity": 7.4},
        {"step": 20, "split": "valid", "loss": 2.0, "final": True},
    ]
    (tmp_path / metrics.FILE).write_text("".join(json.dumps(e) + "\n" for e in events))
    assert records.valid_curve(str(tmp_path)) == [
        {"step": 10, "loss": 2.5, "perplexity": 12.2},
        {"step": 20, "loss": 2.0, "perplexity": 7.4},
    ]
    assert records.valid_curve(str(tmp_path), ("perplexity",)) == [
        {"step": 10, "perplexity": 12.2},
        {"step": 20, "perplexity": 7.4},
    ]


def test_portable_path_is_relative_inside_the_repository():
    import os

    inside = os.path.join(records.ROOT, "workdirs", "run")
    assert records.portable_path(inside) == os.path.join("workdirs", "run")
    assert records.portable_path("/elsewhere/run") == "/elsewhere/run"


def test_a_record_from_a_dirty_tree_is_refused_in_committed_results(tmp_path, monkeypatch):
    study_results = tmp_path / "studies" / "s" / "results"
    monkeypatch.setattr(records, "STUDIES_DIR", str(tmp_path / "studies"))
    path = str(study_results / "run.json")
    assert records.is_committed(path) and not records.is_committed(str(tmp_path / "run.json"))
    dirty = {"git_commit": "abc", "git_dirty": True}
    with pytest.raises(records.DirtyTreeError, match="uncommitted changes .* --force"):
        records.write(path, dirty)
    records.write(str(tmp_path / "elsewhere.json"), dirty)  # a rerun elsewhere is fine
    records.write(path, dirty, allow_dirty=True)
    records.write(path, {"git_dirty": False}, overwrite=True)
    assert records.read(path) == {"git_dirty": False}


def test_provenance_says_commit_dirty_hardware_and_command():
    assert {"git_commit", "git_dirty", "hardware", "date", "command"} <= set(records.provenance())
