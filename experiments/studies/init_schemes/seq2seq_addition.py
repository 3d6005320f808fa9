r"""flax's seq2seq example (an LSTM encoder-decoder that learns to add) ported to cells, with
flax's own model beside ours so the two can be compared weight for weight.

The task and settings are those of google/flax examples/seq2seq (input_pipeline.py, models.py,
train.py; this is a port, not a copy):

  * data: a query "a+b" with a in [0, 99] and b in [0, 999] (the pair sorted, smaller first),
    the answer "=" followed by the sum, e.g. "14+381" -> "=395". Tokens: pad 0, eos 1 and the
    characters ' +0123456789=' (15 in all); every string ends with eos and is padded to a fixed
    length (queries 8 = 2 * 3 digits + '+' + eos, answers 6 = '=' + 4 digits + eos), then one-hot.
  * model: an LSTM encoder reads the query up to (not including) its eos; its final carry
    starts an LSTM decoder whose outputs go through a Dense to the vocabulary. Training uses
    teacher forcing (the decoder reads the answer shifted right); evaluation decodes greedily
    from '=' (each step's argmax fed back; flax's current example samples from the logits
    instead, its original one took the argmax; greedy makes the evaluation deterministic).
  * training: Adam, learning rate 0.003, batch 128, hidden size 512, the cross-entropy of the
    answer tokens up to and including eos (padding masked, mean over all positions).
  * metric: exact-match accuracy of greedy decoding on a fixed set of 1000 problems (the same
    for every seed and model), every `eval_every` steps.

The model is written two ways: `FlaxSeq2seq`, flax's nn.RNN over nn.LSTMCell as the example
has it (`cell_factory` swaps in any flax cell, e.g. `cells.linen.RNNCell`), and
`CellsSeq2seq`, any `cells` cell through `cells.linen.RNN` (the fused `cells.scan`, with
`backward='fused'` if asked). `params_from_flax` converts the first's weights to the second's;
with them both give the same logits (tests/experiments/studies/seq2seq_addition_test.py).

    python -m experiments.studies.init_schemes.seq2seq_addition --model=cells --steps=1200 \
        --out=/tmp/s2s_cells.json
    python -m experiments.studies.init_schemes.seq2seq_addition --model=flax --steps=1200 \
        --out=/tmp/s2s_flax.json

    record = seq2seq_addition.train(model="cells", cell=cells.LSTM(512, chrono_t_max=8), seed=1)
    record["accuracy"]      # exact match at record["eval_steps"]
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags

import cells
from cells import interop
from experiments.lab import records

# -- data --------------------------------------------------------------------------------------

PAD, EOS = 0, 1
CHARS = sorted(set("0123456789+= "))
VOCAB_SIZE = len(CHARS) + 2
_TOKEN = {ch: k + 2 for k, ch in enumerate(CHARS)}
_CHAR = {k: ch for ch, k in _TOKEN.items()}
MAX_DIGITS = 3  # the example's max_len_query_digit
QUERY_LEN = 2 * MAX_DIGITS + 2  # "999+999" and eos
ANSWER_LEN = MAX_DIGITS + 3  # "=" + the sum's MAX_DIGITS + 1 digits, and eos
EVAL_SEED, EVAL_SIZE = 10_000, 1000


def encode(strings: list[str], length: int) -> np.ndarray:
    """One-hot [N, length, VOCAB_SIZE] of each string's tokens, eos, then pad."""
    tokens_NxL = np.full((len(strings), length), PAD, np.int32)
    for n, s in enumerate(strings):
        if len(s) + 1 > length:
            raise ValueError(f"encode: {s!r} and eos do not fit length={length}.")
        tokens_NxL[n, : len(s) + 1] = [_TOKEN[ch] for ch in s] + [EOS]
    return np.eye(VOCAB_SIZE, dtype=np.float32)[tokens_NxL]


