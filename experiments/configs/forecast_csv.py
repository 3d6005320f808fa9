"""Forecasting any CSV / CSV.gz with a date column: the generic config (chronological split).

The series is split by fractions, in time order: train = the first `train_frac` of the rows,
valid = the next `valid_frac` (starting L rows early, so its first target follows train), test =
the rest (likewise). The scaler is fitted on train only; MSE / MAE on standardised values.

Run (fields after ':' are comma-separated key=value pairs; any config field can also be set
with --config.<group>.<field>=...):

  python -m train.main --workdir=/tmp/fc \
      --config=experiments/configs/forecast_csv.py:path=my.csv,date_column=time,target=load,features=S,input_len=48,horizon=24

Errors in the file (missing column, non-numeric value, a split too short for one window of
input_len + horizon rows) stop the run with one line naming the field and what is valid.
Examples on the bundled classic series: experiments/configs/airline.py and sunspots.py. The
forecasts in the file's own units: `python -m experiments.tools.forecast --workdir=/tmp/fc`
(experiments/studies/forecasting/README.md, "Forecasting your own CSV").
"""

import ml_collections

from experiments.configs import arguments, ett

_MODEL_FIELDS = ("cell", "hidden_size", "head", "seed")
# Config-string arguments and their defaults (experiments/configs/arguments.py); the model's
# are ett.py's, passed on to it.
ARGUMENTS = {
    "path": "data/univariate/monthly-sunspots.csv",
    "date_column": "",
    "target": "Sunspots",
    "features": "S",
    "input_len": 48,
    "horizon": 12,
    "train_frac": 0.7,
    "valid_frac": 0.1,
    "num_steps": 1000,
    "batch_size": 32,
    "eval_every": 50,
    **{k: ett.ARGUMENTS[k] for k in _MODEL_FIELDS},
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    fields = arguments.parse(arg, ARGUMENTS)
    config = ett.get_config(",".join(f"{k}={fields[k]}" for k in _MODEL_FIELDS))
    config.data.path = fields["path"]
    config.data.date_column = fields["date_column"]  # '' = the first column
    config.data.target = fields["target"]  # the column to forecast
    config.data.features = fields["features"]  # 'S' target only; 'M' all columns
    config.data.input_len = fields["input_len"]
    config.data.horizon = fields["horizon"]
    config.data.split = "fraction"
    config.data.train_frac = fields["train_frac"]
    config.data.valid_frac = fields["valid_frac"]
    config.train.num_steps = fields["num_steps"]
    config.train.batch_size = fields["batch_size"]
    config.train.eval_every = fields["eval_every"]
    config.train.checkpoint_every = config.train.eval_every
    return config
