"""Where metrics go: DIR/metrics.jsonl, TensorBoard event files, and the console.

metrics.jsonl holds one JSON object per event:

    {"step": 200, "split": "train", "loss": 1.2345678901, "accuracy": 0.5, "lr": 0.01, ...}
    {"step": 300, "split": "test", "final": true, "checkpoint_step": 200, "loss": ...}

Values are written at full float precision and contain nothing time-dependent, so a resumed run
writes exactly the lines an uninterrupted one would. On start the file is cut back to the events
of steps <= the restored checkpoint's step (dropping 'final' events and a torn last line): events
a killed run wrote after its last checkpoint are redone, never duplicated. TensorBoard is told
the same with `purge_step`. Timing (steps/s, tokens/s, ETA) goes to the console and TensorBoard.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time

FILE = "metrics.jsonl"


def _number(x):
    x = float(x)
    return x if math.isfinite(x) else str(x)


def read_events(workdir: str) -> list[dict]:
    """All complete events of DIR/metrics.jsonl (torn or garbled lines are skipped)."""
    path = os.path.join(workdir, FILE)
    if not os.path.exists(path):
        return []
    events = []
    with open(path, "rb") as f:  # bytes: garbage after a crash must not stop the reading
        for line in f:
            try:
                event = json.loads(line.decode("utf-8", errors="replace"))
            except json.JSONDecodeError:
                continue
            if isinstance(event, dict) and "step" in event:
                events.append(event)
    return events


def truncate_events(workdir: str, step: int) -> None:
    """Keeps only the (non-final) events of steps <= `step`; atomic."""
    path = os.path.join(workdir, FILE)
    if not os.path.exists(path):
        return
    kept = [e for e in read_events(workdir) if e.get("step", 0) <= step and not e.get("final")]
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        for e in kept:
            f.write(json.dumps(e) + "\n")
    os.replace(tmp, path)


def _import_summary_writer():
    """tensorboardX's SummaryWriter, or None when tensorboardX is not installed.

    tensorboardX imports torch when it can (only to accept torch tensors), which costs seconds
    at start-up; we pass it floats, so torch is hidden from that one import.
    """
    hide = "torch" not in sys.modules
    if hide:
        sys.modules["torch"] = None  # makes `import torch` raise ImportError, which it handles
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        return None
    finally:
        if hide:
            del sys.modules["torch"]
    return SummaryWriter


class Writer:
    """Writes events to metrics.jsonl and TensorBoard (process 0 only; others are no-ops)."""

    def __init__(self, workdir: str, start_step: int, enabled: bool = True):
        self.enabled = enabled
        self._jsonl = None
        self._tb = None
        if not enabled:
            return
        truncate_events(workdir, start_step)
        self._jsonl = open(os.path.join(workdir, FILE), "a")
        SummaryWriter = _import_summary_writer()
        if SummaryWriter is not None:
            self._tb = SummaryWriter(
                os.path.join(workdir, "tensorboard"), purge_step=start_step + 1, flush_secs=30
            )

    def write(self, step: int, split: str, metrics: dict, **extra) -> None:
        """One event; `extra` holds non-metric fields (e.g. final=True, checkpoint_step)."""
        if not self.enabled:
            return
        event = {"step": int(step), "split": split, **extra}
        event.update({k: _number(v) for k, v in metrics.items()})
        self._jsonl.write(json.dumps(event) + "\n")
        self._jsonl.flush()
        if self._tb is not None:
            prefix = f"final_{split}" if extra.get("final") else split
            for k, v in metrics.items():
                self._tb.add_scalar(f"{prefix}/{k}", float(v), int(step))

    def scalars(self, step: int, values: dict) -> None:
        """TensorBoard-only scalars (timings)."""
        if self._tb is not None:
            for k, v in values.items():
                self._tb.add_scalar(k, float(v), int(step))

    def close(self) -> None:
        if self._jsonl is not None:
            self._jsonl.close()
        if self._tb is not None:
            self._tb.close()


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Console:
    """Log lines at log_every and, on an interactive terminal, a one-line progress bar."""

    def __init__(self, num_steps: int, start_step: int, enabled: bool = True, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.interactive = enabled and self.stream.isatty()
        self.num_steps = num_steps
        self.start_time = time.time()
        self._mark = (start_step, self.start_time, 0.0)  # (step, time, tokens) of last log
        self._first = start_step  # speeds and ETA count from this step and this time on
        self._clock_start = self.start_time
        self._excluded = 0.0  # seconds of evaluation and checkpointing since _clock_start
        self._bar_time = 0.0

    def rates(self, step: int, tokens: float, steps_in_tokens: int | None = None) -> dict:
        """steps/s and tokens/s since the last call, elapsed and ETA.

        Compilation (`restart_clock`) and evaluation/checkpointing (`exclude`) are left out of
        the speeds and the ETA; `tokens` counts `steps_in_tokens` steps (default: the steps
        since the last call), so tokens/s = tokens per step x steps/s.
        """
        now = time.time()
        last_step, last_time, _ = self._mark
        dt = max(now - last_time, 1e-9)
        steps_per_sec = (step - last_step) / dt
        busy = max(now - self._clock_start - self._excluded, 1e-9)
        overall = (step - self._first) / busy
        eta = (self.num_steps - step) / overall if overall > 0 else float("inf")
        self._mark = (step, now, 0.0)
        counted = steps_in_tokens or max(step - last_step, 1)
        return {
            "steps_per_sec": steps_per_sec,
            "tokens_per_sec": tokens / counted * steps_per_sec,
            "elapsed": now - self.start_time,
            "eta": eta,
        }

    def exclude(self, seconds: float) -> None:
        """Leaves `seconds` (evaluation, checkpointing) out of the speeds and the ETA."""
        step, t, tokens = self._mark
        self._mark = (step, t + seconds, tokens)
        self._excluded += seconds

    def restart_clock(self, step: int) -> None:
        """Measures speeds from now and `step` on (after compilation and the first step)."""
        now = time.time()
        self._mark = (step, now, 0.0)
        self._first, self._clock_start, self._excluded = step, now, 0.0

    def log(self, step: int, split: str, metrics: dict, rates: dict | None = None) -> None:
        if not self.enabled:
            return
        metrics = dict(metrics)
        # The objective (what is differentiated) is shown only where it differs from the loss
        # (the banner says what it is); metrics.jsonl always records both.
        objective, loss = metrics.get("objective"), metrics.get("loss")
        if (
            objective is not None
            and loss is not None
            and math.isclose(objective, loss, rel_tol=1e-6)
        ):
            del metrics["objective"]
        parts = [f"step {step}/{self.num_steps}", split]
        parts += [f"{k} {v:.4f}" for k, v in metrics.items() if k in ("loss", "perplexity")]
        parts += [f"{k} {v:.4g}" for k, v in metrics.items() if k not in ("loss", "perplexity")]
        if rates:
            parts.append(f"{rates['steps_per_sec']:.2f} steps/s")
            if rates["tokens_per_sec"] > 0:
                parts.append(f"{rates['tokens_per_sec']:.0f} tokens/s")
            parts.append(f"elapsed {_clock(rates['elapsed'])} ETA {_clock(rates['eta'])}")
        self.line(" | ".join(parts))

    def line(self, text: str) -> None:
        if not self.enabled:
            return
        if self.interactive:
            self.stream.write("\r\033[K")
        self.stream.write(time.strftime("%H:%M:%S ") + text + "\n")
        self.stream.flush()

    def progress(self, step: int) -> None:
        """Redraws the progress bar (interactive consoles only, at most 5 times a second)."""
        now = time.time()
        if not self.interactive or now - self._bar_time < 0.2:
            return
        self._bar_time = now
        frac = step / max(self.num_steps, 1)
        done = int(30 * frac)
        rate = (step - self._first) / max(now - self._clock_start - self._excluded, 1e-9)
        eta = (self.num_steps - step) / rate if rate > 0 else float("inf")
        bar = "#" * done + "-" * (30 - done)
        self.stream.write(
            f"\r[{bar}] {step}/{self.num_steps} {100 * frac:.0f}% {rate:.1f} it/s ETA {_clock(eta)}"
        )
        self.stream.flush()

    def close(self) -> None:
        if self.interactive:
            self.stream.write("\r\033[K")
            self.stream.flush()
