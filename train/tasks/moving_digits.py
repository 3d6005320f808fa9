"""Moving digits: predict the next frames of handwritten digits bouncing on a canvas, the
spatio-temporal task of Srivastava et al. (2015, "Moving MNIST") and Shi et al. (2015, the
ConvLSTM paper), built from the 8 x 8 digits bundled in the repository (data/digits/, the UCI
set scikit-learn ships; no download).

Data. Each image's 0..16 counts become intensities in [0, 1], scaled up bilinearly to
`digit_size` pixels. A sequence places `num_digits` digits on a `canvas_size` square canvas,
each at a uniform random position with velocity `speed` pixels per frame in a uniform random
direction; a digit that would leave the canvas bounces (its position reflected at the wall,
that velocity component reversed). Positions are rounded to whole pixels; overlapping digits
combine by the pixel-wise maximum. The model reads `input_frames` frames and predicts the next
`output_frames`. The digit images are split so test sequences show digits no training sequence
shows: images [0, 1297) train, [1297, 1547) valid, [1547, 1797) test. Train batch k is drawn
from `np.random.default_rng([seed, 0, k])` (the iterator's position is k); valid and test are
fixed sets from [seed, 1] and [seed, 2].

Models (config.model.architecture):
  'encoder_forecaster'  Shi et al.'s: an encoder stack of `num_layers` recurrent layers reads
      the input frames; a forecaster stack of the same shape, started from the encoder's final
      carries, runs `output_frames` steps on no input (the paper's unconditioned forecaster:
      an all-zero input of one channel per position, or of one feature, whose input weights
      go unused: 4F K^2 or 4H parameters) and a head maps its top layer to per-pixel logits.
      With the cell 'convlstm' (the config sets spatial_shape to the canvas) the head is a
      1 x 1 convolution (one weight per feature map) and the state keeps the canvas' layout;
      with any other cell the frames are flattened (canvas_size^2 inputs, the FC-LSTM of
      Srivastava et al. and Shi et al.'s comparison) and the head is a dense layer to the
      canvas_size^2 pixels. Shi et al.'s head reads every forecaster layer; this one reads the
      top layer.
  'conv3d'  the non-recurrent baseline: `num_layers` 3-D convolutions over (frame, row,
      column), kernel 3 x conv_kernel x conv_kernel, 'same' padding (`jax.lax.
      conv_general_dilated`), `hidden_size` channels, ReLU; then each pixel's channels of all
      input frames (input_frames x hidden_size values) go through one dense map to its
      output_frames logits (every output frame sees every input frame; the spatial reach is
      num_layers * (conv_kernel - 1) + 1 pixels).
The copy-last-frame baseline (every predicted frame = the last input frame; no parameters) is
computed on each fixed set by `copy_last_baseline`, and the mean-frame baseline (every
predicted frame = the training frames' per-pixel mean, the best input-blind constant) by
`mean_frame_baseline`, with the same metrics.

Loss: per-pixel binary cross-entropy of sigmoid(logit) against the target intensity, averaged
over pixels, frames and sequences (`loss`). Reported besides, per frame as the Moving MNIST
literature reports them (summed over a frame's pixels, averaged over frames and sequences):
`mse_per_frame` of the predicted intensities sigmoid(logit), `bce_per_frame`, and
`mse_frame_k` for each predicted frame k = 1..output_frames.
"""

from __future__ import annotations

import gzip
import io

import jax
import jax.numpy as jnp
import numpy as np

import cells
from cells.convlstm import conv_same
from train import models
from train.data import base as data_base
from train.errors import ConfigError
from train.tasks import base

PATH = "data/digits/digits.csv.gz"
ARCHITECTURES = ("encoder_forecaster", "conv3d")
# Digit images each split draws from (the file's 1,797 rows).
IMAGE_SPLITS = {"train": (0, 1297), "valid": (1297, 1547), "test": (1547, 1797)}
_SPLIT_STREAM = {"train": 0, "valid": 1, "test": 2}
# Copy-last's BCE needs probabilities inside (0, 1): p = eps + (1 - 2 eps) x_last, eps from
# this grid, the one with the lowest BCE on the validation set (`copy_last_baseline`).
COPY_LAST_EPS = tuple(float(e) for e in np.geomspace(1e-4, 0.3, 25))


