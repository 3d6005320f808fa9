"""ETTh1 forecasting with Informer's protocol (Zhou et al. 2021): an RNN encoder + direct head.

Split (Informer's code): train rows [0, 8640), valid [8640 - L, 11520), test [11520 - L, 14400);
StandardScaler fitted on the train rows; MSE / MAE on the standardised values of every test
window. 'S' forecasts the target OT from its own past; 'M' forecasts all 7 columns from all 7.

Run (one cell of the grid; horizon, features and cell are fields of the config string):

  python -m train.main --config=experiments/configs/ett.py:features=S,horizon=24,cell=lstm \
      --workdir=/tmp/ett_S_24_lstm

With `epochs=10,batch_size=32` a run gets the LTSF linear models' budget and stopping rule
(10 epochs, validation after each, stop after 3 without a better valid MSE; ltsf.py), the
equal-budget comparison with NLinear (`python -m experiments run forecasting ett_M_equal`).

Or override any field directly (`--config.data.horizon=168 --config.model.cell=gru`). The whole
grid (S/M x 24/48/168/336/720 x LSTM/GRU), resumably: `python -m experiments run forecasting ett_S
ett_M` (the multivariate runs with num_steps=1000, to fit the shared 2-core CPU).

Measured (test MSE / MAE, best-validation checkpoint): the records
experiments/studies/forecasting/results/ett_*.json and the tables in that study's README.md
(`python -m experiments report forecasting`).
[results]
Test MSE/MAE (standardised), best-validation checkpoint; LSTMa published:
  S  24: LSTM 0.027/0.124  GRU 0.027/0.126  (LSTMa 0.114/0.272)
  S  48: LSTM 0.040/0.154  GRU 0.040/0.152  (LSTMa 0.193/0.358)
  S 168: LSTM 0.068/0.202  GRU 0.070/0.207  (LSTMa 0.236/0.392)
  S 336: LSTM 0.086/0.233  GRU 0.085/0.231  (LSTMa 0.580/0.698)
  S 720: LSTM 0.088/0.242  GRU 0.077/0.221  (LSTMa 0.683/0.768)
  M  24: LSTM 0.388/0.423  GRU 0.389/0.427  (LSTMa 0.650/0.624)
  M  48: LSTM 0.431/0.453  GRU 0.428/0.453  (LSTMa 0.702/0.675)
  M 168: LSTM 0.501/0.494  GRU 0.483/0.484  (LSTMa 1.212/0.867)
  M 336: LSTM 0.525/0.513  GRU 0.520/0.513  (LSTMa 1.424/0.994)
  M 720: LSTM 0.579/0.560  GRU 0.581/0.566  (LSTMa 1.960/1.322)
[/results]
"""

import ml_collections

from experiments.configs import arguments, ltsf
from train import config_base

HORIZONS = (24, 48, 168, 336, 720)


# Config-string arguments and their defaults (experiments/configs/arguments.py).
ARGUMENTS = {
    "seed": 0,
    "features": "S",
    "input_len": 96,
    "horizon": 24,
    "cell": "lstm",
    "hidden_size": 64,
    "head": "direct",
    "num_steps": 2000,
    "batch_size": 64,
    # > 0: train this many epochs with a validation pass after each and early stopping after 3
    # without a better valid MSE, the budget and rule of the LTSF linear models (ltsf.py), in
    # place of num_steps, validation every 100 steps and patience 5
    "epochs": 0,
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    fields = arguments.parse(arg, ARGUMENTS)
    config = config_base.base_config()
    config.task = "forecast"
    config.seed = fields["seed"]

    config.data.path = "data/ett/ETTh1.csv.gz"  # bundled ETTh1 (CC BY-ND 4.0)
    config.data.date_column = "date"  # the timestamp column (not a feature)
    config.data.target = "OT"  # oil temperature, Informer's target
    config.data.features = fields["features"]  # 'S' OT only; 'M' all 7 columns
    config.data.input_len = fields["input_len"]  # L, hours of history read
    config.data.horizon = fields["horizon"]  # H, hours forecast at once
    config.data.split = "informer"  # rows [0,8640) / [8640-L,11520) / [11520-L,14400)
    config.data.train_frac = 0.7  # unused with split='informer'
    config.data.valid_frac = 0.1  # unused with split='informer'

    config.model.cell = fields["cell"]  # any registered cell or 'module:Class'
    config.model.hidden_size = fields["hidden_size"]  # encoder width
    config.model.num_layers = 1  # encoder depth
    config.model.dropout = 0.0  # between encoder layers
    config.model.head = fields["head"]  # 'direct' (one linear map) | 'seq2seq'
    config.model.subtract_last = True  # model x - x_L, add x_L back to the forecast

    config.optim.optimizer = "adam"
    config.optim.learning_rate = 1e-3
    config.optim.grad_clip_norm = 1.0  # global-norm clipping

    config.train.num_steps = fields["num_steps"]  # about 15 epochs of batch 64
    config.train.batch_size = fields["batch_size"]
    config.train.log_every = 50
    config.train.eval_every = 100  # validation pass every 100 steps
    config.train.checkpoint_every = 100
    config.train.keep_checkpoints = 1
    config.train.early_stopping_patience = 5  # evaluations without a better valid MSE
    if fields["epochs"]:  # the linear models' budget and rule (experiments/configs/ltsf.py)
        ltsf.train_by_epochs(config, ltsf.ETT_TRAIN_ROWS, fields["epochs"])
    config.train.best_metric = "mse"  # valid MSE picks the checkpoint evaluated on test

    config.eval.batch_size = 1024
    return config
