"""Penn Treebank word-level LM, Zaremba et al. 2014 "small" (non-regularised) config.

2-layer LSTM, 200 units, 20 BPTT steps, batch 20, no dropout, uniform init in [-0.1, 0.1],
SGD lr 1.0 for 4 epochs then halved every epoch, 13 epochs, gradient global-norm clip 5, cost
summed over the window and averaged over the batch (objective 'window_sum'). Evaluation over the
full valid/test sets with batch 1 and the state carried (as TF's reproduction). Paper: valid
120.7 / test 114.5. `--config.model.cell=gru|rnn` swaps the cell, all else equal.

  python -m train.main --config=experiments/configs/ptb_small.py --workdir=workdirs/ptb_small_lstm
  (re-running the same command resumes from the workdir)
  python -m experiments run ptb_zaremba zaremba ptb_lr ptb_cells   # the study's runs

[results]
LSTM, 13 epochs (ptb_small_lstm, commit 5d4ff42, AMD EPYC 2 cores, train time 1:19:04): valid
119.09 / test 114.55 at the best checkpoint, 119.71 / 114.25 at the last; paper 120.7 / 114.5.
Each cell at the rate one search on validation chose (groups ptb_lr and ptb_cells), valid /
test: lstm at lr 1 119.09 / 114.55; gru at lr 0.5 126.09 / 121.43; rnn at lr 0.25 146.27 /
140.19. Every run and the protocol: experiments/studies/ptb_zaremba/README.md.
[/results]
"""

import ml_collections

from experiments.configs import arguments
from train import config_base
from train.tasks import lm

# 929,589 training tokens in 20 streams of 46,479, cut into 20-step windows: (46,479 - 1) // 20.
PTB_TRAIN_TOKENS = 929_589


def zaremba_config(
    *,
    hidden_size: int,
    seq_len: int,
    dropout: float,
    init_scale: float,
    num_epochs: int,
    decay_after_epochs: int,
    decay_factor: float,
    grad_clip_norm: float,
) -> ml_collections.ConfigDict:
    """The settings shared by Zaremba's small / medium / large PTB configs."""
    config = config_base.base_config()
    config.task = "lm"
    config.seed = 0

    config.data.path = "data/ptb"  # ptb.{train,valid,test}.txt.gz, sha256-checked
    config.data.level = "word"  # whitespace tokens, one <eos> per line; vocab 10,000 from train
    config.data.valid_fraction = 0.1  # unused: the directory holds its own splits
    config.data.test_fraction = 0.0  # unused: the directory holds its own splits

    config.model.cell = "lstm"  # any registered cell (cells.names()) or 'pkg.module:Class'
    config.model.hidden_size = hidden_size  # units per layer (= embedding size)
    config.model.num_layers = 2  # stacked recurrent layers
    config.model.dropout = dropout  # on embedding output, between layers and on the top output
    config.model.embed_size = 0  # 0 = hidden_size, as in the paper
    config.model.tie_embeddings = False  # Zaremba did not tie input and output embeddings
    config.model.init_scale = init_scale  # every parameter uniform in [-s, s]
    config.model.objective = "window_sum"  # cost = sum over the window / batch (Zaremba / TF)
    config.model.update(lm.REGULARIZATION)  # AWD-LSTM regularisers, all off (train/tasks/lm.py)

    config.optim.optimizer = "sgd"  # plain SGD
    config.optim.learning_rate = 1.0  # initial learning rate
    config.optim.momentum = 0.0  # none
    config.optim.weight_decay = 0.0  # none
    config.optim.schedule = "epoch_decay"  # lr * decay_factor ** max(0, epoch + 1 - after)
    config.optim.decay_after_epochs = decay_after_epochs  # epochs at the full learning rate
    config.optim.decay_factor = decay_factor  # per-epoch factor afterwards
    config.optim.warmup_steps = 0  # none
    config.optim.grad_clip_norm = grad_clip_norm  # global norm of the gradient of the cost

    steps_per_epoch = (PTB_TRAIN_TOKENS // 20 - 1) // seq_len
    config.train.num_epochs = num_epochs  # epochs over the training stream
    config.train.num_steps = 0  # unused (num_epochs > 0)
    config.train.batch_size = 20  # parallel streams
    config.train.seq_len = seq_len  # BPTT window; the carry passes between windows
    config.train.log_every = max(1, steps_per_epoch // 10)  # ten train logs per epoch
    config.train.eval_every = steps_per_epoch  # validation once per epoch
    config.train.checkpoint_every = 500  # steps between checkpoints (resumable mid-epoch)
    config.train.keep_checkpoints = 2  # latest checkpoints kept (plus the best)
    config.train.dtype = "float32"  # compute dtype
    config.train.early_stopping_patience = 0  # off: the schedule is fixed
    config.train.best_metric = "perplexity"  # validation metric picking the best checkpoint

    config.eval.batch_size = 1  # TF's reproduction evaluates with batch 1, state carried
    return config


# Config-string arguments (`ptb_small.py:cell=gru,learning_rate=0.5`), the same as the
# --config.model.cell / --config.optim.learning_rate / --config.train.num_epochs overrides;
# the learning-rate search of `python -m experiments run ptb_zaremba ptb_lr` uses them.
ARGUMENTS = {"cell": "lstm", "learning_rate": 1.0, "num_epochs": 13}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    fields = arguments.parse(arg, ARGUMENTS)
    config = zaremba_config(
        hidden_size=200,
        seq_len=20,
        dropout=0.0,
        init_scale=0.1,
        num_epochs=fields["num_epochs"],
        decay_after_epochs=4,
        decay_factor=0.5,
        grad_clip_norm=5.0,
    )
    config.model.cell = fields["cell"]
    config.optim.learning_rate = fields["learning_rate"]
    return config