# -- data -------------------------------------------------------------------------------------
def load_digits(path: str = PATH) -> np.ndarray:
    """The bundled 8 x 8 digits as intensities [1797, 8, 8] float32 in [0, 1] (checksummed)."""
    resolved = data_base.check_data_path(path)
    raw = resolved.read_bytes()
    data_base.verify_checksum(resolved, raw)
    try:
        table = np.loadtxt(io.BytesIO(gzip.decompress(raw)), delimiter=",", dtype=np.float32)
    except (OSError, ValueError) as e:
        raise ConfigError(
            f"config.data.path={path!r}: not a gzip CSV of 65 columns (64 pixels and a label, "
            f"as data/digits/digits.csv.gz): {e}"
        ) from None
    if table.ndim != 2 or table.shape[1] != 65 or len(table) < IMAGE_SPLITS["test"][1]:
        raise ConfigError(
            f"config.data.path={path!r}: expected at least {IMAGE_SPLITS['test'][1]} rows of 65 "
            f"columns, got shape {table.shape}."
        )
    return table[:, :64].reshape(-1, 8, 8) / 16.0


def scale_digits(images_Nx8x8: np.ndarray, size: int) -> np.ndarray:
    """Bilinear upscaling to [N, size, size] (`jax.image.resize`, half-pixel centres)."""
    scaled = jax.image.resize(jnp.asarray(images_Nx8x8), (len(images_Nx8x8), size, size), "linear")
    return np.clip(np.asarray(scaled), 0.0, 1.0)


def trajectories(rng: np.random.Generator, n: int, digits: int, frames: int, travel: int,
                 speed: float) -> np.ndarray:  # fmt: skip
    """Integer top-left corners [n, digits, frames, 2] bouncing inside [0, travel]."""
    position = rng.uniform(0.0, travel, (n, digits, 2))
    angle = rng.uniform(0.0, 2.0 * np.pi, (n, digits))
    velocity = speed * np.stack([np.sin(angle), np.cos(angle)], axis=-1)
    corners = np.empty((n, digits, frames, 2), np.int64)
    for t in range(frames):
        corners[:, :, t] = np.rint(position)
        position = position + velocity
        low, high = position < 0.0, position > travel
        position = np.where(low, -position, np.where(high, 2.0 * travel - position, position))
        velocity = np.where(low | high, -velocity, velocity)
    return corners


def render(images_NxSxS: np.ndarray, corners: np.ndarray, canvas: int) -> np.ndarray:
    """Frames [n, frames, canvas, canvas]: digit d of sequence i (images_NxSxS[i, d] is its
    image; images [n, digits, S, S]) at corners[i, d, t], combined by the maximum."""
    n, digits, frames, _ = corners.shape
    size = images_NxSxS.shape[-1]
    out = np.zeros((n, frames, canvas, canvas), np.float32)
    for i in range(n):
        for d in range(digits):
            for t in range(frames):
                y, x = corners[i, d, t]
                window = out[i, t, y : y + size, x : x + size]
                np.maximum(window, images_NxSxS[i, d], out=window)
    return out


def make_sequences(rng, images_NxSxS, n, canvas, digits, frames, speed) -> np.ndarray:
    """n sequences [n, frames, canvas, canvas] of `digits` digits drawn from images_NxSxS."""
    size = images_NxSxS.shape[-1]
    chosen = images_NxSxS[rng.integers(0, len(images_NxSxS), (n, digits))]
    corners = trajectories(rng, n, digits, frames, canvas - size, speed)
    return render(chosen, corners, canvas)


