"""A GPT on Tiny Shakespeare characters: nanoGPT's CPU configuration, in this project's loop.

The defaults are the command of nanoGPT's README for a laptop CPU
(`config/train_shakespeare_char.py --device=cpu --compile=False --eval_iters=20
--log_interval=1 --block_size=64 --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128
--max_iters=2000 --lr_decay_iters=2000 --dropout=0.0`), which their README reports reaches a
validation loss of about 1.88 nats/char:

    4 layers, 4 heads, width 128, context 64, no biases, no dropout (0.80M parameters)
    AdamW, lr 1e-3, betas (0.9, 0.99), weight decay 0.1 on matrices and embeddings only,
    100 warm-up steps, cosine decay to 1e-4 over 2,000 steps, gradient clip 1.0
    batch 12 windows of 64 characters at random offsets of the first 90% of the text

    python -m train.main --config=experiments/configs/shakespeare_gpt.py --workdir=/tmp/gpt
    python -m train.main --config=experiments/configs/shakespeare_gpt.py:minutes=5,... \\
        --workdir=/tmp/gpt5          # trained to a budget of 5 minutes of training steps

Validation is every non-overlapping window of `eval_window` characters of the last 10%,
scored inside its window (nanoGPT's estimate_loss draws 20 random windows of 64 instead: the
same quantity, noisier). What differs from nanoGPT: the vocabulary comes from the training
90% (the same 65 characters here), the split point is n - floor(0.1 n) (one character later than
their floor(0.9 n)), the warm-up starts at 0 rather than lr / 101, and nanoGPT runs 2,001
updates (iterations 0..2000) against our 2,000.

Arguments: seed, num_layers, num_heads, hidden_size (nanoGPT's n_embd), block_size,
batch_size, seq_len (0: block_size), num_steps, minutes (> 0: a time budget replacing
num_steps), learning_rate, min_learning_rate, warmup_steps, weight_decay, dropout, bias,
eval_window (0: block_size), eval_every.
"""

import ml_collections

from experiments.configs import arguments
from train import config_base

ARGUMENTS = {
    "seed": 0,
    "num_layers": 4,
    "num_heads": 4,
    "hidden_size": 128,
    "block_size": 64,
    "batch_size": 12,
    "seq_len": 0,
    "num_steps": 2000,
    "minutes": 0.0,
    "learning_rate": 1e-3,
    "min_learning_rate": 1e-4,
    "warmup_steps": 100,
    "weight_decay": 0.1,
    "dropout": 0.0,
    "bias": False,
    "eval_window": 0,
    "eval_every": 250,
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    fields = arguments.parse(arg, ARGUMENTS)
    config = config_base.base_config()
    config.task = "lm"
    config.name = "shakespeare_gpt"
    config.seed = fields["seed"]

    config.data.path = "data/tinyshakespeare/input.txt.gz"  # sha256-checked
    config.data.level = "char"
    config.data.valid_fraction = 0.1  # the last 10% validates
    config.data.test_fraction = 0.0  # 'test' reports the validation split again
    config.data.train_windows = "random"  # nanoGPT's get_batch
    config.data.eval_window = fields["eval_window"] or fields["block_size"]

    config.model.kind = "gpt"
    config.model.num_layers = fields["num_layers"]  # nanoGPT's n_layer
    config.model.num_heads = fields["num_heads"]  # n_head
    config.model.hidden_size = fields["hidden_size"]  # n_embd
    config.model.block_size = fields["block_size"]
    config.model.bias = fields["bias"]
    config.model.dropout = fields["dropout"]
    config.model.tie_embeddings = True  # the output layer is the embedding
    config.model.objective = "token_mean"  # mean nll per character

    config.optim.optimizer = "adamw"
    config.optim.learning_rate = fields["learning_rate"]
    config.optim.min_learning_rate = fields["min_learning_rate"]
    config.optim.beta2 = 0.99
    config.optim.weight_decay = fields["weight_decay"]
    config.optim.decay_matrices_only = True  # nanoGPT's two parameter groups
    config.optim.schedule = "cosine"
    config.optim.warmup_steps = fields["warmup_steps"]
    config.optim.grad_clip_norm = 1.0

    config.train.num_steps = fields["num_steps"]
    config.train.time_budget_minutes = fields["minutes"]
    config.train.batch_size = fields["batch_size"]
    config.train.seq_len = fields["seq_len"] or fields["block_size"]
    config.train.log_every = 50
    config.train.eval_every = fields["eval_every"]
    config.train.checkpoint_every = fields["eval_every"]
    config.train.keep_checkpoints = 1
    config.eval.batch_size = 64
    return config
