"""Bad data files and damaged workdir files: one-line errors (or, where valid, success)."""

from __future__ import annotations

import gzip
import json
import os
import threading

import pytest
import train_testing as tt

from train import errors, evaluate, metrics, trainer, validate
from train.data import base, timeseries
from train.tasks import registry

CSV = "date,x,y\n2020-01-01,1,2\n2020-01-02,3,4\n2020-01-03,5,6\n"


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("plain.csv.gz", CSV.encode(), "ends in .gz but is not a complete gzip file"),
        # mtime=0: the same bytes (and test id) in every pytest-xdist worker
        ("cut.csv.gz", gzip.compress(CSV.encode(), mtime=0)[:-10], "not a complete gzip file"),
        ("latin1.csv", "date,x\n2020-01-01,1\ncaf\xe9,2\n".encode("latin-1"), "is not UTF-8"),
    ],
)
def test_unreadable_files_are_one_line_errors(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(errors.ConfigError, match=message) as info:
        base.read_text(path)
    assert "\n" not in str(info.value)


def test_a_fifo_is_refused_instead_of_blocking(tmp_path):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(errors.ConfigError, match="not a regular file"):
        timeseries.read_csv(str(fifo))


@pytest.fixture
def fifo(tmp_path):
    """A named pipe no one writes to. Opening it for reading blocks: a watchdog opens the
    writing end every 5 s (which frees a blocked reader), so code that would hang fails the
    test instead of hanging it."""
    path = tmp_path / "pipe.txt"
    os.mkfifo(path)
    done, unblocked = threading.Event(), threading.Event()

    def unblock():
        while not done.wait(5):
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
                unblocked.set()  # a reader had it open: something blocked on the pipe
            except OSError:  # ENXIO: no reader, nothing blocked
                pass

    watchdog = threading.Thread(target=unblock, daemon=True)
    watchdog.start()
    yield path
    done.set()
    watchdog.join()
    assert not unblocked.is_set(), f"{path} was opened for reading and blocked"


def _config_reading(task: str, tmp_path, path: str):
    """A config of `task` whose data.path is `path`."""
    from experiments.configs import ett, mnist1d

    if task == "lm":
        config = tt.tiny_lm_config(tmp_path)[1]
    else:
        config = ett.get_config("horizon=24") if task == "forecast" else mnist1d.get_config()
    config.data.path = str(path)
    return config


@pytest.mark.parametrize("task", ["lm", "forecast", "mnist1d"])
def test_a_fifo_as_data_path_is_refused_before_reading(tmp_path, fifo, task):
    config = _config_reading(task, tmp_path, fifo)
    with pytest.raises(errors.ConfigError, match="config.data.path.*not a regular file") as info:
        validate.validate(config)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("task", ["forecast", "mnist1d"])
def test_a_directory_as_data_path_of_a_file_task_is_one_line(tmp_path, task):
    """Only the LM reads a corpus directory; the others name the directory and ask for a file."""
    config = _config_reading(task, tmp_path, tmp_path)
    with pytest.raises(errors.ConfigError, match="config.data.path.*is a directory") as info:
        registry.get_task_class(config.task)(config)
    assert "\n" not in str(info.value)


def test_a_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + CSV.encode())
    table = timeseries.read_csv(str(path))
    assert table.columns == ("x", "y") and len(table) == 3


def test_values_beyond_float32_and_rows_out_of_time_order_are_refused(tmp_path):
    big = tmp_path / "big.csv"
    big.write_text("date,x\n2020-01-01,1\n2020-01-02,1e39\n")
    with pytest.raises(errors.ConfigError, match="row 3 holds 1e\\+39, beyond float32"):
        timeseries.read_csv(str(big))
    newest_first = tmp_path / "desc.csv"
    newest_first.write_text("date,x\n2020-01-03,1\n2020-01-02,2\n2020-01-01,3\n")
    with pytest.raises(errors.ConfigError, match="not in time order.*sort the file oldest first"):
        timeseries.read_csv(str(newest_first))


def test_damaged_config_json_and_metrics_jsonl(tmp_path):
    workdir = str(tmp_path / "run")
    trainer.train_and_evaluate(tt.tiny_config(**{"train.num_steps": 8}), workdir)
    with open(os.path.join(workdir, metrics.FILE), "ab") as f:
        f.write(b'\x00\xff\xfe garbage \x80\n{"step": 3, "spl')
    events = metrics.read_events(workdir)
    assert events and all(isinstance(e, dict) for e in events)
    config_json = os.path.join(workdir, "config.json")
    text = open(config_json).read()
    with open(config_json, "w") as f:
        f.write(text[: len(text) // 2])
    with pytest.raises(errors.ConfigError, match="config.json is not valid JSON") as info:
        evaluate.evaluate_workdir(workdir)
    assert "\n" not in str(info.value)
    with pytest.raises(errors.ConfigError, match="config.json is not valid JSON"):
        trainer.train_and_evaluate(tt.tiny_config(**{"train.num_steps": 8}), workdir)
    with open(config_json, "w") as f:
        json.dump([], f)
    with pytest.raises(errors.ConfigError, match="must hold a JSON object"):
        evaluate.evaluate_workdir(workdir)


def test_evaluating_checkpoints_of_another_model_is_one_line(tmp_path):
    workdir = str(tmp_path / "run")
    trainer.train_and_evaluate(tt.tiny_config(**{"train.num_steps": 8}), workdir)
    config_json = os.path.join(workdir, "config.json")
    record = json.load(open(config_json))
    record["model"]["hidden_size"] = 16  # the checkpoints hold hidden_size 8
    json.dump(record, open(config_json, "w"))
    with pytest.raises(errors.ConfigError, match="hold a model of another shape"):
        evaluate.evaluate_workdir(workdir)


def test_evaluate_writes_nothing_into_a_workdir_without_checkpoints(tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "config.json").write_text(json.dumps(tt.tiny_config().to_dict()))
    with pytest.raises(errors.ConfigError, match="has no checkpoints yet"):
        evaluate.evaluate_workdir(str(workdir))
    assert sorted(os.listdir(workdir)) == ["config.json"]