# -- metrics ----------------------------------------------------------------------------------
def frame_sums(logits_BxTxP, target_BxTxP, weight_B) -> dict:
    """Weighted sums over a batch: 'bce' and 'se' (all pixels and frames), 'se_k' per frame k
    (1-based), 'count' (sequences). BCE from the logits (stable); SE of sigmoid(logit)."""
    logits = logits_BxTxP.astype(jnp.float32)
    bce = jnp.maximum(logits, 0.0) - logits * target_BxTxP + jnp.log1p(jnp.exp(-jnp.abs(logits)))
    se = jnp.square(jax.nn.sigmoid(logits) - target_BxTxP)
    w = weight_B[:, None]
    bce_BxT, se_BxT = jnp.sum(bce, axis=-1) * w, jnp.sum(se, axis=-1) * w
    sums = {"bce": jnp.sum(bce_BxT), "se": jnp.sum(se_BxT), "count": jnp.sum(weight_B)}
    se_T = jnp.sum(se_BxT, axis=0)
    sums.update({f"se_{k + 1}": se_T[k] for k in range(se_T.shape[0])})
    return sums


def summarize_sums(sums: dict, frames: int, pixels: int) -> dict[str, float]:
    count = max(float(sums["count"]), 1.0)
    out = {
        "loss": float(sums["bce"]) / (count * frames * pixels),
        "bce_per_frame": float(sums["bce"]) / (count * frames),
        "mse_per_frame": float(sums["se"]) / (count * frames),
    }
    out.update({f"mse_frame_{k}": float(sums[f"se_{k}"]) / count for k in range(1, frames + 1)})
    return out


