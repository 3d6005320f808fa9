"""experiments/records.py: result files are written atomically, never replaced silently."""

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


def test_replace_section_only_between_markers():
    text = "# T\nbefore\n<!-- section:forecast -->\nold\n<!-- /section:forecast -->\nafter\n"
    new = records.replace_section(text, "NEW BODY\n", "forecast")
    assert new == (
        "# T\nbefore\n<!-- section:forecast -->\nNEW BODY\n<!-- /section:forecast -->\nafter\n"
    )
    assert records.replace_section(new, "NEW BODY", "forecast") == new  # idempotent
    with pytest.raises(ValueError, match="markers"):
        records.replace_section("no markers", "x", "forecast")
    with pytest.raises(ValueError, match="markers"):
        records.replace_section(text, "x", "lm")


def test_portable_path_is_relative_inside_the_repository():
    import os

    inside = os.path.join(records.ROOT, "workdirs", "run")
    assert records.portable_path(inside) == os.path.join("workdirs", "run")
    assert records.portable_path("/elsewhere/run") == "/elsewhere/run"


def test_update_docstring_results_replaces_only_the_block(tmp_path):
    path = tmp_path / "config.py"
    path.write_text('"""Doc.\n\n[results]\nold\n[/results]\n\nTail.\n"""\nX = 1\n')
    assert records.update_docstring_results(str(path), "new 1\nnew 2\n")
    expected = '"""Doc.\n\n[results]\nnew 1\nnew 2\n[/results]\n\nTail.\n"""\nX = 1\n'
    assert path.read_text() == expected
    assert not records.update_docstring_results(str(path), "new 1\nnew 2")  # unchanged
    (tmp_path / "bare.py").write_text('"""No block."""\n')
    with pytest.raises(ValueError, match="no \\[results\\]"):
        records.update_docstring_results(str(tmp_path / "bare.py"), "x")
