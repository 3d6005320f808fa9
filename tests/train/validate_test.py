"""Every invalid input is one ConfigError naming the field, raised before any compute."""

from __future__ import annotations

import os

import pytest
import train_testing as tt

from train import errors, validate

CASES = [
    # (overrides, words the message must contain)
    ({"model.cell": "lstmx"}, ["config.model.cell", "'lstmx'", tt.REGISTERED_CELLS]),
    ({"model.cell": "no_such_pkg.cells:Peephole"}, ["config.model.cell", "cannot import"]),
    ({"model.cell_options": {"peepholes": True}}, ["cell_options.peepholes", "LSTM has no such"]),
    ({"model.cell_options": {"forget_bias": "x"}}, ["cell_options", "forget_bias must be a"]),
    ({"model.cell_options": {"hidden_size": 3}}, ["cell_options.hidden_size", "model.hidden_size"]),
    ({"model.cell_options": {"compute_dtype": "bfloat16"}}, ["compute_dtype", "train.dtype"]),
    ({"model.dropout": 0.5}, ["config.model.dropout", "num_layers=1", "between recurrent layers"]),
    ({"optim.momentum": 0.9}, ["config.optim.momentum", "'sgd' only", "'adam'"]),
    ({"model.hidden_size": 0}, ["config.model.hidden_size", ">= 1"]),
    ({"model.hidden_size": 10**10}, ["config.model.hidden_size", "2147483647"]),
    ({"model.num_layers": -1}, ["config.model.num_layers"]),
    ({"model.dropout": 1.0}, ["config.model.dropout", "[0, 1)"]),
    ({"model.dropout": -0.1}, ["config.model.dropout"]),
    ({"optim.optimizer": "rmsprop"}, ["config.optim.optimizer", "'sgd'", "'adamw'"]),
    ({"optim.schedule": "linear"}, ["config.optim.schedule", "'epoch_decay'"]),
    ({"optim.learning_rate": 0.0}, ["config.optim.learning_rate", "> 0"]),
    ({"optim.momentum": 1.0}, ["config.optim.momentum"]),
    ({"optim.decay_factor": 0.0}, ["config.optim.decay_factor", "(0, 1]"]),
    ({"optim.grad_clip_norm": -1.0}, ["config.optim.grad_clip_norm"]),
    ({"optim.grad_clip_norm": float("nan")}, ["config.optim.grad_clip_norm", ">= 0, got nan"]),
    ({"optim.weight_decay": float("nan")}, ["config.optim.weight_decay", ">= 0, got nan"]),
    # Infinite settings pass every range check above; they would train into NaN at step 2.
    ({"optim.learning_rate": float("inf")}, ["config.optim.learning_rate", "finite", "inf"]),
    ({"optim.weight_decay": float("inf")}, ["config.optim.weight_decay", "finite"]),
    ({"optim.grad_clip_norm": float("inf")}, ["config.optim.grad_clip_norm", "finite"]),
    ({"optim.learning_rate": float("nan")}, ["config.optim.learning_rate", "got nan"]),
    ({"model.cell_options": {"forget_bias": float("inf")}}, ["cell_options.forget_bias", "finite"]),
    ({"train.seq_len": 0}, ["config.train.seq_len", ">= 1"]),
    ({"train.batch_size": 0}, ["config.train.batch_size"]),
    ({"train.num_steps": 0}, ["config.train.num_steps"]),
    (
        {"train.num_epochs": 2, "train.num_steps": 500},
        ["config.train.num_steps=500 has no effect", "num_epochs=2"],
    ),
    ({"train.log_every": 0}, ["config.train.log_every"]),
    ({"train.keep_checkpoints": 0}, ["config.train.keep_checkpoints"]),
    ({"train.eval_every": -1}, ["config.train.eval_every"]),
    ({"train.dtype": "float16"}, ["config.train.dtype", "'bfloat16'"]),
    ({"train.scan_backward": "manual"}, ["config.train.scan_backward", "'fused'"]),
    ({"train.scan_backend": "mkl"}, ["config.train.scan_backend", "'onednn'"]),
    (  # MGU: not a cell oneDNN has (or, where the extension is not built, it says so)
        {"train.scan_backend": "onednn", "model.cell": "mgu"},
        ["config.train.scan_backend='onednn': ", "use 'xla'"],
    ),
    ({"train.best_metric": ""}, ["config.train.best_metric"]),
    ({"eval.batch_size": 0}, ["config.eval.batch_size"]),
    ({"data.path": "/no/such/file.txt"}, ["config.data.path", "no effect", "'synthetic'"]),
    ({"task": "nope"}, ["task", "'nope'", "synthetic"]),
    ({"data.vocab_size": 1}, ["data.vocab_size"]),  # the task's own validate
]


