"""Penn Treebank word-level LM, Kim, Jernite, Sontag & Rush 2016, LSTM-Word-Small (the word-level
baseline of "Character-Aware Neural Language Models"). Paper: test perplexity 97.6.

Settings (../shared/REFERENCE.md, from the authors' Torch code yoonkim/lstm-char-cnn, main.lua
options): 2 layers x 200 LSTM units, 200-dim word embeddings; dropout 0.5 on the inputs of the
layers above the first and before the softmax, none on the embedding input (dropout_input=0);
SGD lr 1, halved whenever validation perplexity improves by less than 1 (their `decay_when` 1,
`learning_rate_decay` 0.5; schedule 'plateau' here, checked once per epoch); 25 epochs; BPTT 35;
batch 20; gradient global norm clipped at 5; every parameter uniform in [-0.05, 0.05]. Their
gradient is the per-step batch-mean NLL summed over the window (the reported loss is divided by
seq_length, the gradient is not), i.e. this project's 'window_sum' objective, as Zaremba's.

  python -m train.main --config=experiments/configs/ptb_kim_small.py --workdir=workdirs/ptb_kim

[results]
Not yet run: 25 epochs x 1,327 steps; about one ptb_small-sized epoch of compute each (2 x 200
units, BPTT 35), so roughly 1 h per seed on this 2-core CPU.
[/results]
"""

import ml_collections

from experiments.configs import ptb_small


def get_config() -> ml_collections.ConfigDict:
    config = ptb_small.zaremba_config(
        hidden_size=200,
        seq_len=35,
        dropout=0.5,
        init_scale=0.05,
        num_epochs=25,
        decay_after_epochs=0,
        decay_factor=0.5,
        grad_clip_norm=5.0,
    )
    config.model.dropout_input = 0.0  # no dropout on the embedding input (Kim et al.)
    config.optim.schedule = "plateau"  # lr x decay_factor when valid ppl improves by < 1
    config.optim.plateau_metric = "perplexity"
    config.optim.plateau_threshold = 1.0
    return config
