"""Long-term forecasting with the LTSF protocol of Zeng et al. 2023 (DLinear's code): ETTh1 and
Exchange-Rate.

Protocol (cure-lab/LTSF-Linear: data_provider/data_loader.py Dataset_ETT_hour, run_longExp.py,
scripts/EXP-LongForecasting/Linear/etth1.sh and univariate/etth1.sh, read for this):
  - ETTh1 rows: train [0, 8640), valid [8640 - L, 11520), test [11520 - L, 14400) (12/4/4
    months; the later splits start L rows early so their first target follows the previous
    split), StandardScaler fitted on the train rows, MSE / MAE on the standardised values of
    every stride-1 test window (no window dropped).
  - Exchange-Rate (`dataset=exchange`, LSTNet's file, 7,588 days x 8 currencies, no date
    column): train int(0.7 N) rows, test int(0.2 N), valid the rows between (their
    Dataset_Custom; split 'ltsf'), later splits starting L rows early.
  - look-back L = 336, horizons H in {96, 192, 336, 720}; features 'M' (all columns in and
    out) or 'S' (the target alone: ETTh1's OT).
  - models (config string `model=`): linear, nlinear, dlinear (moving average 25, edges
    replicated), one layer along time shared by the channels (`individual=False`, their
    default), PyTorch's default init (`init=torch`) or, with `init=mean`, every weight at 1/L
    as DLinear's first release, the code its authors name for their Exchange-Rate table
    (run names end `_meaninit`); repeat (the last value, nothing to train).
  - training as their scripts: MSE loss, Adam, ETTh1 lr 0.005 and batch 32, Exchange lr 5e-4
    and batch 8 (H 96, 192) or 32 (H 336, 720); at most 10 epochs, the first two at the full
    rate and the rate halved after each later one (their `lradj='type1'`: lr * 0.5 **
    ((epoch - 1) // 1), applied with epoch + 1 after each 0-indexed epoch, so 0.005, 0.005,
    0.0025, ...), validation after each epoch, early
    stopping after 3 epochs without a lower validation MSE; test on the best checkpoint. No
    gradient clipping (they have none).
  - DLinear's first release (cure-lab/LTSF-Linear 04ffd8d) trained Exchange at H = 720 with lr
    5e-3 (`learning_rate=0.005`); the group `ltsf_dlinear_init` runs it with either init.

  python -m train.main --config=experiments/configs/ltsf.py:model=dlinear,horizon=96,seed=0 \\
      --workdir=/tmp/ltsf_dlinear_M_96_s0
  python -m experiments run forecasting ltsf_linear      # the grid below, 3 seeds, resumably

Published (DLinear paper: Zeng et al. 2023, Table 2, multivariate MSE for H = 96/192/336/720):
ETTh1 NLinear 0.374/0.408/0.429/0.440, DLinear 0.375/0.405/0.439/0.472;
Exchange NLinear 0.089/0.180/0.331/1.033, DLinear 0.081/0.157/0.305/0.643, Repeat
0.081/0.167/0.305/0.823. Measured: experiments/studies/forecasting/README.md, from its
records results/ltsf_*.json.
"""

import ml_collections

from experiments.configs import arguments
from train import config_base
from train.tasks import forecast_linear

HORIZONS = (96, 192, 336, 720)
ETT_TRAIN_ROWS = 8640  # 12 months of hours
EXCHANGE_ROWS = 7588
DATASETS = ("etth1", "exchange")
MODELS = ("linear", "nlinear", "dlinear", "repeat")