# -- the task ---------------------------------------------------------------------------------
class MovingDigitsTask(base.Task):
    """See the module docstring."""

    name = "moving_digits"
    model_defaults = {"architecture": "encoder_forecaster", "conv_kernel": 5}
    model_fields = tuple(model_defaults)
    data_fields = (
        "canvas_size", "digit_size", "num_digits", "speed", "input_frames", "output_frames",
        "num_valid", "num_test",
    )  # fmt: skip
    unused_fields = {"train.seq_len": "a sequence is input_frames + output_frames frames"}

    @classmethod
    def validate(cls, config):
        d, m = config.data, config.model
        for field in ("canvas_size", "digit_size", "num_digits", "input_frames", "output_frames",
                      "num_valid", "num_test"):  # fmt: skip
            if int(d[field]) < 1:
                raise ConfigError(f"config.data.{field}={d[field]} must be >= 1.")
        if int(d.digit_size) > int(d.canvas_size):
            raise ConfigError(
                f"config.data.digit_size={d.digit_size} must be at most canvas_size="
                f"{d.canvas_size}."
            )
        if not float(d.speed) >= 0:
            raise ConfigError(f"config.data.speed={d.speed} must be >= 0 (pixels per frame).")
        architecture = m.get("architecture", "encoder_forecaster")
        if architecture not in ARCHITECTURES:
            raise ConfigError(
                f"config.model.architecture={architecture!r}; valid: {', '.join(ARCHITECTURES)}."
            )
        if int(m.get("conv_kernel", 5)) < 1:
            raise ConfigError(f"config.model.conv_kernel={m.conv_kernel} must be >= 1.")
        if m.get("block", "stack") != "stack":
            raise ConfigError(
                f"config.model.block={m.block!r}: moving_digits builds plain stacks; use 'stack'."
            )

    def __init__(self, config):
        super().__init__(config)
        d, m = config.data, config.model
        self.canvas, self.digit_size = int(d.canvas_size), int(d.digit_size)
        self.num_digits, self.speed = int(d.num_digits), float(d.speed)
        self.input_frames, self.output_frames = int(d.input_frames), int(d.output_frames)
        self.pixels = self.canvas * self.canvas
        self.architecture = m.get("architecture", "encoder_forecaster")
        self.conv_kernel = int(m.get("conv_kernel", 5))
        images = scale_digits(load_digits(d.path or PATH), self.digit_size)
        self.images = {split: images[lo:hi] for split, (lo, hi) in IMAGE_SPLITS.items()}
        self.cell = models.make_cell(config)
        self.conv = isinstance(self.cell, cells.ConvLSTM)
        if self.conv and self.cell.spatial_shape != (self.canvas, self.canvas):
            raise ConfigError(
                f"config.model.cell_options.spatial_shape={self.cell.spatial_shape} must be the "
                f"canvas, ({self.canvas}, {self.canvas})."
            )
        self.stack = models.make_stack(config, self.cell)  # the encoder; the forecaster alike
        seed = int(config.seed)
        self._examples = {
            split: {"x": self._sequences(np.random.default_rng([seed, _SPLIT_STREAM[split]]),
                                         split, int(d[f"num_{split}"]))}
            for split in ("valid", "test")
        }  # fmt: skip

    def _sequences(self, rng, split, n):
        frames = self.input_frames + self.output_frames
        return make_sequences(
            rng, self.images[split], n, self.canvas, self.num_digits, frames, self.speed
        )

    def examples(self, split: str) -> dict[str, np.ndarray]:
        """The fixed set of `split`: {'x': [n, input_frames + output_frames, canvas, canvas]}."""
        return self._examples[split]

    # -- model ----------------------------------------------------------------------------------
    def init_params(self, rng):
        keys = jax.random.split(rng, 3)
        if self.architecture == "conv3d":
            return self._conv3d_init(keys)
        width = self.stack.output_size
        head = (
            models.dense_init(keys[2], width // self.pixels, 1)  # a 1 x 1 convolution
            if self.conv
            else models.dense_init(keys[2], width, self.pixels)
        )
        return {
            "encoder": self.stack.init(keys[0], self.pixels),
            "forecaster": self.stack.init(keys[1], self._silence_width),
            "head": head,
        }

    @property
    def _silence_width(self) -> int:
        """The forecaster's (all-zero) input width: one channel per position for a ConvLSTM,
        one feature for other cells (its input weights then cost 4F K^2 or 4H parameters)."""
        return self.pixels if self.conv else 1

    def _conv3d_init(self, keys):
        channels, k = int(self.config.model.hidden_size), self.conv_kernel
        he = jax.nn.initializers.he_normal(in_axis=-2, out_axis=-1)
        params, c_in = {}, 1
        layer_keys = jax.random.split(keys[0], int(self.config.model.num_layers))
        for i, key in enumerate(layer_keys):
            params[f"conv{i + 1}"] = {
                "w": he(key, (3, k, k, c_in, channels), jnp.float32),
                "b": jnp.zeros((channels,), jnp.float32),
            }
            c_in = channels
        params["head"] = models.dense_init(
            keys[1], self.input_frames * channels, self.output_frames
        )
        return params

    def predict_logits(self, params, frames_BxTxCxC, rng=None):
        """Logits [B, output_frames, canvas^2] of the frames after the first input_frames."""
        batch = frames_BxTxCxC.shape[0]
        x = frames_BxTxCxC[:, : self.input_frames]
        if self.architecture == "conv3d":
            return self._conv3d_logits(params, x)
        x = x.reshape(batch, self.input_frames, self.pixels)
        k_enc, k_fc = (None, None) if rng is None else jax.random.split(rng)
        _, carries = self.stack(params["encoder"], x, rng=k_enc, **self.scan_kwargs)
        silence = jnp.zeros((batch, self.output_frames, self._silence_width), x.dtype)
        ys, _ = self.stack(
            params["forecaster"], silence, carry=carries, rng=k_fc, **self.scan_kwargs
        )
        if self.conv:  # [B, T, P * F] -> [B, T, P, F] -> one logit per pixel
            ys = ys.reshape(batch, self.output_frames, self.pixels, -1)
            return models.dense(params["head"], ys, self.cell.compute_dtype)[..., 0]
        return models.dense(params["head"], ys, self.cell.compute_dtype)

    def _conv3d_logits(self, params, x_BxTxCxC):
        h = x_BxTxCxC[..., None]
        for i in range(int(self.config.model.num_layers)):
            p = params[f"conv{i + 1}"]
            # XLA's convolution: im2col would hold 3 * k^2 copies of every activation.
            h = jax.nn.relu(cells.base.add_bias(conv_same(h, p["w"], method="lax"), p["b"]))
        batch, _, rows, cols, _ = h.shape
        per_pixel = jnp.transpose(h, (0, 2, 3, 1, 4)).reshape(batch, rows * cols, -1)
        logits = models.dense(params["head"], per_pixel)  # [B, P, output_frames]
        return jnp.swapaxes(logits, 1, 2)

    # -- loss and metrics ---------------------------------------------------------------------
    def targets(self, frames_BxTxCxC):
        batch = frames_BxTxCxC.shape[0]
        return frames_BxTxCxC[:, self.input_frames :].reshape(batch, self.output_frames, -1)

    def loss(self, params, carry, batch, rng, train):
        logits = self.predict_logits(params, batch["x"], rng if train else None)
        sums = frame_sums(logits, self.targets(batch["x"]), batch["weight"])
        denominator = jnp.maximum(sums["count"], 1.0) * self.output_frames * self.pixels
        return sums["bce"] / denominator, (carry, sums)

    def summarize(self, sums):
        return summarize_sums(sums, self.output_frames, self.pixels)

    def copy_last_baseline(self, split: str) -> dict[str, float]:
        """The copy-last-frame predictor's metrics on the fixed set of `split`: its squared
        errors of the last input frame itself, its BCE of p = eps + (1 - 2 eps) x_last with the
        eps of COPY_LAST_EPS that does best on the validation set (the 'eps' entry)."""

        def metrics(split, eps):
            frames = self._examples[split]["x"]
            last = frames[:, self.input_frames - 1].reshape(len(frames), 1, -1)
            p = eps + (1.0 - 2.0 * eps) * np.repeat(last, self.output_frames, axis=1)
            with np.errstate(divide="ignore"):  # eps = 0: logits +-inf, sigmoid exact
                logits = np.log(p) - np.log1p(-p)
            sums = frame_sums(jnp.asarray(logits), self.targets(frames), jnp.ones(len(frames)))
            return self.summarize(sums)

        eps = min(COPY_LAST_EPS, key=lambda e: metrics("valid", e)["loss"])
        smoothed, plain = metrics(split, eps), metrics(split, 0.0)
        squared = {k: v for k, v in plain.items() if k.startswith("mse")}
        return {**smoothed, **squared, "eps": eps}

    def mean_frame_baseline(self, split: str, sequences: int = 4096) -> dict[str, float]:
        """The best constant predictor's metrics on the fixed set of `split`: every predicted
        frame is the per-pixel mean intensity of `sequences` training sequences' target frames
        (drawn from the stream [seed, 3], apart from the training batches'). Under squared error
        and cross-entropy the per-pixel mean is the best prediction that ignores the input, so
        a model at this level has learned where digits tend to be, not where they are."""
        rng = np.random.default_rng([int(self.config.seed), 3])
        mean = self.targets(self._sequences(rng, "train", sequences)).mean(axis=(0, 1))
        p = np.clip(mean, 1e-6, 1.0 - 1e-6)  # a pixel no digit reached stays finite
        frames = self._examples[split]["x"]
        logits = np.broadcast_to(
            np.log(p) - np.log1p(-p), (len(frames), self.output_frames, p.size)
        )
        sums = frame_sums(jnp.asarray(logits), self.targets(frames), jnp.ones(len(frames)))
        return self.summarize(sums)

    # -- data -----------------------------------------------------------------------------------
    def train_iterator(self):
        batch_size = int(self.config.train.batch_size)

        def make(rng):
            return {
                "x": self._sequences(rng, "train", batch_size),
                "weight": np.ones((batch_size,), np.float32),
            }

        return data_base.SeededIterator(make, int(self.config.seed))

    def eval_batches(self, split):
        data = self._examples[split]
        return data_base.padded_batches(
            len(data["x"]),
            int(self.config.eval.batch_size),
            lambda idx: {k: v[idx] for k, v in data.items()},
        )

    def data_summary(self):
        sizes = "/".join(f"{len(self._examples[s]['x']):,}" for s in ("valid", "test"))
        return (
            f"moving digits: {self.num_digits} digit(s) of {self.digit_size} px on a "
            f"{self.canvas} x {self.canvas} canvas, {self.input_frames} frames in, "
            f"{self.output_frames} predicted; training sequences generated per step; {sizes} "
            "fixed sequences (valid/test)"
        )
