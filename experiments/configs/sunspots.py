"""Monthly sunspot numbers (Zurich, 1749-1983, 2820 months): 12 months ahead from 10 years.

Chronological 70/10/20 split, scaler fitted on train, MSE / MAE on standardised values.

  python -m train.main --config=experiments/configs/sunspots.py --workdir=/tmp/sunspots

[results]
(not measured yet)
[/results]
"""

import ml_collections

from experiments.configs import forecast_csv


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    return forecast_csv.get_config(
        "path=experiments/data/univariate/monthly-sunspots.csv,date_column=Month,"
        "target=Sunspots,input_len=120,horizon=12,batch_size=32,num_steps=1500,eval_every=50"
        + ("," + arg if arg else "")
    )
