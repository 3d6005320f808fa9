"""Speech on FSDD (`train/data/speech.py`): isolated spoken digits (`spoken_digits`, one digit
per recording) and connected digit strings recognised with CTC (`connected_digits`, below).

Data (config.data): `split` ('speaker_dependent': the source's takes 0-4 test, 5-9 valid,
10-49 train; 'speaker_independent': `test_speaker` and `valid_speaker` held out whole),
`cache_dir` ('' = ~/.cache/rnn_cells/fsdd). Inputs are 40 log-mel frames per 10 ms, normalised
per feature (`normalization`):
  'train'      x <- (x - mu_train) / sigma_train, the mean and std of every training frame
               (the default; the test recordings never inform it);
  'utterance'  x <- (x - mu_u) / sigma_u, each recording's own (for connected digits each
               string's own) frame mean and std: cepstral mean and variance normalisation,
               which removes a speaker's or channel's constant offset in the log-mel domain.
A batch is padded to the longest recording (226 frames) and `lengths` keeps the padding out
of the model: outputs, pooling and gradients are those of each recording alone.

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
import optax

from train import models
from train.data import base as data_base
from train.data import speech
from train.errors import ConfigError
from train.tasks import base, ctc

ARCHITECTURES = ("rnn", "cnn", "logistic")
NORMALIZATIONS = ("train", "utterance")
CNN_KERNEL = 5
EVAL_SEED = 20260101  # the connected-digit valid/test strings: the same for every run seed


def load_split(data):
    """(utterances, split masks, mean, std): the per-feature statistics of the training
    recordings' frames, for normalisation."""
    utterances = speech.load_utterances(cache_dir=data.get("cache_dir", "") or None)
    masks = speech.split_masks(
        utterances, data.split, data.get("test_speaker", ""), data.get("valid_speaker", "")
    )
    train_frames = np.concatenate(
        [f for f, keep in zip(utterances.features, masks["train"], strict=True) if keep]
    )
    mean = train_frames.mean(0).astype(np.float32)
    std = np.maximum(train_frames.std(0), 1e-5).astype(np.float32)
    return utterances, masks, mean, std


def normalize(frames_FxM, mean_M, std_M, normalization: str) -> np.ndarray:
    """The frames normalised per feature: with the training statistics ('train') or with the
    frames' own ('utterance'); see the module docstring."""
    if normalization == "utterance":
        mean_M = frames_FxM.mean(0)
        std_M = np.maximum(frames_FxM.std(0), 1e-5)
    return ((frames_FxM - mean_M) / std_M).astype(np.float32)


def check_normalization(data, architecture: str = "rnn") -> None:
    normalization = data.get("normalization", "train")
    if normalization not in NORMALIZATIONS:
        raise ConfigError(
            f"config.data.normalization={normalization!r}; valid: {', '.join(NORMALIZATIONS)}."
        )
    if normalization == "utterance" and architecture == "logistic":
        raise ConfigError(
            "config.data.normalization='utterance' makes every recording's mean vector zero, "
            "the logistic model's only input; use 'train' with model.architecture='logistic'."
        )


