"""The linear forecasters of Zeng, Chen, Zhang & Xu 2023 ("Are Transformers Effective for Time
Series Forecasting?", LTSF-Linear), the baselines every long-term forecaster is judged against.

Each maps the L input rows of every channel to its H forecast rows with one linear layer along
time, the same weights for every channel (their default `individual=False`):

  linear:   y[:, c] = W x[:, c] + b                            W [H, L], b [H]
  nlinear:  y[:, c] = W (x[:, c] - x_L[c]) + b + x_L[c]        (subtract the last value, add it
                                                                back: the level-shift fix)
  dlinear:  trend = moving_average_25(x) (edges replicated),  season = x - trend
            y = W_s season + b_s + W_t trend + b_t
  repeat:   y[:, c] = x_L[c]                                    (no parameters)

Weights and biases start uniform in [-1/sqrt(L), 1/sqrt(L)] (PyTorch's nn.Linear default, as
their code), or with `weights='mean'` every W at 1/L (each forecast row starts as the mean of
the inputs; biases as PyTorch's): DLinear's first release (cure-lab/LTSF-Linear 04ffd8d, until
7f7a25b of 2022-08-15 left those lines commented out), which the authors name as the code that
reproduces their Exchange-Rate table (their issue #39). Read for this: cure-lab/LTSF-Linear,
models/{Linear,NLinear,DLinear}.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from train import models

KINDS = ("linear", "nlinear", "dlinear", "repeat")
DLINEAR_KERNEL = 25  # their moving-average kernel
WEIGHT_INITS = ("torch", "mean")


def _dense_init(rng, input_len: int, horizon: int, weights: str) -> dict:
    p = models.torch_dense_init(rng, input_len, horizon)
    if weights == "mean":
        p["w"] = jnp.full_like(p["w"], 1.0 / input_len)
    return p


def init(rng, kind: str, input_len: int, horizon: int, weights: str = "torch") -> dict:
    """The parameters of `kind` ({} for repeat); `weights` in WEIGHT_INITS."""
    if weights not in WEIGHT_INITS:
        raise ValueError(f"weights={weights!r}; valid: {', '.join(WEIGHT_INITS)}.")
    if kind == "repeat":
        return {}
    if kind == "dlinear":
        k_s, k_t = jax.random.split(rng)
        return {
            "seasonal": _dense_init(k_s, input_len, horizon, weights),
            "trend": _dense_init(k_t, input_len, horizon, weights),
        }
    return {"linear": _dense_init(rng, input_len, horizon, weights)}


def _along_time(p: dict, x_BxLxC):
    """W x + b along the time axis, every channel alike: [B, L, C] -> [B, H, C]."""
    return jnp.einsum("blc,lh->bhc", x_BxLxC, p["w"]) + p["b"][None, :, None]


def moving_average(x_BxLxC, kernel: int = DLINEAR_KERNEL):
    """Centred moving average over time, the first and last rows repeated (kernel - 1) // 2
    times at either end (their series_decomp), so the output keeps the length L."""
    pad = (kernel - 1) // 2
    front = jnp.repeat(x_BxLxC[:, :1], pad, axis=1)
    end = jnp.repeat(x_BxLxC[:, -1:], pad, axis=1)
    padded = jnp.concatenate([front, x_BxLxC, end], axis=1)
    csum = jnp.cumsum(padded, axis=1)
    csum = jnp.concatenate([jnp.zeros_like(csum[:, :1]), csum], axis=1)
    return (csum[:, kernel:] - csum[:, :-kernel]) / kernel


def predict(params: dict, kind: str, x_BxLxC, horizon: int):
    """Forecasts [B, H, C] from inputs [B, L, C]."""
    last_Bx1xC = x_BxLxC[:, -1:, :]
    if kind == "repeat":
        return jnp.repeat(last_Bx1xC, horizon, axis=1)
    if kind == "linear":
        return _along_time(params["linear"], x_BxLxC)
    if kind == "nlinear":
        return _along_time(params["linear"], x_BxLxC - last_Bx1xC) + last_Bx1xC
    trend = moving_average(x_BxLxC)
    return _along_time(params["seasonal"], x_BxLxC - trend) + _along_time(params["trend"], trend)
