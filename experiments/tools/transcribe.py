r"""The digits said in a WAV file, by a trained spoken_digits or connected_digits run.

    python -m experiments.tools.transcribe --workdir=DIR --wav=FILE [--beam=8] [--which=best]
    python -m experiments.tools.transcribe --workdir=DIR --split=test [--beam=8]

With --wav (8 kHz, mono, 16-bit PCM: e.g. `sox in.wav -r 8000 -c 1 -b 16 out.wav`) it prints
the recognised digits: one digit (spoken_digits, with its probability) or a string
(connected_digits: greedy best path, or CTC prefix beam search with --beam > 0). With --split
it scores a connected_digits run's fixed valid/test strings with that decoding and prints
one JSON line: digit error rate, string accuracy, the count. Nothing is written anywhere.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
from absl import app, flags, logging

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command-line flags (defined only when run as a script, so importing is side-free)."""
    flags.DEFINE_string("workdir", None, "A spoken_digits or connected_digits workdir.")
    flags.DEFINE_string("wav", None, "An 8 kHz mono 16-bit WAV file to transcribe.")
    flags.DEFINE_string("split", None, "Score connected_digits' 'valid' or 'test' strings.")
    flags.DEFINE_integer("beam", 0, "CTC prefix beam width; 0 = greedy best path.")
    flags.DEFINE_enum("which", "best", ["best", "latest"], "Which checkpoint.")


def _features(task, audio) -> np.ndarray:
    """[1, T, F] model inputs of one waveform, as the task prepares its data."""
    return task.data.features(audio)[None]


def transcribe(workdir: str, wav: str, beam: int = 0, which: str = "best") -> dict:
    """{'digits': [...], 'probability': p (spoken_digits only)} for one WAV file."""
    import jax

    from train import checkpoint
    from train.data import speech
    from train.errors import ConfigError

    trained = checkpoint.load_trained(workdir, which)
    task = trained.task
    if task.name not in ("spoken_digits", "connected_digits"):
        raise ConfigError(
            f"--workdir {workdir!r} holds a {task.name!r} run; transcribe needs spoken_digits "
            "or connected_digits."
        )
    try:
        with open(wav, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ConfigError(f"--wav {wav!r}: {e.strerror}.") from None
    x = _features(task, speech.decode_wav(raw, wav))
    lengths = np.array([x.shape[1]], np.int32)
    if task.name == "connected_digits":
        return {"digits": task.decode(trained.params, x, lengths, beam)[0]}
    probs = jax.nn.softmax(task.logits(trained.params, x, lengths), axis=-1)[0]
    digit = int(np.argmax(probs))
    return {"digits": [digit], "probability": float(probs[digit])}


def score_split(workdir: str, split: str, beam: int = 0, which: str = "best") -> dict:
    """Digit error rate and string accuracy of a connected_digits run on its fixed strings."""
    from train import checkpoint
    from train.errors import ConfigError
    from train.tasks import ctc

    trained = checkpoint.load_trained(workdir, which)
    task = trained.task
    if task.name != "connected_digits":
        raise ConfigError(f"--split scores connected_digits runs; {workdir!r} is {task.name!r}.")
    if split not in task.data.fixed:
        raise ConfigError(f"--split must be 'valid' or 'test', got {split!r}.")
    data = task.data.fixed[split]
    edits = digits = correct = 0
    for lo in range(0, len(data["lengths"]), 100):
        sl = slice(lo, lo + 100)
        hyps = task.decode(trained.params, data["x"][sl], data["lengths"][sl], beam)
        for hyp, ref, n in zip(hyps, data["labels"][sl], data["label_lengths"][sl], strict=True):
            distance = ctc.levenshtein(hyp, list(ref[:n] - 1))
            edits, digits, correct = edits + distance, digits + n, correct + (distance == 0)
    count = len(data["lengths"])
    return {
        "workdir": workdir, "split": split, "decoding": f"beam {beam}" if beam else "greedy",
        "checkpoint_step": trained.step, "strings": count,
        "digit_error_rate": edits / max(digits, 1), "string_accuracy": correct / count,
    }  # fmt: skip


def main(argv):
    if len(argv) > 1:
        print(f"error: unexpected arguments: {' '.join(argv[1:])}", file=sys.stderr)
        sys.exit(2)
    logging.set_verbosity(logging.WARNING)
    if not FLAGS.workdir or (FLAGS.wav is None) == (FLAGS.split is None):
        print("error: give --workdir and one of --wav=FILE or --split=valid|test.", file=sys.stderr)
        sys.exit(2)
    from train.errors import ConfigError

    workdir = os.path.expanduser(FLAGS.workdir)
    try:
        if FLAGS.wav is not None:
            out = transcribe(workdir, os.path.expanduser(FLAGS.wav), FLAGS.beam, FLAGS.which)
            print(" ".join(str(d) for d in out["digits"]) or "(nothing recognised)")
        else:
            print(json.dumps(score_split(workdir, FLAGS.split, FLAGS.beam, FLAGS.which)))
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    define_flags()
    app.run(main)