def decode(onehot_NxLxV) -> list[str]:
    """The strings of one-hot (or logit) rows, each up to its first eos."""
    out = []
    for row in np.asarray(onehot_NxLxV).argmax(-1):
        end = list(row).index(EOS) if EOS in row else len(row)
        out.append("".join(_CHAR.get(int(t), "_") for t in row[:end]))
    return out


def batch(rng: np.random.Generator, size: int) -> dict[str, np.ndarray]:
    """`size` random problems: {'query' [size, 8, V], 'answer' [size, 6, V]} (one-hot)."""
    a, b = rng.integers(0, 100, size), rng.integers(0, 10**MAX_DIGITS, size)
    small, large = np.minimum(a, b), np.maximum(a, b)
    queries = [f"{x}+{y}" for x, y in zip(small, large, strict=True)]
    answers = [f"={x + y}" for x, y in zip(small, large, strict=True)]
    return {"query": encode(queries, QUERY_LEN), "answer": encode(answers, ANSWER_LEN)}


def query_lengths(query_BxLxV):
    """Tokens before eos: what the encoder reads (the example's `get_seq_lengths`)."""
    return jnp.argmax(jnp.argmax(query_BxLxV, -1) == EOS, axis=-1)


def label_lengths(labels_BxTxV):
    """Tokens up to and including eos (all T when there is none): what the loss scores."""
    is_eos_BxT = labels_BxTxV[:, :, EOS] > 0
    first = jnp.argmax(is_eos_BxT, axis=-1)
    return jnp.where(jnp.any(is_eos_BxT, axis=-1), first + 1, labels_BxTxV.shape[1])


# -- the model, two ways -----------------------------------------------------------------------


def _one_hot_argmax(logits):
    return jax.nn.one_hot(jnp.argmax(logits, -1), logits.shape[-1], dtype=jnp.float32)


class _FlaxDecoderCell(nn.RNNCellBase):
    """One decoder step: the LSTM ('lstm') and the Dense ('dense'); with teacher_force=False it
    reads its previous greedy prediction instead of the given input."""

    cell_factory: Callable[..., nn.RNNCellBase]
    hidden_size: int
    teacher_force: bool

    @nn.compact
    def __call__(self, carry, x):
        state, last_prediction = carry
        if not self.teacher_force:
            x = last_prediction
        state, h = self.cell_factory(self.hidden_size, name="lstm")(state, x)
        logits = nn.Dense(VOCAB_SIZE, name="dense")(h)
        prediction = _one_hot_argmax(logits)
        return (state, prediction), (logits, prediction)

    @property
    def num_feature_axes(self) -> int:
        return 1


class FlaxSeq2seq(nn.Module):
    """The example's model: nn.RNN(nn.LSTMCell) encoder and decoder (flax's carry (c, h)).

    Attributes:
      hidden_size: the LSTMs' width.
      cell_factory: `factory(features, **module_kwargs)` -> a flax cell: nn.LSTMCell as the
        example, or e.g. `lambda n, **kw: cells.linen.RNNCell(cells.LSTM(n), **kw)`.
    """

    hidden_size: int
    cell_factory: Callable[..., nn.RNNCellBase] = nn.LSTMCell

    @nn.compact
    def __call__(self, query, answer, teacher_force: bool = True):
        """(logits [B, T-1, V], one-hot greedy predictions) for answer [B, T, V]."""
        # parent=None: the cells belong to the nn.RNN they are given to (params .../cell).
        encoder_cell = self.cell_factory(self.hidden_size, parent=None)
        encoder = nn.RNN(encoder_cell, return_carry=True, name="encoder")
        decoder_cell = _FlaxDecoderCell(
            self.cell_factory, self.hidden_size, teacher_force, parent=None
        )
        decoder = nn.RNN(decoder_cell, name="decoder")
        state, _ = encoder(query, seq_lengths=query_lengths(query))
        return decoder(answer[:, :-1], initial_carry=(state, answer[:, 0]))


