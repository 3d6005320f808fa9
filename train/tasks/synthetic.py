"""A tiny, fast task for exercising the training loop (not a benchmark).

Tokens s_t are uniform over a vocabulary of V symbols; the target at step t is

    y_t = (s_t + s_{t-d}) mod V,     with s_t = 0 for t < 0 (d = config.data.delay),

so a model must remember the last d inputs. With `config.data.carry=True` the data is laid out
like a language model's: batch_size parallel streams of `steps_per_epoch * seq_len` tokens cut
into consecutive windows, the recurrent carry flows from one window to the next (truncated
BPTT), and the first d targets of a window can only be predicted through the carried state.
Each epoch revisits the same streams and starts with `reset`. With `carry=False` every batch is
fresh independent sequences (the carry is None).

`config.data.nan_after_step >= 0` poisons the loss with NaN from that training step on, to test
the loop's non-finite-loss stop.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import cells
from train import models
from train.data import base as data_base
from train.errors import ConfigError
from train.tasks import base

_SPLIT_SEEDS = {"train": 0, "valid": 1, "test": 2}


def _targets(s_BxN: np.ndarray, delay: int, vocab: int) -> np.ndarray:
    """y_t = (s_t + s_{t-delay}) mod V along axis 1, with zeros before the start."""
    past_BxN = np.zeros_like(s_BxN)
    past_BxN[:, delay:] = s_BxN[:, :-delay]
    return (s_BxN + past_BxN) % vocab


class _StreamIterator(data_base.DataIterator):
    """Consecutive windows of fixed streams; `reset` at the first window of each epoch."""

    def __init__(self, s_BxN, y_BxN, seq_len, poison_from):
        self._s, self._y, self._t = s_BxN, y_BxN, seq_len
        self._windows = s_BxN.shape[1] // seq_len
        self._poison_from = poison_from
        self._step = 0

    def __next__(self):
        i, t, b = self._step % self._windows, self._t, self._s.shape[0]
        batch = {
            "x": self._s[:, i * t : (i + 1) * t],
            "y": self._y[:, i * t : (i + 1) * t],
            "reset": np.full((b,), i == 0),
        }
        if self._poison_from >= 0:
            batch["poison"] = np.full(
                (b,), np.nan if self._step >= self._poison_from else 0.0, np.float32
            )
        self._step += 1
        return batch

    def get_state(self):
        return {"step": self._step}

    def set_state(self, state):
        self._step = int(state["step"])


class _FreshIterator(_StreamIterator):
    """Independent random sequences per batch, drawn from (seed, step) so they are resumable."""

    def __init__(self, seed, batch_size, seq_len, vocab, delay, poison_from):
        self._seed, self._shape = seed, (batch_size, seq_len)
        self._vocab, self._delay, self._poison_from = vocab, delay, poison_from
        self._step = 0

    def __next__(self):
        rng = np.random.default_rng([self._seed, self._step])
        s = rng.integers(0, self._vocab, self._shape)
        batch = {"x": s, "y": _targets(s, self._delay, self._vocab)}
        if self._poison_from >= 0:
            value = np.nan if self._step >= self._poison_from else 0.0
            batch["poison"] = np.full(self._shape[:1], value, np.float32)
        self._step += 1
        return batch


class SyntheticTask(base.Task):
    """Embedding -> stacked recurrent cells -> softmax over V, trained on y_t = s_t + s_{t-d}."""

    name = "synthetic"
    model_fields = ("embed_size",)
    data_fields = (
        "vocab_size",
        "delay",
        "carry",
        "steps_per_epoch",
        "eval_windows",
        "nan_after_step",
    )
    unused_fields = {"data.path": "the tokens are generated, not read"}

    @classmethod
    def validate(cls, config):
        d = config.data
        for field in ("vocab_size", "steps_per_epoch", "eval_windows", "delay"):
            value = d.get(field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"data.{field} must be a positive int, got {value!r}.")
        if d.vocab_size < 2:
            raise ConfigError(f"data.vocab_size must be >= 2, got {d.vocab_size}.")
        if config.model.get("embed_size", 0) < 1:
            raise ConfigError("model.embed_size must be a positive int.")

    def __init__(self, config):
        super().__init__(config)
        d = config.data
        self.cell = models.make_cell(config)
        self.stack = models.make_stack(config, self.cell)
        self.vocab, self.delay = d.vocab_size, d.delay
        self.carry_mode = bool(d.carry)

    def _streams(self, split, batch_size, windows):
        rng = np.random.default_rng([self.config.seed, _SPLIT_SEEDS[split]])
        s_BxN = rng.integers(0, self.vocab, (batch_size, windows * self.config.train.seq_len))
        return s_BxN, _targets(s_BxN, self.delay, self.vocab)

    # -- model -------------------------------------------------------------------------------
    def init_params(self, rng):
        k_emb, k_rnn, k_out = jax.random.split(rng, 3)
        e, h = self.config.model.embed_size, self.stack.output_size
        return {
            "embed": jax.random.normal(k_emb, (self.vocab, e)) * 0.1,
            "rnn": self.stack.init(k_rnn, e),
            "out_w": jax.random.normal(k_out, (h, self.vocab)) / np.sqrt(h),
            "out_b": jnp.zeros((self.vocab,)),
        }

    def init_carry(self, batch_size):
        return self.stack.initial_carry(batch_size) if self.carry_mode else None

    def loss(self, params, carry, batch, rng, train):
        x_BxTxE = params["embed"][batch["x"]]
        h_BxTxH, carry = self.stack(
            params["rnn"], x_BxTxE, carry=carry, rng=rng, **self.scan_kwargs
        )
        h_out_BxTxV = cells.base.matmul(h_BxTxH, params["out_w"], self.cell.compute_dtype)
        logits_BxTxV = cells.base.add_bias(h_out_BxTxV, params["out_b"])
        logp_BxTxV = jax.nn.log_softmax(logits_BxTxV.astype(jnp.float32))
        nll_BxT = -jnp.take_along_axis(logp_BxTxV, batch["y"][..., None], axis=-1)[..., 0]
        nll = jnp.sum(nll_BxT)
        if "poison" in batch:
            nll = nll + jnp.sum(batch["poison"])
        tokens = jnp.asarray(nll_BxT.size, jnp.float32)
        correct = jnp.sum(jnp.argmax(logits_BxTxV, -1) == batch["y"]).astype(jnp.float32)
        sums = {"nll": nll, "tokens": tokens, "correct": correct}
        return nll / tokens, (carry, sums)

    def summarize(self, sums):
        loss = sums["nll"] / sums["tokens"]
        return {"loss": loss, "accuracy": sums["correct"] / sums["tokens"]}

    # -- data --------------------------------------------------------------------------------
    def train_iterator(self):
        d, t = self.config.data, self.config.train
        poison = d.get("nan_after_step", -1)
        if not self.carry_mode:
            return _FreshIterator(
                self.config.seed, t.batch_size, t.seq_len, self.vocab, self.delay, poison
            )
        s, y = self._streams("train", t.batch_size, d.steps_per_epoch)
        return _StreamIterator(s, y, t.seq_len, poison)

    def eval_batches(self, split):
        d, t = self.config.data, self.config.train
        s, y = self._streams(split, self.config.eval.batch_size, d.eval_windows)
        for i in range(d.eval_windows):
            window = slice(i * t.seq_len, (i + 1) * t.seq_len)
            batch = {"x": s[:, window], "y": y[:, window]}
            if self.carry_mode:
                batch["reset"] = np.full((s.shape[0],), i == 0)
            yield batch

    def steps_per_epoch(self):
        return self.config.data.steps_per_epoch
