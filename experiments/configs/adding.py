"""The adding problem (Hochreiter & Schmidhuber 1997; Le et al. 2015's setup), any length T.

Two input channels (values ~ U[0, 1], and a marker channel with one 1 in each half); the target
is the sum of the two marked values, read from the last hidden state. Predicting 1.0 always
scores MSE 1/6 = 0.167 in expectation (the baseline is measured on each fixed set); "solved" =
MSE at most 5% of that set's baseline. Train batches are generated on the fly from
(seed, step); valid / test are fixed sets of `num_valid` / `num_test` sequences.

  python -m train.main --config=experiments/configs/adding.py:length=100,cell=lstm \
      --workdir=/tmp/adding_100_lstm

Grid (T in 50/100/200/400 x rnn/lstm/gru, resumable): `python -m experiments run long_range adding`.

[results]
Test mse (steps to solve; wall s); baseline per T in the JSONs:
  adding_50_gru: 0.0001 (300; 77 s)
  adding_50_lstm: 0.0001 (600; 82 s)
  adding_50_rnn: 0.1537 (unsolved; 41 s)
  adding_100_gru: 0.0001 (300; 157 s)
  adding_100_lstm: 0.0001 (1000; 167 s)
  adding_100_rnn: 0.1668 (unsolved; 51 s)
  adding_200_gru: 0.0001 (400; 109 s)
  adding_200_lstm: 0.0006 (2100; 315 s)
  adding_200_rnn: 0.1584 (unsolved; 263 s)
  adding_400_gru: 0.0001 (400; 302 s)
  adding_400_lstm: 0.1649 (unsolved; 360 s)
  adding_400_rnn: 0.1657 (unsolved; 41 s)
[/results]
"""

import ml_collections

from experiments.configs import arguments
from train import config_base

# Config-string arguments and their defaults (experiments/configs/arguments.py).
ARGUMENTS = {
    "seed": 0,
    "length": 100,
    "cell": "lstm",
    "hidden_size": 32,
    "learning_rate": 1e-2,
    "num_steps": 3000,
    "patience": 15,
    "stop_when_solved": False,  # end at the first validation pass that solves the task
    "chrono_t_max": 0.0,  # > 2: chrono initialisation for dependencies up to T (lstm, gru)
}


def get_config(arg: str | None = None, defaults: dict | None = None) -> ml_collections.ConfigDict:
    fields = arguments.parse(arg, defaults or ARGUMENTS)
    config = config_base.base_config()
    config.task = "adding"
    config.seed = fields["seed"]

    config.data.length = fields["length"]  # T, steps per sequence
    config.data.num_valid = 1000  # fixed validation sequences
    config.data.num_test = 2000  # fixed test sequences

    config.model.cell = fields["cell"]  # any registered cell or 'module:Class'
    config.model.hidden_size = fields["hidden_size"]
    config.model.num_layers = 1
    config.model.dropout = 0.0
    options = arguments.required_cell_options(fields["cell"], fields["hidden_size"])
    if fields["chrono_t_max"]:  # Tallec & Ollivier 2018 (cells/lstm.py, cells/gru.py)
        options["chrono_t_max"] = fields["chrono_t_max"]
    config.model.cell_options = options

    config.optim.optimizer = "adam"
    config.optim.learning_rate = fields["learning_rate"]
    config.optim.grad_clip_norm = 1.0

    config.train.num_steps = fields["num_steps"]
    config.train.batch_size = 50
    config.train.log_every = 100
    config.train.eval_every = 100
    config.train.checkpoint_every = 100
    config.train.keep_checkpoints = 1
    config.train.early_stopping_patience = fields["patience"]  # 1500 steps
    config.train.stop_when_solved = fields["stop_when_solved"]
    config.train.best_metric = "mse"

    config.eval.batch_size = 1000
    return config
