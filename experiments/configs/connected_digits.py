"""Connected spoken digits (FSDD strings of 1-7 digits, CTC): what digits were said, in order?

Strings (train/data/speech.py, `digit_string`): recordings of one speaker joined with 50-300 ms
of near-silence (dither 1e-4) before, between and after them, at most 6 s; training strings are
drawn from the training recordings afresh at every step (from the run seed and the step),
the valid and test strings (`num_valid`, `num_test`) from theirs, fixed for every run seed. The
splits are those of spoken_digits.py (speaker-dependent: takes 0-4 test, 5-9 valid, 10-49
train; speaker-independent: `test_speaker` / `valid_speaker` held out). Features: 40 log-mel
per 10 ms, train-set normalisation (default), two frames stacked (80 features per 20 ms).

Model: `num_layers` bidirectional LSTM layers (`hidden_size` units per direction), a dense
layer to 11 classes per frame (the CTC blank and 10 digits); optax.ctc_loss; Adam 1e-3, batch
16, clip 1, `num_steps` steps, validation every 250 with early stopping after 6 without a lower
CTC loss. Reported: CTC loss, digit error rate (Levenshtein edits / reference digits) and
string accuracy of greedy decoding; `experiments.tools.transcribe` adds prefix beam search.
`normalization=utterance` normalises each string with its own frames' mean and std (CMVN).

[results]
Test digit error rate / string accuracy (greedy decoding), mean +- sample std (wall s per run):
  speaker_dependent bilstm: 0.010 +- 0.008 / 0.963 +- 0.032 (3 seeds; 323-430 s)
  speaker_dependent lstm: 0.009 +- 0.002 / 0.965 +- 0.005 (3 seeds; 255-361 s)
  speaker_independent bilstm: 0.521 +- 0.077 / 0.131 +- 0.035 (3 seeds; 293-318 s)
  speaker_independent bilstm_cmvn: 0.100 +- 0.046 / 0.674 +- 0.130 (3 seeds; 397-459 s)
  speaker_independent lstm: 0.629 +- 0.322 / 0.125 +- 0.109 (3 seeds; 201-274 s)
Commits a66ac6b, cd9fcb5; experiments/studies/speech/results/.
[/results]

  python -m train.main --config=experiments/configs/connected_digits.py --workdir=/tmp/strings
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
    "cell": "lstm",
    "bidirectional": True,
    "hidden_size": 64,
    "num_layers": 2,
    "learning_rate": 1e-3,
    "num_steps": 3000,
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    fields = arguments.parse(arg, ARGUMENTS)
    config = config_base.base_config()
    config.task = "connected_digits"
    config.seed = fields["seed"]
    label = ("bi" if fields["bidirectional"] else "") + fields["cell"]
    config.name = f"connected_digits_{fields['split']}_{label}"
    if fields["normalization"] == "utterance":
        config.name += "_cmvn"

    config.data.split = fields["split"]  # 'speaker_dependent' | 'speaker_independent'
    config.data.test_speaker = fields["test_speaker"]  # speaker_independent only
    config.data.valid_speaker = fields["valid_speaker"]  # speaker_independent only
    config.data.normalization = fields["normalization"]  # 'train' | 'utterance' (CMVN)
    config.data.cache_dir = ""  # features cache; '' = ~/.cache/rnn_cells/fsdd
    config.data.max_digits = 7  # digits per string: 1..max_digits
    config.data.frame_stack = 2  # frames stacked into one step (20 ms)
    config.data.num_valid = 300  # fixed validation strings
    config.data.num_test = 500  # fixed test strings

    config.model.cell = fields["cell"]  # any registered cell or 'module:Class'
    config.model.cell_options = arguments.required_cell_options(
        fields["cell"], fields["hidden_size"]
    )  # what a cell needs beyond its width (lstmp: proj_size)
    config.model.bidirectional = fields["bidirectional"]
    config.model.hidden_size = fields["hidden_size"]  # units per direction
    config.model.num_layers = fields["num_layers"]
    config.model.dropout = 0.0

    config.optim.optimizer = "adam"
    config.optim.learning_rate = fields["learning_rate"]
    config.optim.grad_clip_norm = 1.0

    config.train.num_steps = fields["num_steps"]
    config.train.batch_size = 16
    config.train.log_every = 50
    config.train.eval_every = 250
    config.train.checkpoint_every = 250
    config.train.keep_checkpoints = 1
    config.train.early_stopping_patience = 6
    config.train.best_metric = "loss"

    config.eval.batch_size = 100
    return config