ARGUMENTS = {
    "seed": 0,
    "dataset": "etth1",
    "model": "dlinear",
    "features": "M",
    "horizon": 96,
    "input_len": 336,
    "learning_rate": 0.0,  # 0: the scripts' rate for the dataset
    "batch_size": 0,  # 0: the scripts' batch size for the dataset and horizon
    "epochs": 10,
    "init": "torch",  # the weights' init: PyTorch's default, or 'mean' (1/L, DLinear's first)
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    fields = arguments.parse(arg, ARGUMENTS)
    if fields["model"] not in MODELS:
        raise ValueError(f"config argument model={fields['model']!r}; valid: {', '.join(MODELS)}.")
    if fields["init"] not in forecast_linear.WEIGHT_INITS:
        valid = ", ".join(forecast_linear.WEIGHT_INITS)
        raise ValueError(f"config argument init={fields['init']!r}; valid: {valid}.")
    dataset = fields["dataset"]
    if dataset not in DATASETS:
        raise ValueError(f"config argument dataset={dataset!r}; valid: {', '.join(DATASETS)}.")
    exchange = dataset == "exchange"
    if not fields["learning_rate"]:
        fields["learning_rate"] = 5e-4 if exchange else 0.005
    if not fields["batch_size"]:
        fields["batch_size"] = 8 if exchange and fields["horizon"] <= 192 else 32
    config = config_base.base_config()
    config.task = "forecast"
    config.seed = fields["seed"]
    prefix = "ltsf_exchange" if exchange else "ltsf"
    init = "_meaninit" if fields["init"] == "mean" else ""
    config.name = f"{prefix}_{fields['model']}{init}_{fields['features']}_{fields['horizon']}"

    if exchange:
        config.data.path = "data/exchange_rate/exchange_rate.txt.gz"  # LSTNet's
        config.data.header = False  # 8 bare columns '0'..'7'
        config.data.date_column = "date"  # unused without a header
        config.data.target = "7"  # DLinear's 'OT' (Singapore)
        config.data.split = "ltsf"  # int(0.7 N) / rest / int(0.2 N)
        train_rows = int(EXCHANGE_ROWS * 0.7)
    else:
        config.data.path = "data/ett/ETTh1.csv.gz"  # bundled ETTh1 (CC BY-ND 4.0)
        config.data.header = True
        config.data.date_column = "date"
        config.data.target = "OT"
        config.data.split = "informer"  # the same ETT-hour borders as DLinear's loader
        train_rows = ETT_TRAIN_ROWS
    config.data.features = fields["features"]  # 'M' all columns; 'S' the target alone
    config.data.input_len = fields["input_len"]  # L
    config.data.horizon = fields["horizon"]  # H
    config.data.train_frac = 0.7  # unused with split='informer'
    config.data.valid_frac = 0.1  # unused with split='informer'

    config.model.architecture = fields["model"]  # train/tasks/forecast_linear.py
    config.model.linear_init = fields["init"]
    config.model.cell = "lstm"  # unused by the linear models
    config.model.hidden_size = 8  # unused by the linear models
    config.model.num_layers = 1
    config.model.dropout = 0.0

    config.optim.optimizer = "adam"
    config.optim.learning_rate = fields["learning_rate"]
    # Their lradj='type1': lr * 0.5 ** max(0, epoch - 1) for 0-indexed epochs (two at the full
    # rate). Runs before issue 36 halved after the first epoch (decay_after_epochs=1).
    config.optim.schedule = "epoch_decay"
    config.optim.decay_after_epochs = 2
    config.optim.decay_factor = 0.5
    config.optim.grad_clip_norm = 0.0  # none

    config.train.batch_size = fields["batch_size"]
    steps_per_epoch = train_by_epochs(config, train_rows, fields["epochs"])
    config.train.log_every = max(1, steps_per_epoch // 4)
    config.train.keep_checkpoints = 1
    config.train.best_metric = "mse"

    config.eval.batch_size = 1024
    return config


def train_by_epochs(config: ml_collections.ConfigDict, train_rows: int, epochs: int) -> int:
    """Their budget and stopping rule on `config.train`: `epochs` epochs of the training
    windows (the last partial batch dropped, as their train loader), validation and a
    checkpoint after each, stop after 3 without a lower valid MSE; returns the steps per epoch."""
    train_windows = train_rows - config.data.input_len - config.data.horizon + 1
    steps_per_epoch = max(1, train_windows // config.train.batch_size)
    config.train.num_epochs = epochs
    config.train.num_steps = 0
    config.train.eval_every = steps_per_epoch
    config.train.checkpoint_every = steps_per_epoch
    config.train.early_stopping_patience = 3  # epochs without a lower valid MSE
    return steps_per_epoch
