"""Isolated spoken digits (FSDD, 6 speakers x 10 digits x 50 takes, 8 kHz): which digit is it?

Features and splits: train/data/speech.py (40 log-mel frames per 10 ms, train-set
normalisation). `split=speaker_dependent` is the source's test set (takes 0-4 of every speaker)
with takes 5-9 held out for validation and 10-49 for training; `split=speaker_independent` holds
out `test_speaker` (default jackson) for test and `valid_speaker` (default nicolas) for
validation, the other four speakers train.

Model: a bidirectional LSTM (`cell`, `hidden_size` units per direction, `num_layers`), the mean
of its outputs over each recording's frames (`lengths`: padding never reaches the model), a
dense layer to 10 logits; or the baselines `model=cnn` (two 1-D convolutions, kernel 5, and the
same pooling) and `model=logistic` (logistic regression on the utterance-mean log-mel vector).
Adam 1e-3, batch 32, clip 1, at most `epochs` epochs with validation after each and early
stopping after 5 without a lower validation loss; the best checkpoint is tested.
`normalization=utterance` normalises each recording with its own frames' mean and std (CMVN)
instead of the training set's (the `*_cmvn` rows).

[results]
Test accuracy, mean +- sample std over the seeds (wall s per run):
  speaker_dependent bilstm: 0.988 +- 0.002 (3 seeds; 82-102 s)
  speaker_dependent bilstm_cmvn: 0.951 +- 0.015 (3 seeds; 62-119 s)
  speaker_dependent cnn: 0.988 +- 0.004 (3 seeds; 33-48 s)
  speaker_dependent cnn_cmvn: 0.963 +- 0.003 (3 seeds; 30-49 s)
  speaker_dependent logistic: 0.783 +- 0.015 (3 seeds; 6-8 s)
  speaker_dependent lstm: 0.969 +- 0.011 (3 seeds; 42-65 s)
  speaker_independent bilstm: 0.565 +- 0.093 (3 seeds; 27-44 s)
  speaker_independent bilstm_cmvn: 0.680 +- 0.050 (3 seeds; 37-41 s)
  speaker_independent cnn: 0.471 +- 0.099 (3 seeds; 14-18 s)
  speaker_independent cnn_cmvn: 0.675 +- 0.037 (3 seeds; 14-15 s)
  speaker_independent logistic: 0.491 +- 0.030 (3 seeds; 9-10 s)
  speaker_independent lstm: 0.445 +- 0.118 (3 seeds; 16-27 s)
Commits a66ac6b, cd9fcb5; experiments/studies/speech/results/.
[/results]

  python -m train.main --config=experiments/configs/spoken_digits.py --workdir=/tmp/digits
  python -m train.main \\
      --config=experiments/configs/spoken_digits.py:split=speaker_independent,model=cnn \\
      --workdir=/tmp/digits_cnn
"""

import ml_collections

from experiments.configs import arguments
from train import config_base

ARGUMENTS = {
    "seed": 0,
    "split": "speaker_dependent",
    "test_speaker": "jackson",
    "valid_speaker": "nicolas",
    "normalization": "train",
    "model": "rnn",
    "cell": "lstm",
    "bidirectional": True,
    "hidden_size": 64,
    "num_layers": 1,
    "learning_rate": 1e-3,
    "epochs": 30,
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    fields = arguments.parse(arg, ARGUMENTS)
    config = config_base.base_config()
    config.task = "spoken_digits"
    config.seed = fields["seed"]
    label = fields["model"]
    if label == "rnn":  # 'bilstm', 'lstm', 'bigru', ...
        label = ("bi" if fields["bidirectional"] else "") + fields["cell"]
    config.name = f"spoken_digits_{fields['split']}_{label}"
    if fields["normalization"] == "utterance":
        config.name += "_cmvn"

    config.data.split = fields["split"]  # 'speaker_dependent' | 'speaker_independent'
    config.data.test_speaker = fields["test_speaker"]  # speaker_independent only
    config.data.valid_speaker = fields["valid_speaker"]  # speaker_independent only
    config.data.normalization = fields["normalization"]  # 'train' | 'utterance' (CMVN)
    config.data.cache_dir = ""  # features cache; '' = ~/.cache/rnn_cells/fsdd

    config.model.architecture = fields["model"]  # 'rnn' | 'cnn' | 'logistic'
    config.model.cell = fields["cell"]  # any registered cell or 'module:Class'
    config.model.cell_options = arguments.required_cell_options(
        fields["cell"], fields["hidden_size"]
    )  # what a cell needs beyond its width (lstmp: proj_size)
    config.model.bidirectional = fields["bidirectional"]
    config.model.hidden_size = fields["hidden_size"]  # units per direction (cnn: channels)
    config.model.num_layers = fields["num_layers"]
    config.model.dropout = 0.0

    config.optim.optimizer = "adam"
    config.optim.learning_rate = fields["learning_rate"]
    config.optim.grad_clip_norm = 1.0

    steps_per_epoch = 2400 // 32 if fields["split"] == "speaker_dependent" else 2000 // 32
    config.train.num_epochs = fields["epochs"]
    config.train.num_steps = 0
    config.train.batch_size = 32
    config.train.log_every = steps_per_epoch
    config.train.eval_every = steps_per_epoch  # validation after every epoch
    config.train.checkpoint_every = steps_per_epoch
    config.train.keep_checkpoints = 1
    config.train.early_stopping_patience = 5
    config.train.best_metric = "loss"

    config.eval.batch_size = 100
    return config
