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
Examples on the bundled classic series: experiments/configs/airline.py and sunspots.py.
"""

import ml_collections

from experiments.configs import ett


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    fields = ett.parse(arg)
    config = ett.get_config(",".join(f"{k}={v}" for k, v in fields.items() if k in _MODEL_FIELDS))
    config.data.path = fields.get("path", "experiments/data/univariate/monthly-sunspots.csv")
    config.data.date_column = fields.get("date_column", "")  # '' = the first column
    config.data.target = fields.get("target", "Sunspots")  # the column to forecast
    config.data.features = fields.get("features", "S")  # 'S' target only; 'M' all columns
    config.data.input_len = int(fields.get("input_len", 48))
    config.data.horizon = int(fields.get("horizon", 12))
    config.data.split = "fraction"
    config.data.train_frac = float(fields.get("train_frac", 0.7))
    config.data.valid_frac = float(fields.get("valid_frac", 0.1))
    config.train.num_steps = int(fields.get("num_steps", 1000))
    config.train.batch_size = int(fields.get("batch_size", 32))
    config.train.eval_every = int(fields.get("eval_every", 50))
    config.train.checkpoint_every = config.train.eval_every
    return config


_MODEL_FIELDS = ("cell", "hidden_size", "head", "seed")
