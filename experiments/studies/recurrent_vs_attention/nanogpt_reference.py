r"""nanoGPT's own code as the oracle for our GPT: its README's CPU command, run on this machine,
and its checkpoint scored on the same windows as ours.

    git clone https://github.com/karpathy/nanoGPT /tmp/nanoGPT     # once, by hand (no network
                                                                   # is used from here on)
    python -m experiments.studies.recurrent_vs_attention.nanogpt_reference \
        --nanogpt=/tmp/nanoGPT \
        --out=experiments/studies/recurrent_vs_attention/results/nanogpt_own_code.json

1. Writes nanoGPT's `data/shakespeare_char/{train,val}.bin` and `meta.pkl` from the bundled
   text exactly as their `prepare.py` does (characters of the whole text sorted, the first
   int(0.9 n) train), since their script downloads it.
2. Runs their `train.py` with their README's CPU command (seed 1337, theirs), one thread.
3. Loads the checkpoint it saved (their best by their 20-batch validation estimate, which at
   2,000 iterations is the last) with their `model.py` and scores every non-overlapping window
   of 64 validation characters, as `config.data.eval_window=64` scores ours.

The record holds both of their numbers (their printed estimate and the window score), their
commit, the command, torch's version, the hardware and the wall time. Needs torch.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import subprocess
import sys
import time

from absl import app, flags

from experiments.lab import records
from train import provenance
from train.data import text

FLAGS = flags.FLAGS
WINDOW = 64
README_COMMAND = (
    "config/train_shakespeare_char.py --device=cpu --compile=False --eval_iters=20 "
    "--log_interval=1 --block_size=64 --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128 "
    "--max_iters=2000 --lr_decay_iters=2000 --dropout=0.0"
).split()


def prepare(nanogpt: str, text_path: str) -> None:
    """Their prepare.py's files, from the bundled text instead of a download."""
    import numpy as np

    with gzip.open(text_path, "rt") as f:
        data = f.read()
    chars = sorted(set(data))
    stoi = {c: i for i, c in enumerate(chars)}
    out = os.path.join(nanogpt, "data", "shakespeare_char")
    cut = int(len(data) * 0.9)
    for name, part in (("train", data[:cut]), ("val", data[cut:])):
        np.array([stoi[c] for c in part], np.uint16).tofile(os.path.join(out, f"{name}.bin"))
    meta = {"vocab_size": len(chars), "itos": dict(enumerate(chars)), "stoi": stoi}
    with open(os.path.join(out, "meta.pkl"), "wb") as f:
        pickle.dump(meta, f)


def score_windows(nanogpt: str) -> dict:
    """Their checkpoint's mean loss over every window of 64 validation characters."""
    import numpy as np
    import torch

    sys.path.insert(0, nanogpt)
    from model import GPT, GPTConfig  # their model.py

    ckpt = torch.load(os.path.join(nanogpt, "out-shakespeare-char", "ckpt.pt"), map_location="cpu")
    model = GPT(GPTConfig(**ckpt["model_args"]))
    model.load_state_dict(ckpt["model"])
    model.eval()
    val = np.fromfile(os.path.join(nanogpt, "data", "shakespeare_char", "val.bin"), np.uint16)
    total, tokens = 0.0, 0.0
    with torch.no_grad():  # the windows our scorer uses (padded rows carry mask 0)
        for batch in text.fixed_windows(val.astype(np.int64), 256, WINDOW):
            logits, _ = model(torch.from_numpy(batch["inputs"]).long(),
                              torch.from_numpy(batch["targets"]).long())  # fmt: skip
            nll = torch.nn.functional.cross_entropy(
                logits.transpose(1, 2), torch.from_numpy(batch["targets"]).long(), reduction="none"
            )
            mask = torch.from_numpy(batch["mask"])
            total += float((nll * mask).sum())
            tokens += float(mask.sum())
    count = (len(val) - 1) // WINDOW
    return {
        "iter_num": int(ckpt["iter_num"]),
        "their_estimate": float(ckpt["best_val_loss"]),
        "window_loss": total / tokens,
        "windows": count,
        "torch": torch.__version__,
    }


def main(argv):
    del argv
    nanogpt = os.path.abspath(FLAGS.nanogpt)
    prepare(nanogpt, os.path.join(records.ROOT, "data", "tinyshakespeare", "input.txt.gz"))
    start = time.time()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    subprocess.run([sys.executable, "train.py", *README_COMMAND], cwd=nanogpt, env=env,
                   check=True)  # fmt: skip
    wall = time.time() - start
    commit = subprocess.run(["git", "-C", nanogpt, "rev-parse", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or FLAGS.nanogpt_commit  # fmt: skip
    record = {
        "name": "nanogpt_own_code",
        "nanogpt_commit": commit,
        "nanogpt_command": "python train.py " + " ".join(README_COMMAND),
        **score_windows(nanogpt),
        "wall_time_s": wall,
        "hardware": provenance.hardware(),
        "threads": 1,
    }
    records.write(FLAGS.out, {**record, **records.provenance()})
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    flags.DEFINE_string("nanogpt", None, "A checkout of karpathy/nanoGPT.", required=True)
    flags.DEFINE_string("nanogpt_commit", "", "Its commit, where the checkout has no .git.")
    flags.DEFINE_string("out", None, "Where the record goes.", required=True)
    app.run(main)
