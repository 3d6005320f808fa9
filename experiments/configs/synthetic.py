"""Synthetic smoke-test config: a small LSTM learns y_t = (s_t + s_{t-2}) mod 8 with TBPTT.

    python -m train.main --config=experiments/configs/synthetic.py --workdir=/tmp/synthetic

A few hundred steps take seconds on a CPU; the loop's tests shrink it further.
"""

from train import config_base


def get_config():
    config = config_base.base_config()
    config.task = "synthetic"
    config.model.cell = "lstm"  # any registered cell (cells.names()) or 'pkg.module:Class'
    config.model.hidden_size = 32  # small: the point is speed
    config.model.embed_size = 16  # token embedding width
    config.data.vocab_size = 8  # V, symbols per position
    config.data.delay = 2  # d in y_t = (s_t + s_{t-d}) mod V
    config.data.carry = True  # carry the state across windows (truncated BPTT)
    config.data.steps_per_epoch = 20  # windows per stream (one epoch)
    config.data.eval_windows = 4  # windows per validation/test stream
    config.data.nan_after_step = -1  # >= 0 poisons the loss with NaN from that step (tests)
    config.optim.optimizer = "adam"
    config.optim.learning_rate = 1e-2
    config.optim.grad_clip_norm = 1.0
    config.train.num_steps = 300
    config.train.batch_size = 16
    config.train.seq_len = 10
    config.train.log_every = 50
    config.train.eval_every = 100
    config.train.checkpoint_every = 100
    config.eval.batch_size = 16
    return config
