"""Validation of the config and paths, once, before any compute.

Every problem becomes a `ConfigError` whose message is one line naming the field (or file) and
what is valid; `train/main.py` prints it and exits with status 2. Checks: keys against the
shared schema (`train/config_base.py`) plus the task's declared extras, types, value ranges,
finite numbers, shared fields the task does not use (refused unless left at their defaults),
the cell and its options (`train/models.py`), data paths, the workdir, and then the task's own
`validate`.
"""

from __future__ import annotations

import math
import os

import ml_collections

from train import config_base, models
from train.data import base as data_base
from train.errors import ConfigError, check_type
from train.tasks import base, registry

DTYPES, SCAN_BACKWARDS = config_base.DTYPES, config_base.SCAN_BACKWARDS
SCAN_BACKENDS = config_base.SCAN_BACKENDS
_GROUPS = ("model", "data", "optim", "train", "eval")
_MAX_DIM = 2**31 - 1  # JAX array dimensions are int32


def _check_keys(config: ml_collections.ConfigDict, task_cls, schema) -> None:
    for key in config.keys():
        if key not in schema:
            raise ConfigError(
                f"config.{key}: unknown field; valid top-level fields: {', '.join(schema.keys())}."
            )
    for key in schema.keys():
        if key not in config:
            raise ConfigError(
                f"config.{key} is missing; start configs from train.config_base.base_config()."
            )
    for group in _GROUPS:
        if not isinstance(config[group], ml_collections.ConfigDict):
            raise ConfigError(
                f"config.{group} must be a group (ConfigDict), got {config[group]!r}."
            )
        declared = {"model": task_cls.model_fields, "data": task_cls.data_fields}.get(group, ())
        allowed = set(schema[group].keys())
        if declared is not None:
            allowed |= set(declared)
            for key in config[group].keys():
                if key not in allowed:
                    raise ConfigError(
                        f"config.{group}.{key}: unknown field; valid: {', '.join(sorted(allowed))}."
                    )
        for key in schema[group].keys():
            if key not in config[group]:
                raise ConfigError(
                    f"config.{group}.{key} is missing; start configs from "
                    "train.config_base.base_config()."
                )
    for key in schema.keys():
        if key in _GROUPS:
            continue
        check_type(f"config.{key}", config[key], schema[key])
    for group in _GROUPS:
        for key in schema[group].keys():
            check_type(f"config.{group}.{key}", config[group][key], schema[group][key])


def _check_hawk(config) -> None:
    """block='hawk' runs the RG-LRU inside Hawk's recurrent block (cells.HawkBlock): it names
    the cell 'rglru' and takes none of what the block lacks."""
    m = config.model
    if m.cell != "rglru":
        raise ConfigError(
            f"config.model.block='hawk' runs the RG-LRU in Hawk's recurrent block; set "
            f"config.model.cell=rglru (got {m.cell!r})."
        )
    if m.cell_options.to_dict():
        raise ConfigError(
            f"config.model.cell_options={m.cell_options.to_dict()}: the Hawk block's RG-LRU takes "
            "recurrentgemma's fixed settings; leave cell_options empty."
        )
    for field in ("recurrent_dropout", "zoneout", "weight_drop"):
        if m.get(field):
            raise ConfigError(
                f"config.model.{field}={m[field]!r}: the Hawk block has no such regulariser; "
                "use config.model.dropout (on each residual branch)."
            )
    if config.train.scan_backward != "autodiff":
        raise ConfigError(
            f"config.train.scan_backward={config.train.scan_backward!r}: the Hawk block "
            "differentiates by autodiff only."
        )
    if config.train.scan_backend != "xla":
        raise ConfigError(
            f"config.train.scan_backend={config.train.scan_backend!r}: the Hawk block runs on "
            "XLA only; leave it at 'xla'."
        )


def _one_of(field: str, value, valid) -> None:
    if value not in valid:
        raise ConfigError(f"{field} must be one of {', '.join(map(repr, valid))}; got {value!r}.")


def _at_least(field: str, value, low) -> None:
    if not value >= low:  # also refuses NaN
        raise ConfigError(f"{field} must be >= {low}, got {value!r}.")