class SpokenDigitsData:
    """Normalised features, digit labels and the split of every recording."""

    def __init__(self, data):
        utterances, masks, self.mean, self.std = load_split(data)
        self.normalization = data.get("normalization", "train")
        self.max_frames = max(len(f) for f in utterances.features)
        self.num_features = len(self.mean)
        self.splits = {}
        for name, mask in masks.items():
            idx = np.flatnonzero(mask)
            x = np.zeros((len(idx), self.max_frames, self.num_features), np.float32)
            lengths = np.zeros((len(idx),), np.int32)
            for row, i in enumerate(idx):
                f = normalize(utterances.features[i], self.mean, self.std, self.normalization)
                x[row, : len(f)] = f
                lengths[row] = len(f)
            self.splits[name] = {"x": x, "lengths": lengths, "y": utterances.digit[idx]}

    def take(self, split: str, idx) -> dict[str, np.ndarray]:
        return {k: v[idx] for k, v in self.splits[split].items()}

    def features(self, audio) -> np.ndarray:
        """Normalised frames [F, 40] of one waveform (as the recordings above)."""
        return normalize(speech.log_mel(audio), self.mean, self.std, self.normalization)


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
    data_fields = ("split", "test_speaker", "valid_speaker", "cache_dir", "normalization")
    unused_fields = {
        "train.seq_len": "a recording is one sequence",
        "data.path": "the FSDD archives under data/fsdd are read",
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
        check_normalization(d, architecture)

    def __init__(self, config):
        super().__init__(config)
        self.data = SpokenDigitsData(config.data)
        m = config.model
        self.architecture = m.get("architecture", "rnn")
        self.cell = models.make_cell(config)
        if self.architecture == "rnn":
            self.stack = models.make_stack(config, self.cell, bool(m.get("bidirectional", True)))

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


# -- connected digits (CTC) -----------------------------------------------------------------
class ConnectedDigitsData:
    """Digit strings (`speech.digit_string`): endless training strings from the training
    recordings, fixed valid/test strings (the same for every run seed) from theirs; features
    normalised with the training recordings' statistics and stacked `frame_stack` at a time."""

    def __init__(self, data):
        self.utterances, masks, self.mean, self.std = load_split(data)
        self.normalization = data.get("normalization", "train")
        self.spec = speech.StringSpec(max_digits=int(data.max_digits))
        self.frame_stack = int(data.frame_stack)
        self.pools = {name: np.flatnonzero(mask) for name, mask in masks.items()}
        fft = speech.FeatureSpec()
        longest = int(self.spec.max_seconds * speech.SAMPLE_RATE)
        self.max_frames = (1 + (longest - fft.n_fft) // fft.hop) // self.frame_stack
        self.num_features = len(self.mean) * self.frame_stack
        self.fixed = {
            split: self.strings(
                np.random.default_rng([EVAL_SEED, i]), int(data[f"num_{split}"]), split
            )
            for i, split in enumerate(("valid", "test"), 1)
        }

    def features(self, audio) -> np.ndarray:
        """Normalised, stacked frames [F // frame_stack, num_features] of one waveform."""
        frames = normalize(speech.log_mel(audio), self.mean, self.std, self.normalization)
        keep = len(frames) // self.frame_stack * self.frame_stack
        return frames[:keep].reshape(-1, self.num_features)

    def strings(self, rng, count: int, split: str) -> dict[str, np.ndarray]:
        """`count` strings from `split`'s recordings as a padded batch: x [n, T, F], lengths,
        labels [n, max_digits] (digit + 1; 0 pads), label_lengths."""
        width = self.spec.max_digits
        x = np.zeros((count, self.max_frames, self.num_features), np.float32)
        lengths = np.zeros((count,), np.int32)
        labels = np.zeros((count, width), np.int32)
        label_lengths = np.zeros((count,), np.int32)
        for row in range(count):
            audio, digits, _ = speech.digit_string(
                self.utterances, self.pools[split], rng, self.spec
            )
            f = self.features(audio)
            x[row, : len(f)], lengths[row] = f, len(f)
            labels[row, : len(digits)], label_lengths[row] = digits + 1, len(digits)
        return {"x": x, "lengths": lengths, "labels": labels, "label_lengths": label_lengths}


class ConnectedDigitsTask(base.Task):
    """Digit strings recognised with CTC (Graves et al. 2006): a (bidirectional) recurrent
    stack, a dense layer to 11 classes per frame (blank + 10 digits), optax.ctc_loss; greedy
    decoding in the evaluation only (digit error rate = edits / reference digits, string accuracy),
    prefix beam search in `decode` (experiments.tools.transcribe)."""

    name = "connected_digits"
    model_defaults = {"bidirectional": True}
    model_fields = tuple(model_defaults)
    data_fields = (
        "split", "test_speaker", "valid_speaker", "cache_dir", "normalization", "max_digits",
        "frame_stack", "num_valid", "num_test",
    )  # fmt: skip
    unused_fields = SpokenDigitsTask.unused_fields

    @classmethod
    def validate(cls, config):
        d = config.data
        speech.check_split(d.split, d.get("test_speaker", ""), d.get("valid_speaker", ""))
        check_normalization(d)
        for field, low in (
            ("max_digits", 1),
            ("frame_stack", 1),
            ("num_valid", 1),
            ("num_test", 1),
        ):
            if int(d[field]) < low:
                raise ConfigError(f"config.data.{field}={d[field]} must be >= {low}.")

    def __init__(self, config):
        super().__init__(config)
        self.data = ConnectedDigitsData(config.data)
        m = config.model
        self.cell = models.make_cell(config)
        self.stack = models.make_stack(config, self.cell, bool(m.get("bidirectional", True)))

    def init_params(self, rng):
        k_rnn, k_head = jax.random.split(rng)
        return {
            "rnn": self.stack.init(k_rnn, self.data.num_features),
            "head": models.dense_init(k_head, self.stack.output_size, speech.DIGITS + 1),
        }

    def logits(self, params, x_BxTxF, lengths_B, rng=None):
        """Per-frame class logits [B, T, 11] (class 0: the blank)."""
        ys, _ = self.stack(params["rnn"], x_BxTxF, lengths=lengths_B, rng=rng, **self.scan_kwargs)
        return models.dense(params["head"], ys, self.cell.compute_dtype).astype(jnp.float32)

    def loss(self, params, carry, batch, rng, train):
        logits = self.logits(params, batch["x"], batch["lengths"], rng if train else None)
        steps, width = logits.shape[1], batch["labels"].shape[1]
        frame_pad = (jnp.arange(steps)[None, :] >= batch["lengths"][:, None]).astype(jnp.float32)
        label_pad = (jnp.arange(width)[None, :] >= batch["label_lengths"][:, None]).astype(
            jnp.float32
        )
        nll_B = optax.ctc_loss(logits, frame_pad, batch["labels"], label_pad, blank_id=ctc.BLANK)
        w = batch["weight"]
        count = jnp.sum(w)
        sums = {"nll": jnp.sum(w * nll_B), "count": count}
        if not train:  # decoding and its edit distances: evaluation only, not the train step
            tokens, keep = ctc.greedy_decode(logits, batch["lengths"])
            edits_B = ctc.edit_distances(tokens, keep, batch["labels"], batch["label_lengths"])
            sums |= {
                "edits": jnp.sum(w * edits_B),
                "digits": jnp.sum(w * batch["label_lengths"]),
                "correct": jnp.sum(w * (edits_B == 0)),
            }
        return sums["nll"] / jnp.maximum(count, 1.0), (carry, sums)

    def summarize(self, sums):
        count = max(float(sums["count"]), 1.0)
        metrics = {"loss": float(sums["nll"]) / count}
        if "edits" in sums:
            metrics["digit_error_rate"] = float(sums["edits"]) / max(float(sums["digits"]), 1.0)
            metrics["string_accuracy"] = float(sums["correct"]) / count
        return metrics

    def decode(self, params, x_BxTxF, lengths_B, beam: int = 0) -> list[list[int]]:
        """The recognised digits of each row: greedy (beam=0) or prefix beam search."""
        logits = jax.jit(self.logits)(params, jnp.asarray(x_BxTxF), jnp.asarray(lengths_B))
        if beam <= 0:
            return ctc.decode_labels(*ctc.greedy_decode(logits, jnp.asarray(lengths_B)))
        log_probs = np.asarray(jax.nn.log_softmax(logits, axis=-1))
        return [
            [k - 1 for k in ctc.prefix_beam_search(lp[:n], beam)]
            for lp, n in zip(log_probs, np.asarray(lengths_B), strict=True)
        ]

    def train_iterator(self):
        batch_size = int(self.config.train.batch_size)
        return data_base.SeededIterator(
            lambda rng: (
                self.data.strings(rng, batch_size, "train")
                | {"weight": np.ones((batch_size,), np.float32)}
            ),
            int(self.config.seed),
        )

    def eval_batches(self, split):
        data = self.data.fixed[split]
        return data_base.padded_batches(
            len(data["lengths"]),
            int(self.config.eval.batch_size),
            lambda idx: {k: v[idx] for k, v in data.items()},
        )

    def data_summary(self):
        sizes = "/".join(f"{len(self.data.fixed[s]['lengths']):,}" for s in ("valid", "test"))
        return (
            f"FSDD {self.config.data.split} digit strings of 1-{self.data.spec.max_digits}: "
            f"generated per training step, {sizes} fixed (valid/test); up to "
            f"{self.data.max_frames} frames of {self.data.num_features} features"
        )
