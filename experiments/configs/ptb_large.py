"""Penn Treebank word-level LM, Zaremba et al. 2014 "large" (regularised) config.

2-layer LSTM, 1500 units, 35 BPTT steps, batch 20, dropout 0.65 on the non-recurrent
connections, uniform init in [-0.04, 0.04], SGD lr 1.0 for 14 epochs then divided by 1.15 every
epoch, 55 epochs, clip 10, cost summed over the window / batch. Paper: valid 82.2 / test 78.4.

  python -m train.main --config=experiments/configs/ptb_large.py --workdir=workdirs/ptb_large
  python -m experiments run ptb_zaremba zaremba@large   # its first epoch, as in the study

[results]
One epoch only (ptb_large_lstm, status partial, commit bc59e21, AMD EPYC 2 cores, train time
0:53:51): valid 5540.48 / test 5773.50; the paper after 55 epochs: 82.2 / 78.4. 3.68 CPU s per
step x 1,327 steps per epoch: about 74.5 CPU hours for the 55 epochs (66,022,000 parameters;
`python -m experiments run ptb_zaremba timing`). Every run and the protocol:
experiments/studies/ptb_zaremba/README.md.
With seed 0 the loss stayed above the uniform 9.21 nats after the violent first updates of lr
1.0 / clip 10; the README's probe of the first 90 steps shows seed 1, lr 0.5 or clip 5
recovering.
[/results]
"""

import ml_collections

from experiments.configs import ptb_small


def get_config() -> ml_collections.ConfigDict:
    return ptb_small.zaremba_config(
        hidden_size=1500,
        seq_len=35,
        dropout=0.65,
        init_scale=0.04,
        num_epochs=55,
        decay_after_epochs=14,
        decay_factor=1.0 / 1.15,
        grad_clip_norm=10.0,
    )
