r"""Evaluates a workdir's best (or latest) checkpoint on demand.

    python -m train.evaluate --workdir=DIR [--split=test] [--which=best|latest]

Prints one JSON object {"workdir", "split", "checkpoint_step", metrics...} on stdout and writes
nothing into the workdir (safe to run beside a live training run). Exit status: 0 done; 2
invalid input; 1 no readable checkpoint (one line on stderr; the checkpoints left as they are).
"""

from __future__ import annotations

import json
import os
import sys

from absl import app, flags, logging

_WORKDIR = flags.DEFINE_string("workdir", None, "A training workdir (with config.json).")
_SPLIT = flags.DEFINE_string("split", "test", "Which split to evaluate: 'valid' or 'test'.")
_WHICH = flags.DEFINE_enum("which", "best", ["best", "latest"], "Which checkpoint.")


def evaluate_workdir(workdir: str, split: str = "test", which: str = "best") -> dict:
    """Metrics of `which` checkpoint of `workdir` on `split`."""
    import jax

    from train import checkpoint, sharding, steps, trainer
    from train import workdir as workdir_lib
    from train.errors import ConfigError
    from train.tasks import registry

    config = workdir_lib.load_config(workdir)
    task = registry.get_task(config)
    if split not in task.eval_splits:
        raise ConfigError(f"--split must be one of {', '.join(task.eval_splits)}, got {split!r}.")
    trained = checkpoint.load_trained(workdir, which, task)
    mesh = sharding.make_mesh()
    replicated = jax.tree.map(lambda _: sharding.replicated(mesh), trained.params)
    params = sharding.to_global(jax.device_get(trained.params), replicated)
    results = trainer.evaluate(
        task, steps.make_eval_step(task), params, split, mesh, config.eval.batch_size
    )
    return {"workdir": workdir, "split": split, "checkpoint_step": trained.step, **results}


def main(argv):
    if len(argv) > 1:
        print(f"error: unexpected arguments: {' '.join(argv[1:])}", file=sys.stderr)
        sys.exit(2)
    logging.set_verbosity(logging.WARNING)
    if not _WORKDIR.value:
        print("error: --workdir is required.", file=sys.stderr)
        sys.exit(2)
    from train.checkpoint import CheckpointError
    from train.errors import ConfigError

    try:
        out = evaluate_workdir(os.path.expanduser(_WORKDIR.value), _SPLIT.value, _WHICH.value)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except CheckpointError as e:  # no readable checkpoint: exit 1, as train.main
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(out))


def run() -> None:
    """The `rnn-evaluate` console command (the same as `python -m train.evaluate`)."""
    app.run(main)


if __name__ == "__main__":
    run()
