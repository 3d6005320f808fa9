r"""Launcher: parse flags, set up logging and devices, call `train_and_evaluate` once.

    python -m train.main --config=experiments/configs/synthetic.py --workdir=/tmp/run \
        [--config.train.num_steps=500 ...] \
        [--coordinator_address=host:port --num_processes=N --process_id=i]

Exit status: 0 done; 2 invalid input (one line on stderr, no traceback); 1 diverged (non-finite
loss), no readable checkpoint or no space left on the disk; 128 + signal number after saving on
SIGTERM/SIGINT.
"""

from __future__ import annotations

import ast
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from train import errors

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file (experiments/configs/<name>.py).", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and results.")
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "host:port of process 0, for multi-process (jax.distributed)."
)
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in a multi-process run.")
_PROCESS_ID = flags.DEFINE_integer(
    "process_id", None, "This process's index in [0, num_processes)."
)
_REUSE_MEMORY = flags.DEFINE_bool(
    "reuse_host_memory",
    True,
    "Keep freed host memory for reuse between steps (train.host_memory: removes XLA:CPU's "
    "per-step page faults; the process keeps its peak memory).",
)


def _fail(message: str, status: int = 2):
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(status)


def _config_file(argv: list[str]) -> str | None:
    """The --config file named on the command line (the last one, as absl), if any."""
    path = None
    for i, arg in enumerate(argv):
        if arg.startswith("--config="):
            path = arg.split("=", 1)[1]
        elif arg == "--config" and i + 1 < len(argv):
            path = argv[i + 1]
    return None if path is None else path.split(":", 1)[0]  # drop a ':args' suffix


_CELL_OPTIONS = "model.cell_options."


def _literal(text: str):
    """A flag value as Python would write it in a dict: 50 -> 50, relu -> 'relu'."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _cell_options_form(key: str, argv: list[str]) -> str:
    """The error for `--config.model.cell_options.<name>=v` when the config file sets no such
    option: a dotted override can only change a key that exists, so name the form that works,
    one dict holding every such override on the command line."""
    options = {}
    for arg in argv:
        if arg.startswith(f"--config.{_CELL_OPTIONS}") and "=" in arg:
            name, value = arg[len(f"--config.{_CELL_OPTIONS}") :].split("=", 1)
            options[name] = _literal(value)
    name = key[len(_CELL_OPTIONS) :]
    return (
        f"--config.{key}: the config file sets no cell option {name!r} to override; give the "
        f'options as one dict instead: --config.model.cell_options="{options}" (it replaces '
        "the file's cell_options)."
    )


def _explain(error: Exception, argv: list[str]) -> str:
    """One line for an error raised while parsing flags (absl's or config_flags')."""
    if isinstance(error, flags.Error):
        lines = [line for line in str(error).splitlines() if line.strip()]
        if len(lines) > 1 and "Error whilst parsing config file" in lines[0]:
            # config_flags folds the config file's own traceback in: keep its last line, the
            # exception that says what is wrong.
            return f"--config={_config_file(argv)}: {lines[-1].strip()}"
        return lines[0] if lines else type(error).__name__
    text = str(error).splitlines()[0] if str(error) else ""
    path = _config_file(argv)
    if "get_config" in text:
        return f"--config={path}: the file defines no get_config() function."
    if isinstance(error, KeyError | AttributeError):
        for arg in argv:
            if arg.startswith("--config."):
                key = arg[len("--config.") :].split("=", 1)[0]
                if key.split(".")[-1] in text:
                    if key.startswith(_CELL_OPTIONS) and "." not in key[len(_CELL_OPTIONS) :]:
                        return _cell_options_form(key, argv)
                    return (
                        f"--config.{key}: no such config field (valid fields: the config file "
                        "and train/config_base.py)."
                    )
    return f"--config={path}: {type(error).__name__}: {text}"


def _parse_flags(argv: list[str]) -> list[str]:
    """absl flag parsing, with every error (incl. config_flags') as one line and exit status 2."""
    path = _config_file(argv)
    if path == "":
        _fail("--config is required: an experiment config file (experiments/configs/<name>.py).")
    if path is not None and not os.path.isfile(path):
        _fail(f"--config: file {path!r} does not exist (relative to {os.getcwd()}).")
    try:
        rest = flags.FLAGS(argv)
    except SystemExit as e:  # a config file that exits must not end the run silently
        _fail(f"--config={path}: the config file called sys.exit({e.code!r}) while loading.")
    except Exception as e:  # noqa: BLE001 - config files can raise anything; report one line
        _fail(_explain(e, argv))
    if len(rest) > 1:
        _fail(f"unexpected arguments: {' '.join(rest[1:])}")
    if not flags.FLAGS["config"].present:
        _fail("--config is required: an experiment config file (experiments/configs/<name>.py).")
    if not _WORKDIR.value:
        _fail("--workdir is required: the directory for checkpoints, metrics and results.")
    return rest


def main(argv):
    del argv
    if _REUSE_MEMORY.value:
        from train import host_memory  # before JAX starts its threads

        host_memory.reuse_freed_memory()
    # Orbax and JAX log every save at INFO; the loop reports progress on its own.
    logging.set_verbosity(logging.WARNING)
    try:
        config = _CONFIG.value
    except Exception as e:  # noqa: BLE001 - a broken config file: report it in one line
        _fail(f"--config: {type(e).__name__}: {e}".splitlines()[0])
    if _COORDINATOR.value or _NUM_PROCESSES.value:
        if not (_COORDINATOR.value and _NUM_PROCESSES.value and _PROCESS_ID.value is not None):
            _fail(
                "multi-process runs need all of --coordinator_address, --num_processes and "
                "--process_id."
            )
        from train import sharding

        sharding.initialize_distributed(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)

    from train import checkpoint, trainer

    try:
        trainer.train_and_evaluate(config, os.path.expanduser(_WORKDIR.value))
    except errors.ConfigError as e:
        _fail(str(e))
    except (trainer.NonFiniteError, checkpoint.CheckpointError) as e:
        _fail(str(e), status=1)
    except OSError as e:
        if checkpoint.disk_full(e) is None:
            raise
        where = f" writing {e.filename}" if getattr(e, "filename", None) else ""
        _fail(
            f"no space left on device{where} ({e.strerror or e}); the workdir's checkpoints are "
            "intact: free some space and rerun the same command to resume.",
            status=1,
        )
    except trainer.Preempted as e:
        print(str(e), file=sys.stderr, flush=True)
        sys.exit(128 + e.signum)


def run() -> None:
    """The `rnn-train` console command (the same as `python -m train.main`)."""
    app.run(main, flags_parser=_parse_flags)


if __name__ == "__main__":
    run()
