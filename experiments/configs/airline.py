"""Airline passengers (Box & Jenkins, 144 monthly totals 1949-1960): next year from the last two.

A small classic: 12-month forecasts from 24 months of history, chronological 70/10/20 split
(train 1949-01..1957-04, the last 3 years are valid and test), scaler fitted on train.

  python -m train.main --config=experiments/configs/airline.py --workdir=/tmp/airline

The forecasting study runs it as its group `examples` (`python -m experiments run forecasting
examples`; experiments/studies/forecasting/README.md, "Classic series"), which fills the block
below from its record.

[results]
Measured: test MSE 0.3988 / MAE 0.4956 (standardised),
best valid step 580, 12 s wall on 2 CPU cores, commit a7963fe.
[/results]
"""

import ml_collections

from experiments.configs import forecast_csv


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = forecast_csv.get_config(
        "path=data/univariate/airline-passengers.csv,date_column=Month,"
        "target=Passengers,input_len=24,horizon=12,batch_size=16,num_steps=600,eval_every=20"
        + ("," + arg if arg else "")
    )
    config.model.hidden_size = 32
    config.train.early_stopping_patience = 10
    return config
