"""Penn Treebank word-level LM, Zaremba et al. 2014 "medium" (regularised) config.

2-layer LSTM, 650 units, 35 BPTT steps, batch 20, dropout 0.5 on the non-recurrent connections,
uniform init in [-0.05, 0.05], SGD lr 1.0 for 6 epochs then divided by 1.2 every epoch, 39
epochs, clip 5, cost summed over the window / batch. Paper: valid 86.2 / test 82.7.

  python -m train.main --config=experiments/configs/ptb_medium.py --workdir=workdirs/ptb_medium
  python -m experiments run ptb_zaremba zaremba@medium   # its first epoch, as in the study

[results]
One epoch only (ptb_medium_lstm, status partial, commit 15a8030, AMD EPYC 2 cores, train time
0:15:54): valid 209.29 / test 204.20; the paper after 39 epochs: 86.2 / 82.7. 1.01 CPU s per
step x 1,327 steps per epoch: about 14.6 CPU hours for the 39 epochs (19,775,200 parameters;
`python -m experiments run ptb_zaremba timing`). Every run and the protocol:
experiments/studies/ptb_zaremba/README.md.
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
