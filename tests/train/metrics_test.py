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


def test_speeds_and_eta_leave_out_compilation_and_evaluation(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(metrics.time, "time", lambda: now[0])
    c = metrics.Console(100, 0, stream=io.StringIO())
    now[0] += 30.0  # compilation + the first step
    c.restart_clock(1)
    now[0] += 9.0  # steps 2..10: 1 step/s
    c.exclude(5.0)  # an evaluation on top
    now[0] += 5.0
    rates = c.rates(10, tokens=100.0, steps_in_tokens=10)
    assert rates["steps_per_sec"] == 1.0  # 9 steps in the 9 s that were training
    assert rates["eta"] == 90.0  # 90 steps left at 1 step/s (not at 10 steps per 44 s)
    assert rates["tokens_per_sec"] == 10.0  # 10 tokens per step x 1 step/s
    assert rates["elapsed"] == 44.0  # wall time since the start, everything included


def test_objective_is_shown_only_where_it_differs_from_the_loss():
    out = io.StringIO()
    c = metrics.Console(10, 0, stream=out)
    c.log(1, "train", {"loss": 1.25, "objective": 1.25})
    c.log(2, "train", {"loss": 1.25, "objective": 43.75})
    first, second = out.getvalue().splitlines()
    assert "objective" not in first and "objective 43.75" in second
