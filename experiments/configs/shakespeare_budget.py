"""Tiny Shakespeare characters at a time budget: one model family per `family`, all trained and
scored alike, on batches of 4,096 characters (the GPT 16 windows of its 256-character context,
the recurrent families 32 streams of 128) (experiments/studies/recurrent_vs_attention/README.md).

    python -m train.main --config=experiments/configs/shakespeare_budget.py:family=gru,minutes=5 \\
        --workdir=/tmp/gru5
    python -m train.main --config=experiments/configs/shakespeare_budget.py:family=gpt,minutes=5,\\
num_layers=4,hidden_size=128 --workdir=/tmp/gpt5

Families: 'gpt' (nanoGPT's GPT, experiments/configs/shakespeare_gpt.py with the arguments
below), 'lstm' and 'gru' (a plain stack), 'mingru' and 'slstm' (pre-norm residual blocks with
a gated FFN of twice the width, the minGRU and xLSTM papers' block).

What every family shares: the first 90% of the text trains and the last 10% validates; every
run is scored on every non-overlapping window of `eval_window` (256) validation characters, each
predicted from inside its window (the recurrent families also report their carried-state
score, `valid_carried`); AdamW with betas (0.9, 0.99), weight decay 0.1 on matrices and
embeddings, `warmup_steps` of linear warm-up then a cosine decay to a tenth of the rate over
the run, gradient clip 1.0, no dropout; `minutes` of training steps (the step count planned
from the measured speed: train/time_budget.py), or `num_steps` when minutes is 0. The GPT
trains on random windows of its context (nanoGPT's batches); the recurrent families on
truncated-BPTT streams of `seq_len` characters with the state carried between windows (their
natural use; `train_windows=random` gives them the GPT's batches instead).

Arguments: family, seed, minutes, num_steps, num_layers, hidden_size, num_heads (gpt; slstm's
heads), learning_rate, batch_size, seq_len (gpt: 0 = block_size), block_size (gpt), eval_window,
warmup_steps, train_windows ('' = the family's own).
"""

import ml_collections

from experiments.configs import arguments, shakespeare_gpt
from train import config_base
from train.tasks import lm

FAMILIES = ("gpt", "lstm", "gru", "mingru", "slstm")
RESIDUAL = ("mingru", "slstm")  # in pre-norm residual blocks with a gated FFN

ARGUMENTS = {
    "family": "lstm",
    "seed": 0,
    "minutes": 0.0,
    "num_steps": 1000,
    "num_layers": 2,
    "hidden_size": 256,
    "num_heads": 4,
    "learning_rate": 2e-3,
    "batch_size": 0,  # 0: 16 windows of 256 for the GPT, 32 of 128 for the others
    "seq_len": 128,
    "block_size": 256,
    "eval_window": 256,
    "warmup_steps": 50,
    "train_windows": "",
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    f = arguments.parse(arg, ARGUMENTS)
    family = f["family"]
    f["batch_size"] = f["batch_size"] or (16 if family == "gpt" else 32)
    if family not in FAMILIES:
        raise ValueError(f"shakespeare_budget.py: family={family!r}; valid: {', '.join(FAMILIES)}.")
    if family == "gpt":
        config = _gpt(f)
    else:
        config = _recurrent(f)
    config.name = f"shakespeare_budget_{family}"
    config.train.time_budget_minutes = f["minutes"]
    config.train.num_steps = f["num_steps"]
    config.train.eval_every = 0  # one validation pass, at the end: the model the budget buys
    config.train.checkpoint_every = 500
    if f["train_windows"]:
        config.data.train_windows = f["train_windows"]
    return config


def _gpt(f: dict) -> ml_collections.ConfigDict:
    keys = ("seed", "num_layers", "num_heads", "hidden_size", "block_size", "batch_size",
            "learning_rate", "warmup_steps", "eval_window")  # fmt: skip
    args = {k: f[k] for k in keys}
    args.update(seq_len=0 if f["seq_len"] == ARGUMENTS["seq_len"] else f["seq_len"],
                min_learning_rate=f["learning_rate"] / 10, eval_every=0)  # fmt: skip
    return shakespeare_gpt.get_config(",".join(f"{k}={v}" for k, v in args.items()))


def _recurrent(f: dict) -> ml_collections.ConfigDict:
    family = f["family"]
    config = config_base.base_config()
    config.task = "lm"
    config.seed = f["seed"]
    config.data.path = "data/tinyshakespeare/input.txt.gz"  # sha256-checked
    config.data.level = "char"
    config.data.valid_fraction = 0.1
    config.data.test_fraction = 0.0  # 'test' reports the validation split again
    config.data.update(lm.DATA_FIELDS)
    config.data.eval_window = f["eval_window"]  # like for like; valid_carried beside it

    config.model.update(lm.REGULARIZATION)
    config.model.update(lm.GPT_FIELDS)  # kind 'rnn': the GPT's fields stay at their defaults
    config.model.cell = family
    if family == "slstm":
        config.model.cell_options = ml_collections.ConfigDict({"num_heads": f["num_heads"]})
    config.model.hidden_size = f["hidden_size"]
    config.model.num_layers = f["num_layers"]
    config.model.dropout = 0.0
    config.model.embed_size = 0  # the hidden size
    config.model.tie_embeddings = False
    config.model.objective = "token_mean"
    if family in RESIDUAL:
        config.model.block = "residual"
        config.model.block_norm = "layer"
        config.model.block_ffn_factor = 2.0

    o = config.optim  # the GPT's recipe (experiments/configs/shakespeare_gpt.py)
    o.optimizer, o.learning_rate = "adamw", f["learning_rate"]
    o.min_learning_rate = f["learning_rate"] / 10
    o.beta2, o.weight_decay, o.decay_matrices_only = 0.99, 0.1, True
    o.schedule, o.warmup_steps, o.grad_clip_norm = "cosine", f["warmup_steps"], 1.0

    t = config.train
    t.batch_size, t.seq_len = f["batch_size"], f["seq_len"]
    t.log_every = 50
    t.keep_checkpoints = 1
    config.eval.batch_size = 64
    return config
