"""MNIST-1D (Greydanus & Kobak 2024) with the published GRU baseline's setup.

Published (the paper's benchmark table; the authors' notebooks/models.py GRUBase and train.py,
greydanus/mnist1d at 7878d96, read for this): test accuracy GRU 91% (a bidirectional GRU with 6
units per direction over the 40 steps, a linear layer on the flattened 480 outputs), CNN 94%,
MLP 68%, logistic regression 32%. Training as their train.py: Adam lr 1e-2, batch 100, 8,000
steps, no weight decay, PyTorch's default init. Deviations: the last 400 of the 4,000 training
sequences are held out for validation (the published runs have none and report the final
model; here the checkpoint with the lowest validation loss is tested), and batches are
shuffled per epoch (theirs walk the training set in order).

  python -m train.main --config=experiments/configs/mnist1d.py:seed=0 --workdir=/tmp/mnist1d
  python -m train.main --config=experiments/configs/mnist1d.py:cell=lstm,head=mean ...
  python -m train.main --config=experiments/configs/mnist1d.py:torch_init=True ...  # PyTorch's init
  python -m train.main --config=experiments/configs/mnist1d.py:model=cnn ...  # or mlp, logistic

The published non-recurrent baselines (`model=cnn|mlp|logistic`, train/tasks/mnist1d.py: the
authors' ConvBase with 25 channels, MLPBase with 100 units, LinearBase) train exactly as the GRU.
"""

import ml_collections

from experiments.configs import arguments
from train import config_base

ARGUMENTS = {
    "seed": 0,
    "model": "rnn",  # 'rnn' | 'cnn' | 'mlp' | 'logistic'
    "cell": "gru",
    "hidden_size": 0,  # 0: the model's published width (rnn 6, cnn 25 channels, mlp 100)
    "bidirectional": True,
    "head": "flatten",
    "torch_init": False,
    "learning_rate": 1e-2,
    "num_steps": 8000,
}


PUBLISHED_WIDTHS = {"rnn": 6, "cnn": 25, "mlp": 100}  # logistic: none


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    fields = arguments.parse(arg, ARGUMENTS)
    model = fields["model"]
    fields["hidden_size"] = fields["hidden_size"] or PUBLISHED_WIDTHS.get(model, 6)
    config = config_base.base_config()
    config.task = "mnist1d"
    config.seed = fields["seed"]
    direction = "bi" if fields["bidirectional"] else ""
    init = "_torchinit" if fields["torch_init"] else ""
    config.name = (
        f"mnist1d_{direction}{fields['cell']}{fields['hidden_size']}_{fields['head']}{init}"
        if model == "rnn"
        else f"mnist1d_{model}" + ("" if model == "logistic" else str(fields["hidden_size"]))
    )

    config.data.path = "data/mnist1d/mnist1d.npz"
    config.data.num_valid = 400  # the last 400 training sequences

    config.model.architecture = model  # train/tasks/mnist1d.py
    config.model.cell = fields["cell"]  # any registered cell or 'module:Class' ('rnn')
    # What a cell needs beyond its width (lstmp: proj_size).
    config.model.cell_options = arguments.required_cell_options(
        fields["cell"], fields["hidden_size"]
    )
    config.model.hidden_size = fields["hidden_size"]  # units per direction
    config.model.bidirectional = fields["bidirectional"]
    config.model.head = fields["head"]  # 'flatten' (published) | 'mean' | 'last'
    config.model.num_layers = 1
    config.model.dropout = 0.0
    # torch_init: every recurrent weight and bias uniform in +-1/sqrt(hidden), as PyTorch's GRU.
    config.model.init_scale = fields["hidden_size"] ** -0.5 if fields["torch_init"] else 0.0

    config.optim.optimizer = "adam"
    config.optim.learning_rate = fields["learning_rate"]

    config.train.num_steps = fields["num_steps"]
    config.train.batch_size = 100
    config.train.log_every = 500
    config.train.eval_every = 250  # as their eval_every
    config.train.checkpoint_every = 250
    config.train.keep_checkpoints = 1
    config.train.best_metric = "loss"

    config.eval.batch_size = 500
    return config