class CellsSeq2seq(nn.Module):
    """The same model over any `cells` cell: `cells.linen.RNN` encoder and decoder (params
    'encoder' and 'decoder' are the cell's functional dicts) and a Dense 'dense'.

    Attributes:
      cell: the encoder's and decoder's cell, e.g. `cells.LSTM(512)`.
      backward: `cells.scan`'s backward, 'autodiff' or 'fused' (the hand-written one).
    """

    cell: cells.Cell
    backward: str = "autodiff"

    @nn.compact
    def __call__(self, query, answer, teacher_force: bool = True):
        """(logits [B, T-1, V], one-hot greedy predictions) for answer [B, T, V]."""
        encoder = cells.linen.RNN(self.cell, name="encoder")
        decoder = cells.linen.RNN(self.cell, name="decoder")
        dense = nn.Dense(VOCAB_SIZE, name="dense")
        _, state = encoder(query, lengths=query_lengths(query), backward=self.backward)
        inputs_BxTxV = answer[:, :-1]
        if teacher_force:  # the whole decoder sequence in one fused scan
            hs_BxTxH, _ = decoder(inputs_BxTxV, carry=state, backward=self.backward)
            logits = dense(hs_BxTxH)
            return logits, _one_hot_argmax(logits)
        x, all_logits = inputs_BxTxV[:, 0], []
        for _ in range(inputs_BxTxV.shape[1]):  # greedy: each prediction is the next input
            state, h = decoder.step(state, x)
            all_logits.append(dense(h))
            x = _one_hot_argmax(all_logits[-1])
        logits = jnp.stack(all_logits, axis=1)
        return logits, _one_hot_argmax(logits)


def params_from_flax(cell: cells.Cell, flax_params) -> dict:
    """`FlaxSeq2seq` params (nn.LSTMCell) as `CellsSeq2seq(cell)` params (`cell` an LSTM)."""
    decoder = flax_params["decoder"]["cell"]
    return {
        "encoder": interop.from_flax(cell, flax_params["encoder"]["cell"]),
        "decoder": interop.from_flax(cell, decoder["lstm"]),
        "dense": dict(decoder["dense"]),
    }


# -- training ----------------------------------------------------------------------------------


def loss_fn(logits_BxTxV, labels_BxTxV):
    """Cross-entropy of the answer tokens up to eos; padding counts as zero in the mean."""
    xe_BxT = jnp.sum(jax.nn.log_softmax(logits_BxTxV) * labels_BxTxV, axis=-1)
    steps = jnp.arange(labels_BxTxV.shape[1])[None, :]
    mask_BxT = steps < label_lengths(labels_BxTxV)[:, None]
    return -jnp.mean(jnp.where(mask_BxT, xe_BxT, 0.0))


def exact_match(predictions_BxTxV, labels_BxTxV):
    """Fraction of sequences whose tokens up to eos are all right."""
    steps = jnp.arange(labels_BxTxV.shape[1])[None, :]
    mask_BxT = steps < label_lengths(labels_BxTxV)[:, None]
    right_BxT = jnp.argmax(predictions_BxTxV, -1) == jnp.argmax(labels_BxTxV, -1)
    return jnp.mean(jnp.all(right_BxT | ~mask_BxT, axis=-1))


def describe(cell: cells.Cell) -> str:
    """`cell` as its class and the fields that differ from the defaults: 'LSTM(hidden_size=8)'."""
    changed = [
        f"{f.name}={getattr(cell, f.name)!r}"
        for f in dataclasses.fields(cell)
        if f.default is dataclasses.MISSING or getattr(cell, f.name) != f.default
    ]
    return f"{type(cell).__name__}({', '.join(changed)})"


