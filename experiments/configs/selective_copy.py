"""Selective copying (Gu & Dao 2023; Feng et al. 2024): recall K symbols scattered among noise.

Input: K symbols from {1..8} at random distinct steps (kept in order) of T noise steps (blank),
then K markers; target: the K symbols in order at the marker steps. Loss: cross-entropy over
those K steps only; the memoryless baseline (each step's symbol frequencies on the same fixed
set) scores about log 8 = 2.08 nats and 1/8 accuracy; "solved" = test cross-entropy at most 5%
of that (`train/tasks/long_range.py`). The papers run T = 4096 with 16 symbols; the defaults
here (T = 100, K = 8) fit a CPU budget.

  python -m train.main --config=experiments/configs/selective_copy.py:length=100,cell=mingru \
      --workdir=/tmp/selective_copy_mingru
"""

import ml_collections

from experiments.configs import adding, arguments

# Config-string arguments and their defaults (the copy task's, plus K).
ARGUMENTS = {**adding.ARGUMENTS, "hidden_size": 64, "num_steps": 2000, "num_tokens": 8}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    fields = arguments.parse(arg, ARGUMENTS)
    config = adding.get_config(None, {k: fields[k] for k in adding.ARGUMENTS})
    config.task = "selective_copy"
    config.data.num_tokens = fields["num_tokens"]  # K, symbols to recall
    config.train.best_metric = "cross_entropy"
    return config
