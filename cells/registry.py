"""The cell registry: a name for every cell class, and import paths for cells outside the package.

    @cells.register("peephole_lstm")
    @dataclasses.dataclass(frozen=True)
    class PeepholeLSTM(cells.Cell): ...

    cells.get("lstm")                      # -> cells.LSTM
    cells.get("mylab.cells:PeepholeLSTM")  # imports mylab.cells, returns its PeepholeLSTM
    cells.names()                          # ('gru', 'lstm', 'rnn', ...)

A registered name is what a config's `model.cell` holds; an import path `package.module:Class`
names a `cells.Cell` subclass in the user's own code, so every task of the training system runs
a new cell without any change to this repository. A cell class is registered once, from its own
file; registering another class under a taken name is an error.
"""

from __future__ import annotations

import importlib
import re

from cells import base

_CELLS: dict[str, type[base.Cell]] = {}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def register(name: str):
    """Class decorator: registers a `cells.Cell` subclass as `name` (lower_snake_case)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"cells.register: a cell name is lower_snake_case (letters, digits, '_'), got {name!r}."
        )

    def decorate(cls):
        if not (isinstance(cls, type) and issubclass(cls, base.Cell)):
            raise ValueError(f"cells.register({name!r}): {cls!r} is not a cells.Cell subclass.")
        taken = _CELLS.get(name)
        if taken is not None and _qualname(taken) != _qualname(cls):
            raise ValueError(
                f"cells.register({name!r}): the name is taken by {_qualname(taken)}; "
                "choose another name."
            )
        _CELLS[name] = cls
        return cls

    return decorate


def names(grids: bool = True) -> tuple[str, ...]:
    """The registered cell names, sorted. grids=False leaves out the cells made for spatial
    grids (`Cell.on_grids`: the ConvLSTM), which on a sequence of vectors are a one-position
    grid, i.e. a plain cell with unused weights: what studies of vector sequences compare."""
    return tuple(sorted(n for n, cls in _CELLS.items() if grids or not cls.on_grids))


def get(name: str) -> type[base.Cell]:
    """The cell class registered as `name`, or named by the import path 'package.module:Class'.

    Raises ValueError (one line naming the registered cells) when there is no such cell.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(
            f"a cell is a registered name ({', '.join(names())}) or an import path "
            f"'package.module:Class', got {name!r}."
        )
    if ":" not in name:
        if name not in _CELLS:
            raise ValueError(
                f"unknown cell {name!r}; registered cells: {', '.join(names())} "
                "(or an import path 'package.module:Class' of a cells.Cell subclass)."
            )
        return _CELLS[name]
    return _import(name)


def name_of(cls: type[base.Cell]) -> str:
    """The registered name of `cls`, else its import path 'module:Class' (what `get` takes)."""
    for name, registered in _CELLS.items():
        if registered is cls:
            return name
    return f"{cls.__module__}:{cls.__qualname__}"


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _import(path: str) -> type[base.Cell]:
    module_name, _, class_name = path.partition(":")
    if not module_name or not class_name or ":" in class_name:
        raise ValueError(f"cell import path {path!r} must look like 'package.module:ClassName'.")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(
            f"cell {path!r}: cannot import module {module_name!r} ({e}); is it on PYTHONPATH? "
            f"Registered cells: {', '.join(names())}."
        ) from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ValueError(f"cell {path!r}: module {module_name!r} has no attribute {class_name!r}.")
    if not (isinstance(cls, type) and issubclass(cls, base.Cell)):
        raise ValueError(f"cell {path!r} is {cls!r}, not a cells.Cell subclass.")
    return cls