def make_model(model: str, cell: cells.Cell | None, hidden_size: int, backward: str):
    if model == "flax":
        if cell is not None or backward != "autodiff":
            raise ValueError("model='flax' is nn.LSTMCell with autodiff: leave cell and backward.")
        return FlaxSeq2seq(hidden_size)
    if model == "cells":
        return CellsSeq2seq(cells.LSTM(hidden_size) if cell is None else cell, backward)
    raise ValueError(f"model must be 'flax' or 'cells', got {model!r}.")


def train_step(model: nn.Module, tx: optax.GradientTransformation, params, opt_state, batch_):
    """One Adam step on a teacher-forced batch: (params, opt_state, loss)."""

    def loss_of(p):
        logits, _ = model.apply({"params": p}, batch_["query"], batch_["answer"])
        return loss_fn(logits, batch_["answer"][:, 1:])

    loss, grads = jax.value_and_grad(loss_of)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss


def evaluate(model: nn.Module, params, data) -> float:
    """Greedy exact-match accuracy on `data` (the decoder sees only the leading '=')."""
    start = np.broadcast_to(encode(["="], ANSWER_LEN), data["answer"].shape)
    _, predictions = model.apply({"params": params}, data["query"], start, teacher_force=False)
    return exact_match(predictions, data["answer"][:, 1:])


def train(
    model: str = "flax",
    cell: cells.Cell | None = None,
    hidden_size: int | None = None,
    batch_size: int = 128,
    steps: int = 1200,
    learning_rate: float = 0.003,
    seed: int = 0,
    backward: str = "autodiff",
    init: str = "own",
    eval_every: int = 200,
    eval_size: int = EVAL_SIZE,
    on_eval: Callable[[int, float, float], None] | None = None,
) -> dict[str, Any]:
    """Trains one model; returns its record (settings, accuracies, losses, times).

    Args:
      model: 'flax' (nn.LSTMCell, flax's initialisation) or 'cells' (`cell`, its own `init`).
      cell: the cells cell for model='cells' (default `cells.LSTM(hidden_size)`).
      hidden_size: default 512 (the example's), or the cell's width when `cell` is given.
      batch_size, steps, learning_rate: the example's 128, (10000; 1200 here), 0.003 (Adam).
      seed: the initial weights and the training batches; the eval set is fixed.
      backward: model='cells' only: `cells.scan`'s 'autodiff' or 'fused'.
      init: 'own' (the model's own initialisation) or 'flax' (model='cells' with an LSTM:
        start from the weights model='flax' starts from with this seed, converted).
      eval_every: steps between evaluations (and after the last step).
      eval_size: problems in the fixed eval set.
      on_eval: called as on_eval(step, accuracy, train_loss) after each evaluation.

    Returns:
      {'eval_steps', 'accuracy', 'train_loss' (at those steps), 'wall_time_s' (all of it,
      compilation included), 'step_time_s' (mean time of a training step after the first,
      evaluations excluded), the settings}.
    """
    if cell is not None and hidden_size not in (None, cell.hidden_size):
        raise ValueError(f"hidden_size={hidden_size} differs from the cell's {cell.hidden_size}.")
    hidden_size = cell.hidden_size if cell is not None else (hidden_size or 512)
    if init not in ("own", "flax") or (init == "flax" and model != "cells"):
        raise ValueError(f"init must be 'own', or 'flax' with model='cells', got {init!r}.")
    start = time.perf_counter()
    net = make_model(model, cell, hidden_size, backward)
    rng = np.random.default_rng(seed)
    example = batch(np.random.default_rng(0), 1)
    key = jax.random.key(seed)
    if init == "flax":
        flax_params = FlaxSeq2seq(hidden_size).init(key, example["query"], example["answer"])
        params = params_from_flax(net.cell, flax_params["params"])
    else:
        params = net.init(key, example["query"], example["answer"])["params"]
    tx = optax.adam(learning_rate)
    opt_state = tx.init(params)
    step_fn = jax.jit(lambda *a: train_step(net, tx, *a), donate_argnums=(0, 1))
    eval_fn = jax.jit(lambda p, d: evaluate(net, p, d))
    eval_data = batch(np.random.default_rng(EVAL_SEED), eval_size)
    record = {"eval_steps": [], "accuracy": [], "train_loss": []}
    first_step_done, eval_time = start, 0.0
    for step in range(1, steps + 1):
        params, opt_state, loss = step_fn(params, opt_state, batch(rng, batch_size))
        if step == 1:  # compiled and run once: the per-step time counts from here
            jax.block_until_ready(loss)
            first_step_done = time.perf_counter()
        if step % eval_every == 0 or step == steps:
            jax.block_until_ready(params)  # the steps so far are done: time the eval alone
            eval_start = time.perf_counter()
            record["eval_steps"].append(step)
            record["accuracy"].append(float(eval_fn(params, eval_data)))
            record["train_loss"].append(float(loss))
            eval_time += time.perf_counter() - eval_start
            if on_eval is not None:
                on_eval(step, record["accuracy"][-1], record["train_loss"][-1])
    end = time.perf_counter()
    record.update(
        model=model,
        cell=describe(net.cell) if model == "cells" else "flax.linen.LSTMCell",
        hidden_size=hidden_size,
        batch_size=batch_size,
        steps=steps,
        learning_rate=learning_rate,
        seed=seed,
        backward=backward,
        init=init,
        eval_size=eval_size,
        wall_time_s=end - start,
        step_time_s=(end - first_step_done - eval_time) / max(steps - 1, 1),
        backend=jax.default_backend(),
    )
    return record


