"""metrics.jsonl semantics (full precision, truncation on resume), TensorBoard, console."""

from __future__ import annotations

import glob
import io
import json
import os

from train import metrics


def test_events_full_precision_and_tensorboard(tmp_path):
    w = metrics.Writer(str(tmp_path), start_step=0)
    value = 0.1234567890123456789
    w.write(5, "train", {"loss": value, "nan": float("nan")})
    w.write(9, "test", {"loss": 2.0}, final=True, checkpoint_step=5)
    w.close()
    events = metrics.read_events(str(tmp_path))
    assert events[0] == {"step": 5, "split": "train", "loss": value, "nan": "nan"}
    assert events[1]["final"] is True and events[1]["checkpoint_step"] == 5
    assert glob.glob(os.path.join(tmp_path, "tensorboard", "events.out.tfevents.*"))


def test_truncate_drops_later_final_and_torn_events(tmp_path):
    path = tmp_path / metrics.FILE
    lines = [{"step": s, "split": "train", "loss": s} for s in (10, 20, 30)]
    lines.append({"step": 30, "split": "test", "final": True, "loss": 1})
    path.write_text("".join(json.dumps(e) + "\n" for e in lines) + '{"step": 40, "spl')
    metrics.truncate_events(str(tmp_path), 20)
    assert [e["step"] for e in metrics.read_events(str(tmp_path))] == [10, 20]
    # A Writer starting at a restored step does the same, then appends.
    w = metrics.Writer(str(tmp_path), start_step=10)
    w.write(11, "train", {"loss": 0.5})
    w.close()
    assert [e["step"] for e in metrics.read_events(str(tmp_path))] == [10, 11]


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_console_lines_and_progress_bar():
    plain = io.StringIO()
    c = metrics.Console(100, 0, stream=plain)
    c.progress(10)
    c.log(10, "train", {"loss": 1.5, "accuracy": 0.25}, c.rates(10, 500.0))
    text = plain.getvalue()
    assert "step 10/100" in text and "loss 1.5000" in text and "steps/s" in text
    assert "tokens/s" in text and "ETA" in text and "\r" not in text
    tty = _Tty()
    c = metrics.Console(100, 0, stream=tty)
    c.progress(50)
    assert "\r[" in tty.getvalue() and "50/100" in tty.getvalue()
