"""The user-facing error type of the training system (the bottom module: it imports nothing),
and the one type check every config field goes through.

A `ConfigError` is a problem with what the user asked for (a config field, a flag, a data file,
a workdir): its message is one line naming the field or file and what would be valid.
`train.main` prints it and exits with status 2, without a traceback.
"""


class ConfigError(ValueError):
    """A user-facing configuration or input error: one line naming the field and what is valid."""


def check_type(field: str, value, default) -> None:
    """Raises ConfigError unless `value` has the type of `default` (an int is a valid float)."""
    expected = type(default)
    if expected is bool:
        ok = isinstance(value, bool)
    elif expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif expected is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif expected is tuple:  # a JSON round trip turns a tuple into a list
        ok = isinstance(value, tuple | list) and all(
            isinstance(v, int | float | str) and not isinstance(v, bool) for v in value
        )
    else:
        ok = isinstance(value, expected)
    if not ok:
        names = {
            bool: "a bool", int: "an int", float: "a number", str: "a string",
            tuple: "a tuple of numbers or strings",
        }  # fmt: skip
        expected_name = names.get(expected, expected.__name__)
        raise ConfigError(f"{field} must be {expected_name}, got {value!r}.")
