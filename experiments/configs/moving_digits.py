"""Moving digits (train/tasks/moving_digits.py): 10 frames of two bouncing digits in, the next 10
predicted, on a 32 x 32 canvas. Shi et al. (2015)'s encoder-forecaster with ConvLSTM layers, or
the same with any other cell on flattened frames (their FC-LSTM comparison), or a non-recurrent
3-D convolutional network; trained in the same loop with the same optimiser.

  python -m train.main --config=experiments/configs/moving_digits.py --workdir=/tmp/md
  python -m train.main --config=experiments/configs/moving_digits.py:model=conv3d ...
  python -m train.main --config=experiments/configs/moving_digits.py:model=fc,cell=lstm ...

Arguments: model ('convlstm' | 'fc' | 'conv3d'), cell (the fc model's cell; convlstm is
'convlstm'), hidden_size (feature maps, units or channels; 0: the model's default),
num_layers, kernel (the ConvLSTM's and the 3-D network's spatial kernel), canvas, digit_size,
num_digits, learning_rate, num_steps, batch_size, seed, param_budget (> 0: the width that
gives the model that many parameters, `train/budget.py`).

Shi et al.'s Moving MNIST setup differs: 64 x 64 canvases of two 28 x 28 MNIST digits, 10 + 10
frames, 3 x 3 ... 5 x 5 kernels, 64-256 feature maps over 2-3 layers, RMSProp (lr 1e-3, decay
0.9) for their full training; this is a CPU-sized version on the bundled 8 x 8 digits.
"""

import ml_collections

from experiments.configs import arguments
from train import config_base

ARGUMENTS = {
    "seed": 0,
    "model": "convlstm",  # 'convlstm' | 'fc' | 'conv3d'
    "cell": "lstm",  # the fc model's cell
    "hidden_size": 0,  # 0: DEFAULT_WIDTHS[model]
    "num_layers": 2,
    "kernel": 5,
    "canvas": 32,
    "digit_size": 16,
    "num_digits": 2,
    "learning_rate": 1e-3,
    "num_steps": 1000,
    "batch_size": 16,
    "param_budget": 0,
}
MODELS = ("convlstm", "fc", "conv3d")
DEFAULT_WIDTHS = {"convlstm": 8, "fc": 256, "conv3d": 16}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    fields = arguments.parse(arg, ARGUMENTS)
    model = fields["model"]
    if model not in MODELS:
        raise ValueError(f"moving_digits.py: model={model!r}; valid: {', '.join(MODELS)}.")
    width = fields["hidden_size"] or DEFAULT_WIDTHS[model]
    canvas, kernel = fields["canvas"], fields["kernel"]
    config = config_base.base_config()
    config.task = "moving_digits"
    config.seed = fields["seed"]
    cell = "convlstm" if model == "convlstm" else fields["cell"]
    config.name = f"moving_digits_{model}" + (f"_{cell}" if model == "fc" else "")

    config.data.path = "data/digits/digits.csv.gz"
    config.data.canvas_size = canvas
    config.data.digit_size = fields["digit_size"]
    config.data.num_digits = fields["num_digits"]
    config.data.speed = 2.0  # pixels per frame
    config.data.input_frames = 10
    config.data.output_frames = 10
    config.data.num_valid = 256
    config.data.num_test = 256

    config.model.architecture = "conv3d" if model == "conv3d" else "encoder_forecaster"
    config.model.conv_kernel = kernel
    config.model.cell = cell
    config.model.cell_options = (
        {"spatial_shape": (canvas, canvas), "kernel_size": kernel}
        if model == "convlstm"
        else arguments.required_cell_options(cell, width)
    )
    config.model.hidden_size = width
    config.model.param_budget = fields["param_budget"]
    config.model.num_layers = fields["num_layers"]
    config.model.dropout = 0.0

    config.optim.optimizer = "adam"
    config.optim.learning_rate = fields["learning_rate"]
    config.optim.grad_clip_norm = 1.0

    config.train.num_steps = fields["num_steps"]
    config.train.batch_size = fields["batch_size"]
    config.train.log_every = 50
    config.train.eval_every = 250
    config.train.checkpoint_every = 250
    config.eval.batch_size = 32
    return config
