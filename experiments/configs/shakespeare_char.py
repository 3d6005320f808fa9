"""Character-level LM on Tiny Shakespeare (karpathy/char-rnn data), sized for a 2-core CPU.

2-layer LSTM, 256 units, 64-dim character embedding, batch 32 x 100 characters, Adam 2e-3
(cosine decay), clip 5, dropout 0.1, 3,000 steps (about 10 epochs of the 1.0M training
characters). Split: first 90% train, last 10% validation; the reported "test" split is the same
validation text (there is no separate test set). Metric: validation nats/char and bits/char.
`--config.model.cell=gru|rnn` swaps the cell. Trains in about 12 minutes on 2 CPU cores.

  python -m train.main --config=experiments/configs/shakespeare_char.py \
      --workdir=workdirs/shakespeare_lstm
  python -m experiments.tools.sample --workdir=workdirs/shakespeare_lstm --prompt="ROMEO:" \
      --length=400 --temperature=0.8 --seed=0
  python -m experiments run shakespeare_char full small   # the study's runs, every cell

[results]
Validation bits/char of this config (3,000 steps, one seed): LSTM 2.268, GRU 2.142, RNN 2.368;
the LSTM trained in 0:11:38 on AMD EPYC 2 cores. At 2 x 128 units and 1,000 steps: LSTM 2.851,
GRU 2.588, RNN 2.807. Commits b266a40, b2d8f5e, c8fff50, e26ff1e, f141748, fdc81b4; every run,
its samples and the protocol: experiments/studies/shakespeare_char/README.md.
[/results]
"""

import ml_collections

from train import config_base
from train.tasks import lm


def get_config() -> ml_collections.ConfigDict:
    config = config_base.base_config()
    config.task = "lm"
    config.seed = 0

    config.data.path = "data/tinyshakespeare/input.txt.gz"  # sha256-checked
    config.data.level = "char"  # every character is a token (65 types)
    config.data.valid_fraction = 0.1  # the last 10% of the text validates
    config.data.test_fraction = 0.0  # 0: 'test' reports the validation split again

    config.model.cell = "lstm"  # any registered cell (cells.names()) or 'pkg.module:Class'
    config.model.hidden_size = 256  # units per layer
    config.model.num_layers = 2  # stacked recurrent layers
    config.model.dropout = 0.1  # on embedding output, between layers and on the top output
    config.model.embed_size = 64  # character embedding width
    config.model.tie_embeddings = False  # needs embed_size == hidden_size
    config.model.init_scale = 0.0  # 0: the cells' own initialisers (Glorot / orthogonal)
    config.model.objective = "token_mean"  # mean nll per character (Adam)
    config.model.update(lm.REGULARIZATION)  # AWD-LSTM regularisers, all off (train/tasks/lm.py)

    config.optim.optimizer = "adam"
    config.optim.learning_rate = 2e-3  # peak learning rate
    config.optim.momentum = 0.0  # unused by adam
    config.optim.weight_decay = 0.0  # none
    config.optim.schedule = "cosine"  # warm-up then cosine decay to 0 over the run
    config.optim.decay_after_epochs = 0  # unused (epoch_decay only)
    config.optim.decay_factor = 1.0  # unused (epoch_decay only)
    config.optim.warmup_steps = 100  # linear warm-up
    config.optim.grad_clip_norm = 5.0  # global-norm clipping

    config.train.num_epochs = 0  # step-based
    config.train.num_steps = 3000  # updates
    config.train.batch_size = 32  # parallel character streams
    config.train.seq_len = 100  # BPTT window; the carry passes between windows
    config.train.log_every = 100  # steps between train logs
    config.train.eval_every = 500  # steps between validation passes
    config.train.checkpoint_every = 500  # steps between checkpoints
    config.train.keep_checkpoints = 2  # latest checkpoints kept (plus the best)
    config.train.dtype = "float32"  # compute dtype
    config.train.early_stopping_patience = 0  # off
    config.train.best_metric = "loss"  # validation nats/char picks the best checkpoint

    config.eval.batch_size = 32  # parallel streams over the validation text, carry kept
    return config
