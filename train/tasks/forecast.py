"""Multi-horizon forecasting from any CSV with a date column (ETTh1 with Informer's protocol).

Data (config.data): `path` (CSV or CSV.gz), `date_column`, `target` (the target column),
`features` ('S': the target alone in and out; 'M': every numeric column in and out),
`input_len` L, `horizon` H, `split` ('informer': ETT-hour rows [0, 8640) / [8640 - L, 11520) /
[11520 - L, 14400); 'ltsf': DLinear's int(0.7 N) / rest / int(0.2 N); 'fraction': `train_frac` /
`valid_frac` / rest, chronologically), `header` (False: a bare table without header or date
column, columns named '0', '1', ...). A
StandardScaler is fitted on the train rows only; the loss and every metric are computed on the
scaled values (Informer's "MSE / MAE on normalised values").

Model (config.model): a recurrent encoder (any `cell` with its `cell_options`, `hidden_size`,
`num_layers`, `dropout` between layers; `train/models.py`) reads the L input rows x_1..x_L.
Two heads:

  head='direct':   y_hat[1..H] = W h_L + b                  (one linear map to all H*C outputs)
  head='seq2seq':  s_0 = carry_L, u_1 = 0;  s_k = cell(s_{k-1}, u_k);  y_hat_k = W h_k + b;
                   u_{k+1} = y_hat_k                        (a decoder fed its own predictions)

With `subtract_last` (default True) the model works relative to the last observed row: inputs
are x_t - x_L and the prediction is x_L[out] + y_hat (the "NLinear" normalisation of Zeng et
al. 2023), which removes the level shift between the training years and the test months.

`model.architecture` = 'linear' | 'nlinear' | 'dlinear' | 'repeat' replaces the recurrent model
by Zeng et al.'s linear forecasters or the last value (`train/tasks/forecast_linear.py`;
`model.linear_init` 'torch' | 'mean', the weights' init), trained in this same harness (data,
loss, metrics, loop) as the baselines of the recurrent ones;
'segrnn' is SegRNN (`train/tasks/forecast_segrnn.py`; `model.segment_len`, `normalization`
'last' | 'revin', `head_dropout`, `channel_embedding`, `init_scale`), its recurrence any
registered cell.
`model.loss` = 'mse' (default) or 'mae' is the training objective (SegRNN's code trains on
MAE); both metrics are always reported.

Metrics: mse (= loss) and mae over every predicted value of every window of a split.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from train import models
from train.data import base as data_base
from train.data import timeseries
from train.errors import ConfigError
from train.tasks import base, forecast_linear, forecast_segrnn

ARCHITECTURES = ("rnn", *forecast_linear.KINDS, "segrnn")
LOSSES = ("mse", "mae")


class ForecastData:
    """The scaled series and the train / valid / test windows of a forecasting config."""

    def __init__(self, data: ml_collections.ConfigDict):
        if data.features not in ("S", "M"):
            raise ConfigError(
                f"config.data.features={data.features!r}; valid: 'S' (target only) or 'M' "
                "(all numeric columns)."
            )
        if int(data.input_len) < 1 or int(data.horizon) < 1:
            raise ConfigError(
                f"config.data.input_len={data.input_len} and horizon={data.horizon} must be "
                "positive."
            )
        path = str(data_base.resolve_path(data.path))
        table = timeseries.read_csv(
            path, data.get("date_column", "date"), bool(data.get("header", True))
        )
        target = table.column_index(data.target)
        L, H = int(data.input_len), int(data.horizon)
        split = data.get("split", "informer")
        if split == "informer":
            self.borders = timeseries.informer_borders(len(table), L)
        elif split == "ltsf":
            self.borders = timeseries.ltsf_borders(len(table), L)
        elif split == "fraction":
            self.borders = timeseries.fraction_borders(
                len(table), L, float(data.train_frac), float(data.valid_frac)
            )
        else:
            raise ConfigError(
                f"config.data.split={split!r}; valid: 'informer' (ETT hourly), 'ltsf' "
                "(DLinear's 0.7/0.2 rule) or 'fraction'."
            )
        cols = [target] if data.features == "S" else list(range(len(table.columns)))
        self.table = table
        self.columns = tuple(table.columns[c] for c in cols)
        self.target_index = self.columns.index(data.target)
        values_NxC = table.values[:, cols]
        train_start, train_end = self.borders["train"]
        self.scaler = timeseries.StandardScaler.fit(values_NxC[train_start:train_end])
        self.series_NxC = self.scaler.transform(values_NxC)
        self.windows = {
            name: timeseries.Windows(self.series_NxC, lo, hi, L, H, split=name)
            for name, (lo, hi) in self.borders.items()
        }


class WindowIterator(data_base.EpochIterator):
    """Endless shuffled training windows: one permutation per epoch, last partial batch dropped."""

    def __init__(self, windows: timeseries.Windows, batch_size: int, seed: int):
        def take(idx):
            x, y = windows.batch(idx)
            return {"x": x, "y": y}

        super().__init__(len(windows), batch_size, seed, take)
        self.windows = windows


def eval_batches(windows: timeseries.Windows, batch_size: int):
    """Every window once, in order; the last batch is padded with weight-0 copies."""

    def take(idx):
        x, y = windows.batch(idx)
        return {"x": x, "y": y}

    return data_base.padded_batches(len(windows), batch_size, take)


class ForecastTask(base.Task):
    """Encoder RNN + direct or seq2seq multi-horizon head; MSE on standardised values."""

    name = "forecast"
    # Fields added after configs were first saved (their defaults reproduce the old models).
    model_defaults = {
        "architecture": "rnn",
        "loss": "mse",
        "segment_len": 48,
        "normalization": "last",
        "head_dropout": 0.0,
        "channel_embedding": True,
        "init_scale": 0.0,
        "linear_init": "torch",
    }
    model_fields = ("head", "subtract_last", *model_defaults)
    data_fields = (
        "date_column",
        "target",
        "features",
        "input_len",
        "horizon",
        "split",
        "train_frac",
        "valid_frac",
        "header",
    )
    unused_fields = {"train.seq_len": "the window length is config.data.input_len"}

    @classmethod
    def validate(cls, config):
        head = config.model.get("head", "direct")
        if head not in ("direct", "seq2seq"):
            raise ConfigError(f"config.model.head={head!r}; valid: 'direct', 'seq2seq'.")
        architecture = config.model.get("architecture", "rnn")
        if architecture not in ARCHITECTURES:
            raise ConfigError(
                f"config.model.architecture={architecture!r}; valid: {', '.join(ARCHITECTURES)}."
            )
        linear_init = config.model.get("linear_init", "torch")
        if linear_init not in forecast_linear.WEIGHT_INITS:
            raise ConfigError(
                f"config.model.linear_init={linear_init!r}; valid: "
                f"{', '.join(forecast_linear.WEIGHT_INITS)}."
            )
        loss = config.model.get("loss", "mse")
        if loss not in LOSSES:
            raise ConfigError(f"config.model.loss={loss!r}; valid: {', '.join(LOSSES)}.")
        if architecture == "segrnn":
            m = config.model
            if m.get("normalization", "last") not in forecast_segrnn.NORMALIZATIONS:
                raise ConfigError(
                    f"config.model.normalization={m.get('normalization')!r}; valid: "
                    f"{', '.join(forecast_segrnn.NORMALIZATIONS)}."
                )
            if not 0.0 <= float(m.get("head_dropout", 0.0)) < 1.0:
                raise ConfigError(
                    f"config.model.head_dropout={m.get('head_dropout')}; valid: [0, 1)."
                )
            problem = forecast_segrnn.check(
                int(config.data.input_len),
                int(config.data.horizon),
                int(m.get("segment_len", 48)),
                int(m.hidden_size),
            )
            if problem:
                raise ConfigError(problem + ".")
            if not float(m.get("init_scale", 0.0)) >= 0:  # also refuses NaN
                raise ConfigError(f"config.model.init_scale must be >= 0, got {m.init_scale}.")
        ForecastData(config.data)

    def __init__(self, config):
        super().__init__(config)
        self.data = ForecastData(config.data)
        self.num_channels = len(self.data.columns)
        self.horizon = int(config.data.horizon)
        self.head = config.model.get("head", "direct")
        self.subtract_last = bool(config.model.get("subtract_last", True))
        m = config.model
        self.architecture = m.get("architecture", "rnn")
        self.loss_name = m.get("loss", "mse")
        self.input_len = int(config.data.input_len)
        self.segment_len = int(m.get("segment_len", 48))
        self.normalization = m.get("normalization", "last")
        self.head_dropout = float(m.get("head_dropout", 0.0))
        self.channel_embedding = bool(m.get("channel_embedding", True))
        self.init_scale = float(m.get("init_scale", 0.0))
        self.linear_init = m.get("linear_init", "torch")
        self.cell = models.make_cell(config)
        self.encoder = models.make_stack(config, self.cell)

    # -- model ---------------------------------------------------------------------------------
    def init_params(self, rng):
        if self.architecture == "segrnn":
            return forecast_segrnn.init(
                rng,
                self.cell,
                self.num_channels,
                self.horizon,
                self.segment_len,
                self.channel_embedding,
                self.init_scale,
            )
        if self.architecture != "rnn":
            return forecast_linear.init(
                rng, self.architecture, self.input_len, self.horizon, self.linear_init
            )
        k_enc, k_dec, k_head = jax.random.split(rng, 3)
        h, c = self.cell.output_size, self.num_channels
        params = {"encoder": self.encoder.init(k_enc, c)}
        if self.head == "direct":
            params["head"] = models.dense_init(k_head, h, self.horizon * c)
        else:
            params["decoder"] = self.cell.init(k_dec, c)
            params["head"] = models.dense_init(k_head, h, c)
        return params

    def predict(self, params, x_BxLxC, rng=None):
        """Forecasts [B, H, C] (standardised) from inputs [B, L, C]."""
        if self.architecture == "segrnn":
            return forecast_segrnn.predict(
                params,
                self.cell,
                x_BxLxC,
                self.horizon,
                self.segment_len,
                self.normalization,
                self.head_dropout,
                rng,
                self.scan_kwargs,
            )
        if self.architecture != "rnn":
            return forecast_linear.predict(params, self.architecture, x_BxLxC, self.horizon)
        batch = x_BxLxC.shape[0]
        last_Bx1xC = x_BxLxC[:, -1:, :]
        if self.subtract_last:
            x_BxLxC = x_BxLxC - last_Bx1xC
        _, carries = self.encoder(params["encoder"], x_BxLxC, rng=rng, **self.scan_kwargs)
        top = carries[-1]
        if self.head == "direct":
            y_BxHC = models.dense(params["head"], top.h, self.cell.compute_dtype)
            y_BxHxC = y_BxHC.reshape(batch, self.horizon, self.num_channels)
        else:

            def step(carry, _):
                state, u_BxC = carry
                state, h_BxH = self.cell.step(params["decoder"], state, u_BxC)
                y_BxC = models.dense(params["head"], h_BxH, self.cell.compute_dtype)
                return (state, y_BxC), y_BxC

            u0 = jnp.zeros((batch, self.num_channels), x_BxLxC.dtype)
            _, y_HxBxC = jax.lax.scan(step, (top, u0), None, length=self.horizon)
            y_BxHxC = jnp.swapaxes(y_HxBxC, 0, 1)
        if self.subtract_last:
            y_BxHxC = y_BxHxC + last_Bx1xC
        return y_BxHxC

    def loss(self, params, carry, batch, rng, train):
        y_hat = self.predict(params, batch["x"], rng if train else None)
        err_BxHxC = y_hat - batch["y"]
        w_Bx1x1 = batch["weight"][:, None, None]
        count = jnp.sum(batch["weight"]) * (err_BxHxC.shape[1] * err_BxHxC.shape[2])
        se = jnp.sum(w_Bx1x1 * jnp.square(err_BxHxC))
        ae = jnp.sum(w_Bx1x1 * jnp.abs(err_BxHxC))
        objective = (se if self.loss_name == "mse" else ae) / jnp.maximum(count, 1.0)
        return objective, (carry, {"se": se, "ae": ae, "count": count})

    def summarize(self, sums):
        count = max(float(sums["count"]), 1.0)
        mse = float(sums["se"]) / count
        return {"loss": mse, "mse": mse, "mae": float(sums["ae"]) / count}

    # -- data ----------------------------------------------------------------------------------
    def train_iterator(self):
        return WindowIterator(
            self.data.windows["train"], int(self.config.train.batch_size), int(self.config.seed)
        )

    def eval_batches(self, split):
        return eval_batches(self.data.windows[split], int(self.config.eval.batch_size))

    def steps_per_epoch(self):
        return max(1, len(self.data.windows["train"]) // int(self.config.train.batch_size))

    def data_summary(self):
        w = self.data.windows
        return (
            f"{len(w['train']):,}/{len(w['valid']):,}/{len(w['test']):,} windows "
            f"(train/valid/test) of {len(self.data.columns)} column(s)"
        )
