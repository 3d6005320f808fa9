"""Penn Treebank word-level LM, Zaremba et al. 2014 "large" (regularised) config.

2-layer LSTM, 1500 units, 35 BPTT steps, batch 20, dropout 0.65 on the non-recurrent
connections, uniform init in [-0.04, 0.04], SGD lr 1.0 for 14 epochs then divided by 1.15 every
epoch, 55 epochs, clip 10, cost summed over the window / batch. Paper: valid 82.2 / test 78.4.

  python -m train.main --config=experiments/configs/ptb_large.py --workdir=workdirs/ptb_large

[results]
Measured (2026-11-25, AMD EPYC, 2 shared cores, CPU only; `python -m experiments.lm_results
time --config=ptb_large --steps=3`): 66,022,000 parameters, 3.68 CPU s per step, 1,327 steps per
epoch = about 4,877 CPU s per epoch, about 74.5 CPU hours for 55 epochs. One epoch started on
the 2 cores (2026-11-25, commit 82eec16, no GPU lent; `--config.train.num_epochs=1
--workdir=workdirs/ptb_large_lstm`): 0.42-0.47 steps/s with the machine to itself, i.e. about
2.1-2.4 s per step and 47-53 min per epoch of training steps; train loss 10.17 nats at step
132, 9.48 at 264, 9.36 at 396 (still above the uniform 9.21: the lr-1.0 start of this config);
stopped at step 501 of 1,327 for session time (SIGTERM: checkpoint saved, the same command
resumes). No validation perplexity yet.
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
