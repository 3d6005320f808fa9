"""MNIST-1D sequence classification (Greydanus & Kobak 2024): 40-step 1-D signals, 10 classes.

Data: data/mnist1d/mnist1d.npz (the dataset's default arguments, generated with
the authors' package; provenance in data/SOURCES.md): 4,000 training and 1,000 test
sequences of length 40, standardised by the generator. The last `num_valid` (default 400)
training sequences are held out for validation; the test set is the published one.

Models (config.model.architecture):
  'rnn'       a recurrent layer over the 40 steps (any `cell`, `hidden_size` units,
              `bidirectional`), then a dense layer to 10 logits from `head`:
                'flatten'  the outputs of every step, concatenated (the published GRU baseline:
                           6 units per direction, a linear layer on the 480 flattened outputs)
                'mean'     the mean of the outputs over the steps
                'last'     the final carry's h (both directions' with `bidirectional`)
              `init_scale` s > 0 redraws every recurrent parameter uniform in [-s, s]
              (s = 1/sqrt(hidden) is PyTorch's nn.GRU / nn.LSTM initialisation, the published
              baseline's); 0 keeps the cells' own.
The published non-recurrent baselines, as the authors' notebooks/models.py (ConvBase, MLPBase,
LinearBase), every layer with PyTorch's default init (U[+-1/sqrt(fan_in)]):
  'cnn'       h1 = ReLU(conv(x; kernel 5, stride 2, pad 1))     40 -> 19 steps, `hidden_size`
              h2 = ReLU(conv(h1; kernel 3, stride 2, pad 1))    19 -> 10        channels (25)
              h3 = ReLU(conv(h2; kernel 3, stride 2, pad 1))    10 -> 5
              logits = W flatten(h3) + b                        (5 x 25 = 125 features)
  'mlp'       h1 = ReLU(W1 x + b1); h2 = h1 + ReLU(W2 h1 + b2); logits = W3 h2 + b3
              (x the 40 values, `hidden_size` units: 100)
  'logistic'  logits = W x + b (multinomial logistic regression on the 40 values)
`cell`, `bidirectional`, `head` and `init_scale` shape the 'rnn' model only. Cross-entropy; loss
and accuracy reported.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from train import models
from train.data import base as data_base
from train.errors import ConfigError
from train.tasks import base

PATH = "data/mnist1d/mnist1d.npz"
HEADS = ("flatten", "mean", "last")
ARCHITECTURES = ("rnn", "cnn", "mlp", "logistic")
CLASSES = 10
# ConvBase's layers: (kernel, stride, padding); channels = config.model.hidden_size.
CONV_LAYERS = ((5, 2, 1), (3, 2, 1), (3, 2, 1))


def load(path: str = PATH, num_valid: int = 400) -> dict[str, dict[str, np.ndarray]]:
    """{'train', 'valid', 'test'}: {'x': [N, 40, 1] float32, 'y': [N] int32} (checksummed)."""
    import io

    resolved = data_base.check_data_path(path)
    raw = resolved.read_bytes()
    data_base.verify_checksum(resolved, raw)
    with np.load(io.BytesIO(raw)) as z:
        x, y, x_test, y_test = z["x"], z["y"], z["x_test"], z["y_test"]
    if not 0 < num_valid < len(y):
        raise ConfigError(f"config.data.num_valid={num_valid}; valid: 1 .. {len(y) - 1}.")
    cut = len(y) - num_valid
    return {
        "train": {"x": x[:cut, :, None], "y": y[:cut]},
        "valid": {"x": x[cut:, :, None], "y": y[cut:]},
        "test": {"x": x_test[:, :, None], "y": y_test},
    }


def _is_layer_norm(path) -> bool:
    return any(str(getattr(k, "key", "")).startswith("ln_") for k in path)


class MNIST1DTask(base.Task):
    """See the module docstring."""

    name = "mnist1d"
    model_defaults = {
        "architecture": "rnn",
        "bidirectional": True,
        "head": "flatten",
        "init_scale": 0.0,
    }
    model_fields = tuple(model_defaults)
    data_fields = ("num_valid",)
    unused_fields = {"train.seq_len": "a sequence is 40 steps"}

    @classmethod
    def validate(cls, config):
        if not float(config.model.get("init_scale", 0.0)) >= 0:  # also refuses NaN
            raise ConfigError(
                f"config.model.init_scale must be >= 0, got {config.model.init_scale}."
            )
        head = config.model.get("head", "flatten")
        if head not in HEADS:
            raise ConfigError(f"config.model.head={head!r}; valid: {', '.join(HEADS)}.")
        architecture = config.model.get("architecture", "rnn")
        if architecture not in ARCHITECTURES:
            raise ConfigError(
                f"config.model.architecture={architecture!r}; valid: {', '.join(ARCHITECTURES)}."
            )

    def __init__(self, config):
        super().__init__(config)
        self.splits = load(config.data.path or PATH, int(config.data.get("num_valid", 400)))
        m = config.model
        self.architecture = m.get("architecture", "rnn")
        self.head = m.get("head", "flatten")
        self.cell = models.make_cell(config)
        self.stack = models.make_stack(config, self.cell, bool(m.get("bidirectional", True)))
        self.steps = self.splits["train"]["x"].shape[1]

    def _features(self) -> int:
        width = self.stack.output_size
        return width * self.steps if self.head == "flatten" else width

    def init_params(self, rng):
        if self.architecture != "rnn":
            return _baseline_init(rng, self.architecture, self.steps, self.config.model.hidden_size)
        k_rnn, k_head, k_uniform = jax.random.split(rng, 3)
        rnn = self.stack.init(k_rnn, 1)
        scale = float(self.config.model.get("init_scale", 0.0))
        if scale > 0:  # layer-norm scales and biases keep 1 and 0
            rnn = models.uniform_init(k_uniform, rnn, scale, keep=_is_layer_norm)
        return {"rnn": rnn, "head": models.torch_dense_init(k_head, self._features(), CLASSES)}

    def logits(self, params, x_BxTx1, rng=None):
        if self.architecture != "rnn":
            return _baseline_logits(params, self.architecture, x_BxTx1)
        ys, carries = self.stack(params["rnn"], x_BxTx1, rng=rng, **self.scan_kwargs)
        if self.head == "flatten":
            features = ys.reshape(ys.shape[0], -1)
        elif self.head == "mean":
            features = jnp.mean(ys, axis=1)
        else:  # the final h of the top layer (each direction's own end with bidirectional)
            top = carries[-1]
            tops = top if isinstance(top, tuple) and not hasattr(top, "h") else (top,)
            features = jnp.concatenate([c.h for c in tops], axis=-1)
        return models.dense(params["head"], features, self.cell.compute_dtype)

    def loss(self, params, carry, batch, rng, train):
        logits = self.logits(params, batch["x"], rng if train else None).astype(jnp.float32)
        logp = jax.nn.log_softmax(logits, axis=-1)
        nll_B = -jnp.take_along_axis(logp, batch["y"][:, None], axis=-1)[:, 0]
        w = batch["weight"]
        sums = {
            "nll": jnp.sum(w * nll_B),
            "correct": jnp.sum(w * (jnp.argmax(logits, axis=-1) == batch["y"])),
            "count": jnp.sum(w),
        }
        return sums["nll"] / jnp.maximum(sums["count"], 1.0), (carry, sums)

    def summarize(self, sums):
        count = max(float(sums["count"]), 1.0)
        return {"loss": float(sums["nll"]) / count, "accuracy": float(sums["correct"]) / count}

    def train_iterator(self):
        train = self.splits["train"]
        return data_base.EpochIterator(
            len(train["y"]),
            int(self.config.train.batch_size),
            int(self.config.seed),
            lambda idx: {k: v[idx] for k, v in train.items()},
        )

    def eval_batches(self, split):
        data = self.splits[split]
        return data_base.padded_batches(
            len(data["y"]),
            int(self.config.eval.batch_size),
            lambda idx: {k: v[idx] for k, v in data.items()},
        )

    def steps_per_epoch(self):
        return max(1, len(self.splits["train"]["y"]) // int(self.config.train.batch_size))

    def data_summary(self):
        sizes = "/".join(f"{len(self.splits[s]['y']):,}" for s in ("train", "valid", "test"))
        return f"MNIST-1D: {sizes} sequences (train/valid/test) of {self.steps} steps"


# -- the published non-recurrent baselines (module docstring) --------------------------------
def _conv_lengths(steps: int) -> list[int]:
    """The sequence length after each of CONV_LAYERS: floor((T + 2 p - k) / s) + 1."""
    lengths = []
    for kernel, stride, pad in CONV_LAYERS:
        steps = (steps + 2 * pad - kernel) // stride + 1
        lengths.append(steps)
    return lengths


def _baseline_init(rng, architecture: str, steps: int, width: int) -> dict:
    keys = jax.random.split(rng, 4)
    if architecture == "logistic":
        return {"head": models.torch_dense_init(keys[0], steps, CLASSES)}
    if architecture == "mlp":
        return {
            "dense1": models.torch_dense_init(keys[0], steps, width),
            "dense2": models.torch_dense_init(keys[1], width, width),
            "head": models.torch_dense_init(keys[2], width, CLASSES),
        }
    params, channels = {}, 1
    for i, (kernel, _, _) in enumerate(CONV_LAYERS):  # PyTorch's Conv1d: fan_in = k C_in
        dense = models.torch_dense_init(keys[i], kernel * channels, width)
        params[f"conv{i + 1}"] = {"w": dense["w"].reshape(kernel, channels, width), "b": dense["b"]}
        channels = width
    flat = _conv_lengths(steps)[-1] * width
    params["head"] = models.torch_dense_init(keys[3], flat, CLASSES)
    return params


def _baseline_logits(params, architecture: str, x_BxTx1):
    x_BxT = x_BxTx1[..., 0]
    if architecture == "logistic":
        return models.dense(params["head"], x_BxT)
    if architecture == "mlp":
        h = jax.nn.relu(models.dense(params["dense1"], x_BxT))
        h = h + jax.nn.relu(models.dense(params["dense2"], h))
        return models.dense(params["head"], h)
    h = x_BxTx1
    for i, (_, stride, pad) in enumerate(CONV_LAYERS):
        p = params[f"conv{i + 1}"]
        h = jax.lax.conv_general_dilated(
            h, p["w"], (stride,), [(pad, pad)], dimension_numbers=("NWC", "WIO", "NWC")
        )
        h = jax.nn.relu(h + p["b"][None, None])
    # PyTorch flattens [B, C, T] channel-major; the order only permutes the head's rows.
    return models.dense(params["head"], jnp.swapaxes(h, 1, 2).reshape(h.shape[0], -1))
