"""train/tasks/base.py: the optional hooks are declared on `Task`, and every registered task says
truthfully which it supports (callers read the declarations, never probe with hasattr)."""

import re

import pytest

from experiments.configs import mnist1d
from train import validate
from train.errors import ConfigError
from train.tasks import base, registry

TASK_CLASSES = {name: registry.get_task_class(name) for name in registry.names()}


@pytest.mark.parametrize("name", registry.names())
def test_solvable_is_declared_exactly_where_is_solved_is_written(name):
    cls = TASK_CLASSES[name]
    assert cls.solvable == (cls.is_solved is not base.Task.is_solved), name
    if cls.solvable:
        assert cls.loss_metric, f"{name}: a solvable task names the metric is_solved compares"


def test_the_defaults_are_no_stack_and_no_solved_criterion():
    assert base.Task.stack is None and base.Task.solvable is False
    with pytest.raises(NotImplementedError, match="no 'solved' criterion"):
        base.Task.is_solved(object.__new__(TASK_CLASSES["synthetic"]), {}, "valid")


def test_the_refusal_of_stop_when_solved_names_the_solvable_tasks():
    config = mnist1d.get_config()
    config.train.stop_when_solved = True
    with pytest.raises(ConfigError) as raised:
        validate.validate(config)
    listed = re.search(r"\(([a-z_, ]+)\)", str(raised.value)).group(1).split(", ")
    assert set(listed) == {n for n, cls in TASK_CLASSES.items() if cls.solvable}
