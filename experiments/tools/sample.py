r"""Generate text from a trained language model's checkpoint.

    python -m experiments.tools.sample --workdir=workdirs/shakespeare_lstm --prompt="ROMEO:" \
        --length=400 --temperature=0.8 --seed=0

The prompt is fed through the model (carry from zeros; a GPT keeps its last block_size
tokens as its context), then `length` tokens are drawn one at a
time from softmax(logits / temperature), each fed back in. The same seed gives the same text.
Character models take the prompt character by character; word models split it on whitespace
(unknown words become '<unk>'), and '<eos>' prints as a newline.
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags, logging

from train import errors

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command-line flags (defined only when run as a script, so importing is side-free)."""
    flags.DEFINE_string("workdir", None, "Workdir of a trained 'lm' run.")
    flags.DEFINE_string("prompt", "", "Text to start from ('' = a newline / <eos>).")
    flags.DEFINE_integer("length", 400, "Tokens (characters or words) to generate.")
    flags.DEFINE_float("temperature", 0.8, "Softmax temperature, > 0.")
    flags.DEFINE_integer("seed", 0, "Sampling seed; the same seed gives the same text.")
    flags.DEFINE_enum("which", "best", ["best", "latest"], "Checkpoint to load.")


class SampleError(ValueError):
    """A user-facing problem with the sampling request (one line)."""


def encode_prompt(task, prompt: str) -> np.ndarray:
    """The prompt as ids [P] in the task's vocabulary (P >= 1)."""
    from train.data import text

    vocab, level = task.corpus.vocab, task.corpus.level
    if level == "char":
        tokens = list(prompt) or ["\n"]
        unknown = sorted({t for t in tokens if t not in vocab.index})
        if unknown:
            raise SampleError(
                f"--prompt: characters {''.join(unknown)!r} are not in the model's "
                f"{len(vocab)}-character vocabulary."
            )
    else:
        tokens = prompt.split() or [text.EOS]
        unknown = sorted({t for t in tokens if t not in vocab.index})
        if unknown and text.UNK not in vocab.index:
            raise SampleError(f"--prompt: words {unknown[:5]} are not in the vocabulary.")
    return vocab.encode(tokens)


def generate(task, params, prompt: str, length: int, temperature: float, seed: int) -> str:
    """`length` sampled tokens after `prompt`, decoded to text (the prompt not included)."""
    if not temperature > 0:
        raise SampleError(f"--temperature must be > 0, got {temperature}.")
    if length < 0:
        raise SampleError(f"--length must be >= 0, got {length}.")
    prompt_1xP = jnp.asarray(encode_prompt(task, prompt))[None, :]
    if length == 0:
        return ""

    @jax.jit
    def run(params, prompt_1xP, key):
        carry, logits_1xV = task.prime(params, prompt_1xP)

        def body(state, k):  # one token per step through the model's step API
            carry, logits_1xV = state
            token_1 = jax.random.categorical(k, logits_1xV / temperature, axis=-1)
            carry, logits_1xV = task.step(params, carry, token_1)
            return (carry, logits_1xV), token_1[0]

        keys = jax.random.split(key, length)
        _, tokens_L = jax.lax.scan(body, (carry, logits_1xV), keys)
        return tokens_L

    tokens = np.asarray(run(params, prompt_1xP, jax.random.key(seed)))
    out = task.corpus.vocab.decode(tokens, task.corpus.level)
    if task.corpus.level == "word" and out and not out.startswith("\n"):
        out = " " + out
    return out


def load(workdir: str, which: str = "best"):
    """(task, params) of a workdir's checkpoint; SampleError when it is not an 'lm' run."""
    from train import checkpoint
    from train import workdir as workdir_lib

    config = workdir_lib.load_config(workdir)
    if config.get("task") != "lm":
        raise SampleError(f"--workdir={workdir}: task is {config.get('task')!r}, not 'lm'.")
    trained = checkpoint.load_trained(workdir, which)
    return trained.task, trained.params


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")

    logging.set_verbosity(logging.WARNING)  # orbax logs every restore at INFO
    if not FLAGS.workdir:
        _fail("--workdir is required: the workdir of a trained 'lm' run.")
    try:
        task, params = load(FLAGS.workdir, FLAGS.which)
        out = generate(task, params, FLAGS.prompt, FLAGS.length, FLAGS.temperature, FLAGS.seed)
    except (SampleError, errors.ConfigError) as e:
        _fail(str(e))
    print(FLAGS.prompt + out)


def _fail(message: str):
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


if __name__ == "__main__":
    define_flags()
    app.run(main)
