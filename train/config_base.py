"""The base configuration every experiment config starts from (the shared schema).

An experiment config is `experiments/configs/<name>.py` with a `get_config()` that calls
`base_config()` and changes what it needs; task-specific extras go under `config.model` and
`config.data`. `train/validate.py` checks a config against this schema before any compute:
unknown keys in the shared groups, wrong types and impossible values are refused with one line.
"""

from __future__ import annotations

import ml_collections

# The valid values of the schema's choice fields (cells: `cells.names()` or an import path).
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "epoch_decay", "plateau")
DTYPES = ("float32", "bfloat16", "auto")
SCAN_BACKWARDS = ("autodiff", "fused")
SCAN_BACKENDS = ("xla", "auto", "onednn")
BLOCKS = ("stack", "residual", "hawk")
BLOCK_NORMS = ("rms", "layer")


def base_config() -> ml_collections.ConfigDict:
    """The shared schema with defaults. Every field has a one-line comment."""
    config = ml_collections.ConfigDict()
    config.name = ""  # experiment name recorded in results.json; '' = the workdir's basename
    config.task = "synthetic"  # registered task name (train/tasks/registry.py)
    config.seed = 0  # seeds parameter init, dropout and any data shuffling

    config.model = ml_collections.ConfigDict()
    config.model.cell = "lstm"  # a registered cell (cells.names()) or 'package.module:Class'
    config.model.cell_options = ml_collections.ConfigDict()  # the cell's keyword arguments
    config.model.hidden_size = 128  # units per recurrent layer
    # > 0: choose hidden_size so the whole model has this many parameters (within 2%;
    # train/budget.py), replacing the hidden_size above
    config.model.param_budget = 0
    config.model.num_layers = 1  # stacked recurrent layers
    config.model.dropout = 0.0  # dropout on non-recurrent connections, in [0, 1)
    # 'stack' (cells.Stack) | 'residual' (cells.ResidualStack) | 'hawk' (Griffin's Hawk:
    # residual blocks of cells.HawkBlock, the RG-LRU's recurrent block; needs cell='rglru')
    config.model.block = "stack"
    config.model.block_norm = "rms"  # residual blocks' pre-norm: 'rms' | 'layer'
    config.model.block_ffn_factor = 0.0  # residual blocks' gated FFN width / hidden; 0 = none

    config.data = ml_collections.ConfigDict()
    config.data.path = (
        ""  # data file or directory (relative to the cwd); '' when the task needs none
    )

    config.optim = ml_collections.ConfigDict()
    config.optim.optimizer = "adam"  # 'sgd' | 'adam' | 'adamw'
    config.optim.learning_rate = 1e-3  # peak learning rate
    config.optim.momentum = 0.0  # SGD momentum (0 = plain SGD); sgd only
    config.optim.weight_decay = 0.0  # adamw: decoupled decay; sgd/adam: L2 added to the gradient
    # decay only the tensors of >= 2 dimensions (matrices, embeddings), not biases or norm
    # scales: nanoGPT's AdamW groups
    config.optim.decay_matrices_only = False
    config.optim.beta1 = 0.9  # adam/adamw: first-moment decay
    config.optim.beta2 = 0.999  # adam/adamw: second-moment decay (nanoGPT's char model: 0.99)
    config.optim.schedule = "constant"  # 'constant' | 'cosine' | 'epoch_decay' | 'plateau'
    config.optim.decay_after_epochs = 0  # epoch_decay: lr * decay_factor**max(0, epoch+1-this)
    config.optim.decay_factor = 1.0  # epoch_decay / plateau: multiplicative decay, in (0, 1]
    config.optim.plateau_metric = "loss"  # plateau: the validation metric watched (lower wins)
    config.optim.plateau_threshold = 0.0  # plateau: decay when it improves by less than this
    config.optim.nt_asgd_patience = 0  # > 0: NT-ASGD, average iterates once valid stalls n evals
    config.optim.warmup_steps = 0  # linear warm-up from 0 over this many steps
    config.optim.min_learning_rate = 0.0  # cosine: the rate it decays to (nanoGPT's min_lr)
    config.optim.grad_clip_norm = 0.0  # clip gradients to this global norm; 0 = off

    config.train = ml_collections.ConfigDict()
    config.train.num_steps = 1000  # training steps, used when num_epochs == 0
    config.train.num_epochs = 0  # > 0: train num_epochs * task.steps_per_epoch() steps
    # > 0: train for this many minutes of training steps instead (compilation, validation and
    # checkpoints not counted); the step count is planned from the speed measured after
    # compilation (train/time_budget.py), replacing num_steps
    config.train.time_budget_minutes = 0.0
    config.train.batch_size = 32  # global batch (split over all devices; must divide evenly)
    config.train.seq_len = 32  # time steps per training window (truncated BPTT length)
    config.train.log_every = 100  # steps between train-metric logs
    config.train.eval_every = 1000  # steps between validation passes; 0 = only at the end
    config.train.checkpoint_every = 1000  # steps between checkpoints; 0 = only at the end
    config.train.keep_checkpoints = 3  # latest checkpoints kept (plus the best one)
    # compute dtype of the matmuls: 'float32' | 'bfloat16' | 'auto' (float32 on CPU, bfloat16 on
    # GPU / TPU: the accelerators' fast matmul type; unmeasured there so far)
    config.train.dtype = "float32"
    config.train.scan_backward = "autodiff"  # cells.scan's backward pass: 'autodiff' | 'fused'
    # cells.scan's engine: 'xla' | 'onednn' (oneDNN's RNN primitive on CPU: plain LSTM / GRU,
    # float32, no lengths or recurrent regularisers) | 'auto' (oneDNN where it applies)
    config.train.scan_backend = "xla"
    config.train.early_stopping_patience = 0  # evals without a new best before stopping; 0 = off
    # stop at the first validation pass that solves the task (tasks with a "solved" criterion:
    # adding, copy, selective_copy; train/tasks/long_range.py)
    config.train.stop_when_solved = False
    config.train.best_metric = (
        "loss"  # validation metric that picks the best checkpoint (lower wins)
    )

    config.eval = ml_collections.ConfigDict()
    config.eval.batch_size = 32  # batch size of validation/test passes
    return config
