"""Penn Treebank word-level LM, Kim, Jernite, Sontag & Rush 2016, LSTM-Word-Small (the word-level
baseline of "Character-Aware Neural Language Models"). Paper: test perplexity 97.6.

Settings (Kim et al. 2016, from the authors' Torch code yoonkim/lstm-char-cnn, main.lua
options): 2 layers x 200 LSTM units, 200-dim word embeddings; dropout 0.5 on the inputs of the
layers above the first and before the softmax, none on the embedding input (dropout_input=0);
SGD lr 1, halved whenever validation perplexity improves by less than 1 (their `decay_when` 1,
`learning_rate_decay` 0.5; schedule 'plateau' here, checked once per epoch); 25 epochs; BPTT 35;
batch 20; gradient global norm clipped at 5; every parameter uniform in [-0.05, 0.05]. Their
gradient is the per-step batch-mean NLL summed over the window (the reported loss is divided by
seq_length, the gradient is not), i.e. this project's 'window_sum' objective, as Zaremba's.

  python -m train.main --config=experiments/configs/ptb_kim_small.py --workdir=workdirs/ptb_kim
  python -m train.main --config=experiments/configs/ptb_kim_small.py:variant=tied,seed=1 ...
  python -m experiments run kim2016 baseline ablation   # the study's runs

`variant` selects a row of the regularisation ablation at this size and epoch budget (each
adds one tool of Merity et al. 2018's AWD-LSTM to Word-Small; `awd` all of them together):

  baseline     Kim et al.'s Word-Small as above
  tied         + weight tying of embedding and softmax (Press & Wolf 2017; Inan et al. 2017)
  variational  + variational dropout: the three dropouts locked over time, and h dropped in the
               recurrent product with p = 0.25 (Gal & Ghahramani 2016)
  weight_drop  + DropConnect on w_hh, p = 0.5 (Wan et al. 2013; AWD-LSTM's value)
  ar_tar       + AR (alpha 2) and TAR (beta 1), AWD-LSTM's values
  nt_asgd      + NT-ASGD (non-monotone interval 5, AWD-LSTM's value) in place of the plateau
               halving: constant lr 1, iterate averaging once validation stalls
  awd          tied + locked dropout + weight drop 0.5 + embedding dropout 0.1 + AR/TAR +
               NT-ASGD ("AWD-style small")

[results]
25 epochs each, AMD EPYC 2 cores shared with other runs, commits 0967acf, 7de0a6e, ac183d7.
Baseline (seeds 0, 1): test perplexity 94.75 +- 0.21, valid 99.39 +- 0.30; paper 97.6. Ablation,
seed 0, test (against the baseline mean): tied 92.78 (-2.1%); variational 97.01 (+2.4%);
weight_drop 96.82 (+2.2%); ar_tar 96.20 (+1.5%); nt_asgd 103.69 (+9.4%); awd 119.05 (+25.6%).
Why each row lands where it does: experiments/studies/kim2016/README.md.
[/results]
"""

import ml_collections

from experiments.configs import arguments, ptb_small

ARGUMENTS = {"variant": "baseline", "seed": 0}

# config.model / config.optim changes of each ablation row (see the module docstring).
VARIANTS = {
    "baseline": {},
    "tied": {"model.tie_embeddings": True},
    "variational": {"model.locked_dropout": True, "model.recurrent_dropout": 0.25},
    "weight_drop": {"model.weight_drop": 0.5},
    "ar_tar": {"model.ar_alpha": 2.0, "model.tar_beta": 1.0},
    "nt_asgd": {
        "optim.schedule": "constant",
        "optim.plateau_metric": "loss",
        "optim.plateau_threshold": 0.0,
        "optim.nt_asgd_patience": 5,
    },
}
VARIANTS["awd"] = {
    **VARIANTS["tied"],
    "model.locked_dropout": True,
    **VARIANTS["weight_drop"],
    "model.embed_dropout": 0.1,
    **VARIANTS["ar_tar"],
    **VARIANTS["nt_asgd"],
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    fields = arguments.parse(arg, ARGUMENTS)
    if fields["variant"] not in VARIANTS:
        raise ValueError(
            f"config argument variant={fields['variant']!r}; valid: {', '.join(VARIANTS)}."
        )
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
    config.seed = fields["seed"]
    config.name = f"ptb_kim_small_{fields['variant']}_s{fields['seed']}"
    for key, value in VARIANTS[fields["variant"]].items():
        group, field = key.split(".")
        config[group][field] = value
    return config
