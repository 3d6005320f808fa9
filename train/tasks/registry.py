"""Task registry: config.task -> the module that defines it, imported lazily.

Each task lives in its own module with one `Task` subclass; adding a task is one line here.
Lazy imports keep `python -m train.main` fast and keep one task's dependencies from
burdening the others.
"""

from __future__ import annotations

import importlib

import ml_collections

from train import errors
from train.tasks import base

# name -> "module:ClassName". Other task files add their one line here.
TASKS: dict[str, str] = {
    "synthetic": "train.tasks.synthetic:SyntheticTask",
    "lm": "train.tasks.lm:LMTask",
    "forecast": "train.tasks.forecast:ForecastTask",
    "adding": "train.tasks.long_range:AddingTask",
    "copy": "train.tasks.long_range:CopyTask",
    "selective_copy": "train.tasks.long_range:SelectiveCopyTask",
    "spoken_digits": "train.tasks.speech:SpokenDigitsTask",
    "connected_digits": "train.tasks.speech:ConnectedDigitsTask",
    "mnist1d": "train.tasks.mnist1d:MNIST1DTask",
    "moving_digits": "train.tasks.moving_digits:MovingDigitsTask",
}


def names() -> tuple[str, ...]:
    """The registered task names, sorted."""
    return tuple(sorted(TASKS))


def get_task_class(name: str) -> type[base.Task]:
    """The Task subclass registered as `name`; ConfigError if there is none."""
    if name not in TASKS:
        raise errors.ConfigError(
            f"task: unknown task {name!r}; registered tasks: {', '.join(names())}."
        )
    module_name, class_name = TASKS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def get_task(config: ml_collections.ConfigDict) -> base.Task:
    """Builds the task object for `config` (which must already be validated)."""
    return get_task_class(config.task)(config)