def _check_values(config: ml_collections.ConfigDict, schema) -> None:
    m, o, t = config.model, config.optim, config.train
    _at_least("config.model.hidden_size", m.hidden_size, 1)
    if m.hidden_size > _MAX_DIM:  # beyond this JAX cannot even trace the shapes to estimate
        raise ConfigError(
            f"config.model.hidden_size={m.hidden_size} exceeds the largest array dimension "
            f"({_MAX_DIM}), far beyond any memory; give a smaller width."
        )
    _at_least("config.model.num_layers", m.num_layers, 1)
    _at_least("config.model.param_budget", m.param_budget, 0)
    if not 0.0 <= m.dropout < 1.0:
        raise ConfigError(f"config.model.dropout must lie in [0, 1), got {m.dropout!r}.")
    _one_of("config.model.block", m.block, config_base.BLOCKS)
    _one_of("config.model.block_norm", m.block_norm, config_base.BLOCK_NORMS)
    _at_least("config.model.block_ffn_factor", m.block_ffn_factor, 0)
    if m.block == "stack":
        for field in ("block_norm", "block_ffn_factor"):
            if m[field] != schema.model[field]:
                raise ConfigError(
                    f"config.model.{field}={m[field]!r} applies to residual blocks only; set "
                    "config.model.block='residual' or 'hawk', or leave it at its default."
                )
    if m.block == "hawk":
        _check_hawk(config)
    _one_of("config.optim.optimizer", o.optimizer, config_base.OPTIMIZERS)
    _one_of("config.optim.schedule", o.schedule, config_base.SCHEDULES)
    if not o.learning_rate > 0:
        raise ConfigError(f"config.optim.learning_rate must be > 0, got {o.learning_rate!r}.")
    if not 0.0 <= o.momentum < 1.0:
        raise ConfigError(f"config.optim.momentum must lie in [0, 1), got {o.momentum!r}.")
    if o.momentum and o.optimizer != "sgd":
        raise ConfigError(
            f"config.optim.momentum={o.momentum} applies to optimizer 'sgd' only, not "
            f"{o.optimizer!r}; leave it at 0."
        )
    _at_least("config.optim.weight_decay", o.weight_decay, 0)
    for field in ("beta1", "beta2"):
        if not 0.0 <= o[field] < 1.0:
            raise ConfigError(f"config.optim.{field} must lie in [0, 1), got {o[field]!r}.")
        if o[field] != schema.optim[field] and o.optimizer not in ("adam", "adamw"):
            raise ConfigError(
                f"config.optim.{field}={o[field]} applies to 'adam' and 'adamw' only, not "
                f"{o.optimizer!r}; leave it at {schema.optim[field]}."
            )
    if o.decay_matrices_only and not o.weight_decay:
        raise ConfigError(
            "config.optim.decay_matrices_only=True selects what weight decay acts on, and "
            "config.optim.weight_decay is 0; set a decay or leave it False."
        )
    _at_least("config.optim.min_learning_rate", o.min_learning_rate, 0)
    if o.min_learning_rate and o.schedule != "cosine":
        raise ConfigError(
            f"config.optim.min_learning_rate={o.min_learning_rate} is the cosine schedule's "
            f"floor; the schedule is {o.schedule!r}: leave it at 0."
        )
    if not o.min_learning_rate <= o.learning_rate:
        raise ConfigError(
            f"config.optim.min_learning_rate={o.min_learning_rate} exceeds "
            f"config.optim.learning_rate={o.learning_rate}."
        )
    _at_least("config.optim.decay_after_epochs", o.decay_after_epochs, 0)
    _at_least("config.optim.plateau_threshold", o.plateau_threshold, 0)
    _at_least("config.optim.nt_asgd_patience", o.nt_asgd_patience, 0)
    if o.nt_asgd_patience and o.optimizer != "sgd":
        raise ConfigError(
            f"config.optim.nt_asgd_patience={o.nt_asgd_patience} averages SGD iterates (NT-ASGD); "
            f"the optimizer is {o.optimizer!r}: use 'sgd' or leave it at 0."
        )
    if o.schedule == "plateau":
        if o.warmup_steps:
            raise ConfigError(
                "config.optim.warmup_steps applies to the constant, cosine and epoch_decay "
                "schedules, not 'plateau'; leave it at 0."
            )
        if o.decay_factor == 1.0:
            raise ConfigError(
                "config.optim.schedule='plateau' multiplies the rate by decay_factor, which is "
                "1.0 (no decay); set it in (0, 1), e.g. 0.5."
            )
    else:
        for field in ("plateau_metric", "plateau_threshold"):
            if o[field] != schema.optim[field]:
                raise ConfigError(
                    f"config.optim.{field}={o[field]!r} applies to schedule 'plateau' only; "
                    f"the schedule is {o.schedule!r}."
                )
    if not 0.0 < o.decay_factor <= 1.0:
        raise ConfigError(f"config.optim.decay_factor must lie in (0, 1], got {o.decay_factor!r}.")
    _at_least("config.optim.warmup_steps", o.warmup_steps, 0)
    _at_least("config.optim.grad_clip_norm", o.grad_clip_norm, 0)
    _at_least("config.train.num_epochs", t.num_epochs, 0)
    _at_least("config.train.time_budget_minutes", t.time_budget_minutes, 0)
    if t.time_budget_minutes and t.num_epochs:
        raise ConfigError(
            f"config.train.time_budget_minutes={t.time_budget_minutes} and "
            f"config.train.num_epochs={t.num_epochs} both set the run's length; keep one."
        )
    if t.num_epochs == 0:
        _at_least("config.train.num_steps (with num_epochs = 0)", t.num_steps, 1)
    elif t.num_steps not in (0, schema.train.num_steps):
        raise ConfigError(
            f"config.train.num_steps={t.num_steps} has no effect: config.train.num_epochs="
            f"{t.num_epochs} sets the run's length (epochs x steps per epoch); change num_epochs, "
            "or set num_epochs=0 to train by steps."
        )
    for field in ("batch_size", "seq_len", "log_every", "keep_checkpoints"):
        _at_least(f"config.train.{field}", t[field], 1)
    for field in ("eval_every", "checkpoint_every", "early_stopping_patience"):
        _at_least(f"config.train.{field}", t[field], 0)
    _one_of("config.train.dtype", t.dtype, DTYPES)
    _one_of("config.train.scan_backward", t.scan_backward, SCAN_BACKWARDS)
    _one_of("config.train.scan_backend", t.scan_backend, SCAN_BACKENDS)
    if not t.best_metric:
        raise ConfigError("config.train.best_metric must name a validation metric, e.g. 'loss'.")
    _at_least("config.eval.batch_size", config.eval.batch_size, 1)


