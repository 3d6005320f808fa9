"""Isolated spoken-digit recognition on FSDD (`train/data/speech.py`): one digit per recording.

Data (config.data): `split` ('speaker_dependent': the source's takes 0-4 test, 5-9 valid,
10-49 train; 'speaker_independent': `test_speaker` and `valid_speaker` held out whole),
`cache_dir` ('' = ~/.cache/rnn_cells/fsdd). Inputs are 40 log-mel frames per 10 ms, normalised
with the training frames' mean and std; a batch is padded to the longest recording (226
frames) and `lengths` keeps the padding out of the model: outputs, pooling and gradients are
those of each recording alone.

Models (config.model.architecture):
  'rnn'       a recurrent stack (any `cell`, `hidden_size`, `num_layers`, `dropout` between
              layers), `bidirectional` (a backward cell over each recording's own frames,
              outputs concatenated), then the mean of the top outputs over the valid frames
              and a dense layer to the 10 digit logits.
  'cnn'       the baseline of the issue: two 1-D convolutions over time (kernel 5, `hidden_size`
              channels, ReLU, 'same' padding, the padded frames zeroed before each), masked mean
              pooling, dense.
  'logistic'  the utterance-mean log-mel vector, one dense layer (multinomial logistic
              regression).
Loss: cross-entropy; metrics: loss and accuracy over the recordings of a split.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import cells
from train import models
from train.data import base as data_base
from train.data import speech
from train.errors import ConfigError
from train.tasks import base

ARCHITECTURES = ("rnn", "cnn", "logistic")
CNN_KERNEL = 5


class SpokenDigitsData:
    """Normalised features, digit labels and the split of every recording."""

    def __init__(self, data):
        utterances = speech.load_utterances(cache_dir=data.get("cache_dir", "") or None)
        masks = speech.split_masks(
            utterances, data.split, data.get("test_speaker", ""), data.get("valid_speaker", "")
        )
        train_frames = np.concatenate(
            [f for f, keep in zip(utterances.features, masks["train"], strict=True) if keep]
        )
        self.mean = train_frames.mean(0).astype(np.float32)
        self.std = np.maximum(train_frames.std(0), 1e-5).astype(np.float32)
        self.max_frames = max(len(f) for f in utterances.features)
        self.num_features = train_frames.shape[1]
        self.splits = {}
        for name, mask in masks.items():
            idx = np.flatnonzero(mask)
            x = np.zeros((len(idx), self.max_frames, self.num_features), np.float32)
            lengths = np.zeros((len(idx),), np.int32)
            for row, i in enumerate(idx):
                f = (utterances.features[i] - self.mean) / self.std
                x[row, : len(f)] = f
                lengths[row] = len(f)
            self.splits[name] = {"x": x, "lengths": lengths, "y": utterances.digit[idx]}

    def take(self, split: str, idx) -> dict[str, np.ndarray]:
        return {k: v[idx] for k, v in self.splits[split].items()}


def masked_mean(h_BxTxH, lengths_B):
    """Mean over the first lengths[b] steps of each row (an empty row gives zeros)."""
    valid = (jnp.arange(h_BxTxH.shape[1])[None, :] < lengths_B[:, None])[..., None]
    total = jnp.sum(jnp.where(valid, h_BxTxH, 0.0), axis=1)
    return total / jnp.maximum(lengths_B, 1)[:, None].astype(total.dtype)


class SpokenDigitsTask(base.Task):
    """Digit classification of whole recordings; see the module docstring."""

    name = "spoken_digits"
    model_defaults = {"architecture": "rnn", "bidirectional": True}
    model_fields = tuple(model_defaults)
    data_fields = ("split", "test_speaker", "valid_speaker", "cache_dir")
    unused_fields = {
        "train.seq_len": "a recording is one sequence",
        "data.path": "the FSDD archives under experiments/data/fsdd are read",
    }

    @classmethod
    def validate(cls, config):
        architecture = config.model.get("architecture", "rnn")
        if architecture not in ARCHITECTURES:
            raise ConfigError(
                f"config.model.architecture={architecture!r}; valid: {', '.join(ARCHITECTURES)}."
            )
        d = config.data
        speech.check_split(d.split, d.get("test_speaker", ""), d.get("valid_speaker", ""))

    def __init__(self, config):
        super().__init__(config)
        self.data = SpokenDigitsData(config.data)
        m = config.model
        self.architecture = m.get("architecture", "rnn")
        self.cell = models.make_cell(config)
        if self.architecture == "rnn":
            if m.get("bidirectional", True):
                layer = cells.Bidirectional(self.cell, self.cell)
                self.stack = cells.Stack((layer,) * int(m.num_layers), dropout=m.dropout)
            else:
                self.stack = models.make_stack(config, self.cell)

    # -- model ---------------------------------------------------------------------------------
    def init_params(self, rng):
        k_body, k_head = jax.random.split(rng)
        features, width = self.data.num_features, int(self.config.model.hidden_size)
        if self.architecture == "logistic":
            return {"head": models.torch_dense_init(k_head, features, speech.DIGITS)}
        if self.architecture == "cnn":
            k1, k2 = jax.random.split(k_body)
            return {
                "conv1": models.torch_dense_init(k1, CNN_KERNEL * features, width),
                "conv2": models.torch_dense_init(k2, CNN_KERNEL * width, width),
                "head": models.torch_dense_init(k_head, width, speech.DIGITS),
            }
        return {
            "rnn": self.stack.init(k_body, features),
            "head": models.dense_init(k_head, self.stack.output_size, speech.DIGITS),
        }

    def logits(self, params, x_BxTxF, lengths_B, rng=None):
        """Digit logits [B, 10]."""
        valid = (jnp.arange(x_BxTxF.shape[1])[None, :] < lengths_B[:, None])[..., None]
        if self.architecture == "logistic":
            pooled = masked_mean(x_BxTxF, lengths_B)
        elif self.architecture == "cnn":
            h = x_BxTxF
            for name in ("conv1", "conv2"):
                h = jax.nn.relu(_conv_same(jnp.where(valid, h, 0.0), params[name]))
            pooled = masked_mean(h, lengths_B)
        else:
            ys, _ = self.stack(
                params["rnn"], x_BxTxF, lengths=lengths_B, rng=rng, **self.scan_kwargs
            )
            pooled = masked_mean(ys, lengths_B)
        return models.dense(params["head"], pooled, self.cell.compute_dtype)

    def loss(self, params, carry, batch, rng, train):
        logits = self.logits(params, batch["x"], batch["lengths"], rng if train else None)
        logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
        nll_B = -jnp.take_along_axis(logp, batch["y"][:, None], axis=-1)[:, 0]
        w = batch["weight"]
        count = jnp.sum(w)
        sums = {
            "nll": jnp.sum(w * nll_B),
            "correct": jnp.sum(w * (jnp.argmax(logits, axis=-1) == batch["y"])),
            "count": count,
        }
        return sums["nll"] / jnp.maximum(count, 1.0), (carry, sums)

    def summarize(self, sums):
        count = max(float(sums["count"]), 1.0)
        return {"loss": float(sums["nll"]) / count, "accuracy": float(sums["correct"]) / count}

    # -- data ----------------------------------------------------------------------------------
    def train_iterator(self):
        n = len(self.data.splits["train"]["y"])
        return data_base.EpochIterator(
            n,
            int(self.config.train.batch_size),
            int(self.config.seed),
            lambda idx: self.data.take("train", idx),
        )

    def eval_batches(self, split):
        n = len(self.data.splits[split]["y"])
        return data_base.padded_batches(
            n, int(self.config.eval.batch_size), lambda idx: self.data.take(split, idx)
        )

    def steps_per_epoch(self):
        return max(1, len(self.data.splits["train"]["y"]) // int(self.config.train.batch_size))

    def data_summary(self):
        sizes = "/".join(f"{len(self.data.splits[s]['y']):,}" for s in ("train", "valid", "test"))
        return (
            f"FSDD {self.config.data.split}: {sizes} recordings (train/valid/test), "
            f"{self.data.num_features} log-mel features, up to {self.data.max_frames} frames"
        )


def _conv_same(h_BxTxC, params):
    """A 1-D convolution over time, kernel CNN_KERNEL, 'same' padding, as one dense layer over
    the stacked shifted frames (weights [K C, C'])."""
    pad = CNN_KERNEL // 2
    padded = jnp.pad(h_BxTxC, ((0, 0), (pad, pad), (0, 0)))
    steps = h_BxTxC.shape[1]
    windows = jnp.concatenate([padded[:, k : k + steps] for k in range(CNN_KERNEL)], axis=-1)
    return windows @ params["w"] + params["b"][None, None]
