"""Long-range dependency tasks: the adding problem, copy memory and selective copying.

Adding problem (Hochreiter & Schmidhuber 1997; the setup of Le et al. 2015). An input of T
steps with two channels: values v_t ~ U[0, 1] and a marker channel with exactly two ones, one
at a position in [0, T//2) and one in [T//2, T). Target: the sum of the two marked values,
read from the last hidden state (y_hat = W h_T + b). Loss: MSE. Predicting the mean 1.0
always scores Var(v_a + v_b) = 2/12 = 0.167 in expectation.

Copy memory (Arjovsky et al. 2016). Symbols 0 = blank, 1..8 = data, 9 = delimiter. The input
(length T + 20) is 10 data symbols, T - 1 blanks, the delimiter, then 10 blanks; the target
is T + 10 blanks followed by the 10 data symbols. Loss: cross-entropy averaged over all T + 20
steps (y_hat_t = softmax(W h_t + b)). A memoryless model that outputs blanks, then uniform
guesses over the 8 symbols, scores 10 log(8) / (T + 20) in expectation.

Selective copying (Gu & Dao 2023, the Mamba paper's synthetic task; Feng et al. 2024 train
minGRU/minLSTM on it). K data symbols (1..8) sit at random positions, in order, among T noise
steps (blank 0); then K markers (9) ask for them. The target at the K marker steps is the K
symbols in order; the loss is the cross-entropy over those K steps only (the other steps have
no target), and copy_accuracy is the share of them recalled. Unlike the copy task the gaps vary
between examples, so a fixed delay line does not solve it: the model must decide what to keep
from the input (the "selection" the parallel cells' input-dependent gates are meant for).

Trivial baselines are computed on each fixed set, not taken from their expectation
(`trivial_baseline`): the adding problem's constant predictor 1.0 and the copy tasks' best
memoryless predictor (per step, the set's own target frequencies: it knows where the symbols
come, not which). A run counts as *solved* on a set when its loss there is at most
`SOLVED_FRACTION` = 5% of that set's baseline loss (`solved`): it removes 95% of the error the
trivial strategy leaves.

Both generators are deterministic functions of (seed, split, index): train batch k is drawn
from `np.random.default_rng([seed, 0, k])`, so the train iterator's position is just k and any
T works. Valid and test are fixed sets drawn from [seed, 1] and [seed, 2].

Config (config.data): `length` T, `num_valid`, `num_test` (and `num_tokens` K for selective
copying). Model: config.model.cell (with its
cell_options), hidden_size, num_layers, dropout (between layers); `train/models.py` builds it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from train import models
from train.data import base as data_base
from train.errors import ConfigError
from train.tasks import base

COPY_LEN = 10
NUM_DATA_SYMBOLS = 8
BLANK, DELIMITER = 0, 9
COPY_CLASSES = 10

_SPLIT_STREAM = {"train": 0, "valid": 1, "test": 2}
SOLVED_FRACTION = 0.05  # solved: loss <= 5% of the same set's trivial-baseline loss


# -- generators -----------------------------------------------------------------------------
def adding_batch(rng: np.random.Generator, length: int, batch_size: int):
    """Adding-problem examples: x [B, T, 2] (values, markers) and y [B] (the marked sum)."""
    half = length // 2
    values_BxT = rng.uniform(0.0, 1.0, (batch_size, length))
    first_B = rng.integers(0, half, batch_size)
    second_B = rng.integers(half, length, batch_size)
    markers_BxT = np.zeros((batch_size, length))
    rows = np.arange(batch_size)
    markers_BxT[rows, first_B] = 1.0
    markers_BxT[rows, second_B] = 1.0
    y_B = values_BxT[rows, first_B] + values_BxT[rows, second_B]
    x = np.stack([values_BxT, markers_BxT], axis=-1).astype(np.float32)
    return x, y_B.astype(np.float32)


def copy_batch(rng: np.random.Generator, length: int, batch_size: int):
    """Copy-memory examples: input tokens x [B, T + 20] and target tokens y [B, T + 20] (int32)."""
    total = length + 2 * COPY_LEN
    data_BxK = rng.integers(1, NUM_DATA_SYMBOLS + 1, (batch_size, COPY_LEN))
    x = np.full((batch_size, total), BLANK, np.int32)
    x[:, :COPY_LEN] = data_BxK
    x[:, length + COPY_LEN - 1] = DELIMITER
    y = np.full((batch_size, total), BLANK, np.int32)
    y[:, length + COPY_LEN :] = data_BxK
    return x, y


def selective_copy_batch(rng: np.random.Generator, length: int, num_tokens: int, batch_size: int):
    """Selective-copying examples: tokens x [B, T + K] and targets y [B, T + K] (int32).

    x: K data symbols at sorted random distinct positions of the first T steps (blank elsewhere),
    then K markers; y: blank for T steps, then the K symbols in order.
    """
    if not 1 <= num_tokens <= length:
        raise ValueError(f"selective copying needs 1 <= num_tokens <= length, got {num_tokens}, "
                         f"{length}.")  # fmt: skip
    data_BxK = rng.integers(1, NUM_DATA_SYMBOLS + 1, (batch_size, num_tokens))
    positions_BxK = np.sort(rng.random((batch_size, length)).argsort(axis=1)[:, :num_tokens], 1)
    x = np.full((batch_size, length + num_tokens), BLANK, np.int32)
    np.put_along_axis(x, positions_BxK, data_BxK, axis=1)
    x[:, length:] = DELIMITER
    y = np.full((batch_size, length + num_tokens), BLANK, np.int32)
    y[:, length:] = data_BxK
    return x, y


def adding_baseline_mse() -> float:
    """MSE of always predicting 1: the variance of a sum of two U[0, 1] values, 1/6."""
    return 1.0 / 6.0


def copy_baseline_ce(length: int) -> float:
    """Cross-entropy of the memoryless strategy: 10 log(8) / (T + 20)."""
    return COPY_LEN * float(np.log(NUM_DATA_SYMBOLS)) / (length + 2 * COPY_LEN)


def constant_predictor_mse(y_N: np.ndarray, constant: float = 1.0) -> float:
    """MSE of always predicting `constant` (the adding problem's E[y] = 1) on the targets y_N."""
    return float(np.mean((np.asarray(y_N, np.float64) - constant) ** 2))


def memoryless_baseline(y_NxS: np.ndarray, recall_len: int) -> dict[str, float]:
    """The best predictor that ignores the input, scored on one set's targets y [N, S].

    At each step s it predicts the set's own target frequencies p_s (no input-blind predictor
    has a lower cross-entropy there): cross_entropy = mean_s H(p_s) in nats, and copy_accuracy =
    the mean over the last `recall_len` steps of max_k p_s(k) (how often its argmax is right).
    """
    y_NxS = np.asarray(y_NxS)
    counts_SxK = np.stack([np.bincount(col, minlength=COPY_CLASSES) for col in y_NxS.T])
    p_SxK = counts_SxK / y_NxS.shape[0]
    plogp_SxK = np.where(p_SxK > 0, p_SxK * np.log(np.where(p_SxK > 0, p_SxK, 1.0)), 0.0)
    return {
        "cross_entropy": float(np.mean(-plogp_SxK.sum(axis=1))),
        "copy_accuracy": float(np.mean(p_SxK[-recall_len:].max(axis=1))),
    }


def solved(loss: float, baseline_loss: float) -> bool:
    """True when `loss` is at most SOLVED_FRACTION of the same set's trivial-baseline loss."""
    return bool(loss <= SOLVED_FRACTION * baseline_loss)


class _LongRangeTask(base.Task):
    """Shared parts: config checks, the recurrent stack, fixed eval sets, batching."""

    num_inputs: int = 0
    num_outputs: int = 0
    solvable = True
    loss_metric: str = ""  # the metric `trivial_baseline` and `is_solved` compare
    model_fields = ()
    data_fields = ("length", "num_valid", "num_test")
    unused_fields = {
        "train.seq_len": "the sequence length is config.data.length",
        "data.path": "the examples are generated, not read",
    }

    @classmethod
    def validate(cls, config):
        length = int(config.data.length)
        if length < 2:
            raise ConfigError(f"config.data.length={length} must be at least 2.")
        for field in ("num_valid", "num_test"):
            if int(config.data[field]) < 1:
                raise ConfigError(f"config.data.{field}={config.data[field]} must be >= 1.")

    def __init__(self, config):
        super().__init__(config)
        self.length = int(config.data.length)
        self.cell = models.make_cell(config)
        self.stack = models.make_stack(config, self.cell)
        seed = int(config.seed)
        self._examples = {
            split: self.make_examples(
                np.random.default_rng([seed, _SPLIT_STREAM[split]]),
                int(config.data[f"num_{split}"]),
            )
            for split in ("valid", "test")
        }

    def make_examples(self, rng, n):
        """n examples drawn from `rng`: a dict of arrays with leading axis n."""
        raise NotImplementedError

    def examples(self, split: str) -> dict[str, np.ndarray]:
        """The fixed evaluation set of `split` ('valid' or 'test'): {'x': ..., 'y': ...}."""
        return self._examples[split]

    def trivial_baseline(self, split: str) -> dict[str, float]:
        """The trivial strategy's metrics on the fixed set of `split` (module docstring)."""
        raise NotImplementedError

    def is_solved(self, metrics: dict[str, float], split: str) -> bool:
        """`solved`: metrics[loss_metric] <= 5% of the trivial baseline's on the same set."""
        baseline = self.trivial_baseline(split)[self.loss_metric]
        return solved(metrics[self.loss_metric], baseline)

    def init_params(self, rng):
        k_rnn, k_head = jax.random.split(rng)
        return {
            "rnn": self.stack.init(k_rnn, self.num_inputs),
            "head": models.dense_init(k_head, self.stack.output_size, self.num_outputs),
        }

    def encode(self, x):
        """Model inputs [B, T, I] from a batch's 'x'."""
        return x

    def hidden_states(self, params, x, rng=None):
        """Top-layer hidden states [B, T, H]."""
        ys, _ = self.stack(params["rnn"], self.encode(x), rng=rng, **self.scan_kwargs)
        return ys

    def data_summary(self):
        sizes = "/".join(f"{len(self._examples[s]['y']):,}" for s in ("valid", "test"))
        return f"training examples generated per step; {sizes} fixed examples (valid/test)"

    def train_iterator(self):
        batch_size = int(self.config.train.batch_size)

        def make(rng):
            batch = self.make_examples(rng, batch_size)
            batch["weight"] = np.ones((batch_size,), np.float32)
            return batch

        return data_base.SeededIterator(make, int(self.config.seed))

    def eval_batches(self, split):
        data = self._examples[split]
        return data_base.padded_batches(
            len(data["y"]),
            int(self.config.eval.batch_size),
            lambda idx: {k: v[idx] for k, v in data.items()},
        )


class AddingTask(_LongRangeTask):
    """The adding problem: regress the sum of the two marked values from the last state."""

    name = "adding"
    num_inputs, num_outputs = 2, 1
    loss_metric = "mse"

    def make_examples(self, rng, n):
        x, y = adding_batch(rng, self.length, n)
        return {"x": x, "y": y}

    def trivial_baseline(self, split):
        return {"mse": constant_predictor_mse(self.examples(split)["y"])}

    def predict(self, params, x, rng=None):
        """Predicted sums [B] from inputs [B, T, 2]."""
        h_BxH = self.hidden_states(params, x, rng)[:, -1]
        return models.dense(params["head"], h_BxH, self.cell.compute_dtype)[:, 0]

    def loss(self, params, carry, batch, rng, train):
        err_B = self.predict(params, batch["x"], rng if train else None) - batch["y"]
        se = jnp.sum(batch["weight"] * jnp.square(err_B))
        count = jnp.sum(batch["weight"])
        return se / jnp.maximum(count, 1.0), (carry, {"se": se, "count": count})

    def summarize(self, sums):
        mse = float(sums["se"]) / max(float(sums["count"]), 1.0)
        return {"loss": mse, "mse": mse}


class CopyTask(_LongRangeTask):
    """Copy memory: reproduce 10 symbols after T blanks and a delimiter.

    The loss averages the cross-entropy over the steps from `scored_from` on (all T + 20 here);
    copy_accuracy is measured on the last `recall_len` steps (the 10 recalled symbols).
    """

    name = "copy"
    num_inputs, num_outputs = COPY_CLASSES, COPY_CLASSES
    loss_metric = "cross_entropy"

    @property
    def recall_len(self) -> int:
        return COPY_LEN

    @property
    def scored_from(self) -> int:
        return 0

    def make_examples(self, rng, n):
        x, y = copy_batch(rng, self.length, n)
        return {"x": x, "y": y}

    def trivial_baseline(self, split):
        y_NxS = self.examples(split)["y"][:, self.scored_from :]
        return memoryless_baseline(y_NxS, self.recall_len)

    def encode(self, x):
        return jax.nn.one_hot(x, COPY_CLASSES, dtype=jnp.float32)

    def logits(self, params, x, rng=None):
        """Logits [B, S, 10] from tokens [B, S]."""
        h_BxTxH = self.hidden_states(params, x, rng)
        return models.dense(params["head"], h_BxTxH, self.cell.compute_dtype)

    def loss(self, params, carry, batch, rng, train):
        logits_BxTxK = self.logits(params, batch["x"], rng if train else None)
        logits_BxSxK = logits_BxTxK[:, self.scored_from :]
        y_BxS = batch["y"][:, self.scored_from :]
        logp_BxSxK = jax.nn.log_softmax(logits_BxSxK, axis=-1)
        nll_BxS = -jnp.take_along_axis(logp_BxSxK, y_BxS[:, :, None], axis=-1)[:, :, 0]
        w_Bx1 = batch["weight"][:, None]
        steps = nll_BxS.shape[1]
        nll = jnp.sum(w_Bx1 * nll_BxS)
        tokens = jnp.sum(batch["weight"]) * steps
        recall = self.recall_len
        hit_BxK = jnp.argmax(logits_BxSxK[:, -recall:], axis=-1) == y_BxS[:, -recall:]
        correct = jnp.sum(w_Bx1 * hit_BxK)
        sums = {
            "nll": nll,
            "tokens": tokens,
            "correct": correct,
            "copy_tokens": jnp.sum(batch["weight"]) * recall,
        }
        return nll / jnp.maximum(tokens, 1.0), (carry, sums)

    def summarize(self, sums):
        ce = float(sums["nll"]) / max(float(sums["tokens"]), 1.0)
        acc = float(sums["correct"]) / max(float(sums["copy_tokens"]), 1.0)
        return {"loss": ce, "cross_entropy": ce, "copy_accuracy": acc}


class SelectiveCopyTask(CopyTask):
    """Selective copying: recall K symbols scattered among T noise steps, in order.

    Scored only on the K answer steps (the copy task scores every step).
    """

    name = "selective_copy"
    data_fields = ("length", "num_tokens", "num_valid", "num_test")

    @classmethod
    def validate(cls, config):
        super().validate(config)
        tokens, length = int(config.data.num_tokens), int(config.data.length)
        if not 1 <= tokens <= length:
            raise ConfigError(
                f"config.data.num_tokens={tokens} must be between 1 and config.data.length="
                f"{length} (the symbols sit at distinct steps of the noise part)."
            )

    @property
    def recall_len(self) -> int:
        return int(self.config.data.num_tokens)

    @property
    def scored_from(self) -> int:
        return self.length

    def make_examples(self, rng, n):
        x, y = selective_copy_batch(rng, self.length, self.recall_len, n)
        return {"x": x, "y": y}
