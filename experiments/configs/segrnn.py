"""SegRNN (Lin et al. 2023) on ETTh1 (and Exchange-Rate) with the LTSF protocol, as the authors'
paper-era scripts.

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

Univariate (`features=S`, OT alone), as their scripts/SegRNN/univariate.sh: d = 256, Adam lr
5e-4, patience 5, no channel embedding (their `--channel_id 0`: the position embedding alone,
width d), the rest as above. Exchange-Rate (`dataset=exchange`): the authors give no script at
that commit; the ETTh1 multivariate settings are used, on DLinear's 0.7/0.1/0.2 split.

  python -m train.main --config=experiments/configs/segrnn.py:horizon=96,torch_init=True,seed=0 \\
      --workdir=/tmp/segrnn_gru_torchinit_M_96_s0
  python -m experiments run forecasting ltsf_segrnn_init  # the reproduction: 4 horizons x 3 seeds
  python -m experiments run forecasting ltsf_segrnn       # S, Exchange, the multivariate ablations

`torch_init=True` draws the cell's parameters as the authors' PyTorch nn.GRU does (uniform in
+-1/sqrt(d)) instead of the cell's own initialisers: the reproduction uses it; this library's
init is the ablation (the group `ltsf_segrnn`: H = 96, 3 seeds).

Published (SegRNN Table 2, ETTh1 multivariate MSE, H = 96/192/336/720): 0.341/0.385/0.401/0.434.
"""

import ml_collections

from experiments.configs import arguments, ltsf

ARGUMENTS = {
    "seed": 0,
    "dataset": "etth1",
    "cell": "gru",
    "features": "M",
    "horizon": 96,
    "input_len": 720,
    "segment_len": 48,
    "hidden_size": 0,  # 0: the scripts' d (512 multivariate, 256 univariate)
    "dropout": 0.5,
    "normalization": "last",
    "learning_rate": 0.0,  # 0: the scripts' rate (1e-3 multivariate, 5e-4 univariate)
    "batch_size": 256,
    "epochs": 30,
    "torch_init": False,  # the cell's parameters uniform in +-1/sqrt(d), as PyTorch's nn.GRU
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    fields = arguments.parse(arg, ARGUMENTS)
    univariate = fields["features"] == "S"
    fields["hidden_size"] = fields["hidden_size"] or (256 if univariate else 512)
    fields["learning_rate"] = fields["learning_rate"] or (5e-4 if univariate else 1e-3)
    config = ltsf.get_config(
        f"dataset={fields['dataset']},model=linear,features={fields['features']},"
        f"horizon={fields['horizon']},"
        f"input_len={fields['input_len']},learning_rate={fields['learning_rate']},"
        f"batch_size={fields['batch_size']},epochs={fields['epochs']},seed={fields['seed']}"
    )
    data = "" if fields["dataset"] == "etth1" else f"{fields['dataset']}_"
    init = "_torchinit" if fields["torch_init"] else ""
    config.name = f"segrnn_{data}{fields['cell']}{init}_{fields['features']}_{fields['horizon']}"
    config.model.architecture = "segrnn"  # train/tasks/forecast_segrnn.py
    config.model.cell = fields["cell"]  # the recurrence: any registered cell
    config.model.hidden_size = fields["hidden_size"]  # d
    config.model.segment_len = fields["segment_len"]  # w
    config.model.normalization = fields["normalization"]  # 'revin' | 'last'
    config.model.head_dropout = fields["dropout"]  # before the output layer
    config.model.channel_embedding = not univariate  # their --channel_id 1 (M) / 0 (S)
    # torch_init: the authors' nn.GRU init; otherwise the cell's own (Glorot / orthogonal).
    config.model.init_scale = fields["hidden_size"] ** -0.5 if fields["torch_init"] else 0.0
    config.model.loss = "mae"  # their nn.L1Loss
    config.optim.decay_after_epochs = 4  # lr constant for 4 epochs, then
    config.optim.decay_factor = 0.8  # x0.8 per epoch
    config.train.early_stopping_patience = 5 if univariate else 10
    config.train.best_metric = "mae"  # their validation criterion is the L1 loss
    return config
