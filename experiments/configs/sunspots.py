"""Monthly sunspot numbers (Zurich, 1749-1983, 2820 months): 12 months ahead from 10 years.

Chronological 70/10/20 split, scaler fitted on train, MSE / MAE on standardised values.

  python -m train.main --config=experiments/configs/sunspots.py --workdir=/tmp/sunspots

The forecasting study runs it as its group `examples` (`python -m experiments run forecasting
examples`; experiments/studies/forecasting/README.md, "Classic series"), which fills the block
below from its record.

[results]
Measured: test MSE 0.4784 / MAE 0.5146 (standardised),
best valid step 150, 14 s wall on 2 CPU cores, commit 8fd16fe.
[/results]
"""

import ml_collections

from experiments.configs import forecast_csv


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    return forecast_csv.get_config(
        "path=data/univariate/monthly-sunspots.csv,date_column=Month,"
        "target=Sunspots,input_len=120,horizon=12,batch_size=32,num_steps=1500,eval_every=50"
        + ("," + arg if arg else "")
    )