@pytest.mark.parametrize("overrides,words", CASES, ids=[next(iter(c[0])) for c in CASES])
def test_invalid_values(overrides, words):
    config = tt.tiny_config()
    with config.unlocked():
        for key, value in overrides.items():
            group, field = key.split(".") if "." in key else (None, key)
            config.update({field: value}) if group is None else config[group].update({field: value})
    with pytest.raises(errors.ConfigError) as info:
        validate.validate(config)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, (word, message)


def _with(mutate):
    config = tt.tiny_config()
    with config.unlocked():
        mutate(config)
    return config


@pytest.mark.parametrize(
    "mutate,words",
    [
        (lambda c: c.train.update({"num_stepz": 3}), ["config.train.num_stepz", "unknown"]),
        (lambda c: c.update({"trian": 1}), ["config.trian", "unknown"]),
        (lambda c: c.model.update({"embed_sise": 3}), ["config.model.embed_sise", "embed_size"]),
        (lambda c: c.train.unlock().__delattr__("seq_len"), ["config.train.seq_len", "missing"]),
    ],
    ids=["unknown_train_key", "unknown_group", "unknown_task_extra", "missing_key"],
)
def test_unknown_and_missing_keys(mutate, words):
    with pytest.raises(errors.ConfigError) as info:
        validate.validate(_with(mutate))
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_wrong_types():
    config = tt.tiny_config()
    config.train.unlock()
    del config.train.batch_size
    config.train.batch_size = "32"
    with pytest.raises(errors.ConfigError, match=r"config\.train\.batch_size must be an int"):
        validate.validate(config)
    config = tt.tiny_config()
    config.optim.unlock()
    del config.optim.grad_clip_norm
    config.optim.grad_clip_norm = True
    with pytest.raises(errors.ConfigError, match="grad_clip_norm must be a number"):
        validate.validate(config)


def test_valid_config_passes():
    assert validate.validate(tt.tiny_config()).name == "synthetic"


def test_workdir_checks(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(errors.ConfigError, match="is a file"):
        validate.check_workdir(str(a_file))
    with pytest.raises(errors.ConfigError, match="cannot be created"):
        validate.check_workdir(str(a_file / "sub"))
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(errors.ConfigError, match="not writable"):
            validate.check_workdir(str(locked))
    validate.check_workdir(str(tmp_path / "new" / "dir"))
    assert (tmp_path / "new" / "dir").is_dir()


def test_shared_fields_a_task_does_not_read_are_refused_unless_default():
    from experiments.configs import adding, ett

    config = ett.get_config("horizon=24")
    validate.validate(config)  # the shipped config leaves train.seq_len alone
    config.train.seq_len = 96
    with pytest.raises(
        errors.ConfigError, match=r"config\.train\.seq_len=96 has no effect.*input_len"
    ):
        validate.validate(config)
    config = adding.get_config("length=30")
    config.data.path = "data/ett/ETTh1.csv.gz"
    with pytest.raises(errors.ConfigError, match="data.path.*no effect in task 'adding'"):
        validate.validate(config)


def test_a_cell_option_error_from_the_cell_itself_is_one_line():
    config = tt.tiny_config()
    config.model.cell = "rnn"
    config.model.cell_options = {"activation": "gelu"}
    with pytest.raises(errors.ConfigError, match="cell_options: SimpleRNN: activation") as info:
        validate.validate(config)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "cell,field",
    [("mingru", "recurrent_dropout"), ("minlstm", "weight_drop"), ("indrnn", "weight_drop")],
)
def test_recurrent_regularizers_need_a_cell_with_a_recurrent_matrix(tmp_path, cell, field):
    """minGRU/minLSTM gate on x alone (no h W_hh product to drop); IndRNN's recurrence is a
    vector u, no matrix w_hh for weight drop: refused before the memory estimate traces them."""
    _, config = tt.tiny_lm_config(tmp_path)
    config.model.cell = cell
    config.model[field] = 0.25
    with pytest.raises(errors.ConfigError) as info:
        validate.validate(config)
    message = str(info.value)
    assert f"config.model.{field}=0.25" in message and repr(cell) in message, message
    assert "\n" not in message
    config.model.cell = "lstm"  # a cell with w_hh takes both
    validate.validate(config)
