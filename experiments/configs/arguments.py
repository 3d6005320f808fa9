"""Config-string arguments: `--config=experiments/configs/ett.py:horizon=24,cell=gru`.

A config that takes them declares every key with its default; `parse` converts each value to
its default's type and refuses an unknown key or a value of the wrong type (a ValueError that
`train.main` reports in one line), so a typo never silently leaves the default in place.
"""

from __future__ import annotations

from typing import Any


def parse(arg: str | None, defaults: dict[str, Any]) -> dict[str, Any]:
    """'horizon=24,cell=gru' -> every key of `defaults`, given values converted to its type."""
    values = dict(defaults)
    for item in filter(None, (arg or "").split(",")):
        key, sep, raw = item.partition("=")
        key, raw = key.strip(), raw.strip()
        if key not in defaults or not sep:
            raise ValueError(
                f"unknown config argument {item.strip()!r}; valid (key=value, comma-separated): "
                f"{', '.join(sorted(defaults))}."
            )
        kind = type(defaults[key])
        if kind is bool:  # bool('False') would be True
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"config argument {key}={raw!r} must be True or False.")
            values[key] = raw.lower() in ("true", "1")
            continue
        try:
            values[key] = kind(raw)
        except ValueError:
            raise ValueError(
                f"config argument {key}={raw!r} must be {'an int' if kind is int else 'a number'}."
            ) from None
    return values


def required_cell_options(cell: str, hidden_size: int) -> dict[str, Any]:
    """The options `cell` cannot be built without at width `hidden_size`
    (`cells.Cell.example_options`: lstmp's proj_size = H // 2; {} for most cells), so that a
    config taking `cell=NAME` runs every registered cell, as the sweeps over all cells do."""
    import cells

    try:
        return dict(cells.get(cell).example_options(hidden_size))
    except ValueError:  # an unknown cell: train.main refuses it with the registry's message
        return {}
