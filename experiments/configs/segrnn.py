"""SegRNN (Lin et al. 2023) on ETTh1 with the LTSF protocol, as the authors' paper-era scripts.

Protocol: as experiments/configs/ltsf.py (ETT-hour borders with the later splits starting L rows
early, train-fitted StandardScaler, MSE / MAE on standardised values of every stride-1 test
window). Model and training from lss-1138/SegRNN at the paper's commit f5970fa
(scripts/SegRNN/etth1.sh, run_longExp.py, exp/exp_main.py, read for this): look-back L = 720,
segments of w = 48, d = 512, a GRU, parallel decoding with position and channel embeddings,
dropout 0.5 before the output layer, subtract-last normalisation (`normalization=revin`: RevIN
without affine parameters, an option of their later code), L1 loss (training and
the validation criterion of early stopping), Adam lr 1e-3, batch 256, the rate constant for the
first 4 epochs then x0.8 per epoch (their `lradj='type3'` applied after each epoch), at most 30
epochs, early stopping with patience 10, test on the best checkpoint. Deviation, on purpose:
their test loader drops the last partial batch (drop_last=True, 225 of 2,785 windows at
H = 96); every window is evaluated here.

  python -m train.main --config=experiments/configs/segrnn.py:horizon=96,cell=gru,seed=0 \\
      --workdir=/tmp/segrnn_gru_96_s0

Published (SegRNN Table 2, ETTh1 multivariate MSE, H = 96/192/336/720): 0.341/0.385/0.401/0.434.
"""

import ml_collections

from experiments.configs import arguments, ltsf

ARGUMENTS = {
    "seed": 0,
    "cell": "gru",
    "features": "M",
    "horizon": 96,
    "input_len": 720,
    "segment_len": 48,
    "hidden_size": 512,
    "dropout": 0.5,
    "normalization": "last",
    "learning_rate": 1e-3,
    "batch_size": 256,
    "epochs": 30,
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    fields = arguments.parse(arg, ARGUMENTS)
    config = ltsf.get_config(
        f"model=linear,features={fields['features']},horizon={fields['horizon']},"
        f"input_len={fields['input_len']},learning_rate={fields['learning_rate']},"
        f"batch_size={fields['batch_size']},epochs={fields['epochs']},seed={fields['seed']}"
    )
    config.name = f"segrnn_{fields['cell']}_{fields['features']}_{fields['horizon']}"
    config.model.architecture = "segrnn"  # train/tasks/forecast_segrnn.py
    config.model.cell = fields["cell"]  # the recurrence: any registered cell
    config.model.hidden_size = fields["hidden_size"]  # d
    config.model.segment_len = fields["segment_len"]  # w
    config.model.normalization = fields["normalization"]  # 'revin' | 'last'
    config.model.head_dropout = fields["dropout"]  # before the output layer
    config.model.loss = "mae"  # their nn.L1Loss
    config.optim.decay_after_epochs = 4  # lr constant for 4 epochs, then
    config.optim.decay_factor = 0.8  # x0.8 per epoch
    config.train.early_stopping_patience = 10
    config.train.best_metric = "mae"  # their validation criterion is the L1 loss
    return config
