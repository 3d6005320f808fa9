"""The copy-memory task (Arjovsky et al. 2016): recall 10 symbols after T blanks.

Input: 10 symbols from {1..8}, T - 1 blanks, a delimiter, 10 blanks (T + 20 steps, one-hot);
target: T + 10 blanks, then the 10 symbols. Loss: cross-entropy averaged over all T + 20 steps;
the memoryless baseline scores 10 log(8) / (T + 20) in expectation (measured on each fixed set);
"solved" = cross-entropy at most 5% of that set's baseline.

  python -m train.main --config=experiments/configs/copy.py:length=100,cell=lstm \
      --workdir=/tmp/copy_100_lstm

Grid (T in 50/100/200 x rnn/lstm/gru, resumable): `python -m experiments run long_range copy`.

[results]
Test cross_entropy (steps to solve; wall s); baseline per T in the JSONs:
  copy_50_gru: 0.1649 (unsolved; 36 s)
  copy_50_lstm: 0.2693 (unsolved; 56 s)
  copy_50_rnn: 0.2975 (unsolved; 20 s)
  copy_100_gru: 0.1345 (unsolved; 72 s)
  copy_100_lstm: 0.1727 (unsolved; 190 s)
  copy_100_rnn: 0.1736 (unsolved; 33 s)
  copy_200_gru: 0.0765 (unsolved; 124 s)
  copy_200_lstm: 0.0946 (unsolved; 263 s)
  copy_200_rnn: 0.0947 (unsolved; 57 s)
[/results]
"""

import ml_collections

from experiments.configs import adding

# Config-string arguments and their defaults: the adding problem's, with a wider, shorter run.
ARGUMENTS = {**adding.ARGUMENTS, "hidden_size": 64, "num_steps": 2000}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = adding.get_config(arg, ARGUMENTS)
    config.task = "copy"
    config.train.best_metric = "cross_entropy"
    return config