# -- command line ------------------------------------------------------------------------------

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command-line flags (defined only when run as a script, so importing is side-free)."""
    flags.DEFINE_enum("model", "cells", ["flax", "cells"], "flax's nn.LSTMCell or a cells cell.")
    flags.DEFINE_string("cell", "lstm", "model=cells: a registered cell name (cells.names()).")
    flags.DEFINE_integer("hidden_size", 512, "LSTM width.")
    flags.DEFINE_integer("batch_size", 128, "Training batch size.")
    flags.DEFINE_integer("steps", 1200, "Training steps.")
    flags.DEFINE_float("learning_rate", 0.003, "Adam's learning rate.")
    flags.DEFINE_integer("seed", 0, "Initial weights and training batches.")
    flags.DEFINE_enum("backward", "autodiff", ["autodiff", "fused"], "model=cells: the backward.")
    flags.DEFINE_enum("init", "own", ["own", "flax"], "model=cells: own init or flax's weights.")
    flags.DEFINE_integer("eval_every", 200, "Steps between evaluations.")
    flags.DEFINE_string("out", None, "Write the record here as JSON.")
    flags.DEFINE_bool("force", False, "Replace an existing --out file.")


def main(argv) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    cell = None
    if FLAGS.model == "cells":
        cls = cells.get(FLAGS.cell)
        cell = cls(FLAGS.hidden_size, **cls.example_options(FLAGS.hidden_size))
    record = train(
        model=FLAGS.model,
        cell=cell,
        hidden_size=FLAGS.hidden_size,
        batch_size=FLAGS.batch_size,
        steps=FLAGS.steps,
        learning_rate=FLAGS.learning_rate,
        seed=FLAGS.seed,
        backward=FLAGS.backward,
        init=FLAGS.init,
        eval_every=FLAGS.eval_every,
        on_eval=lambda step, acc, loss: print(
            f"step {step:6d}  exact-match accuracy {acc:.3f}  train loss {loss:.4f}", flush=True
        ),
    )
    print(f"wall time {record['wall_time_s']:.1f} s, {record['step_time_s'] * 1e3:.1f} ms/step")
    if FLAGS.out:
        print(f"wrote {records.write(FLAGS.out, record, overwrite=FLAGS.force)}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
