"""Penn Treebank word-level LM, Zaremba et al. 2014 "medium" (regularised) config.

2-layer LSTM, 650 units, 35 BPTT steps, batch 20, dropout 0.5 on the non-recurrent connections,
uniform init in [-0.05, 0.05], SGD lr 1.0 for 6 epochs then divided by 1.2 every epoch, 39
epochs, clip 5, cost summed over the window / batch. Paper: valid 86.2 / test 82.7.

  python -m train.main --config=experiments/configs/ptb_medium.py --workdir=workdirs/ptb_medium

[results]
Measured (2026-11-25, AMD EPYC, 2 shared cores, CPU only; `python -m
experiments.studies.language_models.render time --config=ptb_medium --steps=10`): 19,775,200
parameters, 1.01 CPU s per step (user + system over all threads), 1,327 steps per epoch = about
1,345 CPU s per epoch, about 14.6 CPU hours for 39 epochs. First epoch on the 2 cores
(2026-11-25, commit 15a8030, no GPU lent; `--config.train.num_epochs=1
--workdir=workdirs/ptb_medium_lstm`, 14 min of training steps at 2.2 steps/s): valid 209.29 /
test 204.20 (experiments/studies/language_models/results/ptb_medium_lstm.json). The full 39
epochs (about 6.5 h here) were not run.
[/results]
"""

import ml_collections

from experiments.configs import ptb_small


def get_config() -> ml_collections.ConfigDict:
    return ptb_small.zaremba_config(
        hidden_size=650,
        seq_len=35,
        dropout=0.5,
        init_scale=0.05,
        num_epochs=39,
        decay_after_epochs=6,
        decay_factor=1.0 / 1.2,
        grad_clip_norm=5.0,
    )