def _check_finite(group, prefix: str = "config", schema=None) -> None:
    """No number in the config may be NaN or infinite.

    An infinite learning rate, weight decay or clip norm passes every "> 0" / ">= 0" check and
    trains into a NaN loss at step 2; no field has a meaning for infinity, so none is allowed.
    With `schema`, only the shared fields it lists and the cell options (before the cell or the
    task sees them); without, every field, the task's own too (after their range checks).
    """
    for key, value in group.items():
        if schema is not None and key not in schema:
            continue  # a task's own field: the second call
        field = f"{prefix}.{key}"
        if isinstance(value, ml_collections.ConfigDict | dict):
            inner = schema[key] if schema is not None else None
            _check_finite(value, field, inner if inner else None)  # {} (cell_options): all
        elif isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{field} must be a finite number, got {value!r}.")


def _check_unused(config: ml_collections.ConfigDict, task_cls, schema) -> None:
    """Shared fields the task does not read must keep the schema's default (never ignored)."""
    for field, reason in task_cls.unused_fields.items():
        group, key = field.split(".")
        value, default = config[group][key], schema[group][key]
        if value != default:
            raise ConfigError(
                f"config.{field}={value!r} has no effect in task {config.task!r} ({reason}); "
                f"leave it at its default {default!r}."
            )
    if config.train.stop_when_solved and not task_cls.solvable:
        raise ConfigError(
            f"config.train.stop_when_solved=True needs a task with a 'solved' criterion (adding, "
            f"copy, selective_copy); task {config.task!r} has none: leave it False."
        )


def _check_data_path(config: ml_collections.ConfigDict) -> None:
    """A data path must be a readable file or directory (the task then says which it reads);
    never opened here unless it is a regular file (a FIFO would block the run forever)."""
    if config.data.path:
        data_base.check_data_path(config.data.path, directory_ok=True)


def check_workdir(workdir: str) -> None:
    """The workdir must be (or become) a writable directory."""
    if not workdir:
        raise ConfigError("--workdir is required: the directory for checkpoints and metrics.")
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise ConfigError(f"--workdir {workdir!r} is a file, not a directory.")
    try:
        os.makedirs(workdir, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"--workdir {workdir!r} cannot be created ({e.strerror}).") from None
    if not os.access(workdir, os.W_OK | os.X_OK):
        raise ConfigError(f"--workdir {workdir!r} is not writable.")


def validate(config: ml_collections.ConfigDict) -> type[base.Task]:
    """Checks `config` fully; returns the task class. Raises ConfigError (one line)."""
    if not isinstance(config, ml_collections.ConfigDict):
        raise ConfigError(f"the config must be an ml_collections.ConfigDict, got {type(config)}.")
    if not isinstance(config.get("task"), str):
        raise ConfigError(
            f"config.task must be a string naming a task, got {config.get('task')!r}."
        )
    task_cls = registry.get_task_class(config.task)
    schema = config_base.base_config()
    _check_keys(config, task_cls, schema)
    _check_values(config, schema)  # first: its range messages also name NaN
    _check_finite(config, schema=schema)
    _check_unused(config, task_cls, schema)
    models.check_model(config, task_cls)
    _check_data_path(config)
    task_cls.validate(config)
    _check_finite(config)
    return task_cls
