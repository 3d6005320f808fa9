"""The copy-last-frame baseline's record for one seed's fixed sets: every predicted frame is the
last input frame (no parameters, nothing trained), scored by the task's own metrics.

    python -m experiments.studies.moving_digits.copy_last --seed=0 --out=/tmp/copy_last_s0.json
"""

from __future__ import annotations

import time

from absl import app, flags

from experiments.configs import moving_digits as md_config
from experiments.lab import records
from train import validate
from train.tasks import moving_digits

FLAGS = flags.DEFINE_integer("seed", 0, "the seed of the fixed validation and test sets")
_OUT = flags.DEFINE_string("out", None, "where the record goes (JSON)", required=True)
_CONFIG = flags.DEFINE_string("config", "", "moving_digits.py's config arguments, e.g. canvas=32")


def record(seed: int, config_arg: str = "") -> dict:
    """{'name', 'valid', 'test', 'params': 0, 'wall_time_s', provenance}."""
    start = time.time()
    config = md_config.get_config(",".join(a for a in (config_arg, f"seed={seed}") if a))
    validate.validate(config)
    task = moving_digits.MovingDigitsTask(config)
    return {
        "name": f"md_copy_last_s{seed}",
        "model": "copy_last",
        "seed": seed,
        "valid": task.copy_last_baseline("valid"),
        "test": task.copy_last_baseline("test"),
        "params": 0,
        "wall_time_s": time.time() - start,
        **records.provenance(),
    }


def main(argv):
    del argv
    records.write(_OUT.value, record(FLAGS.value, _CONFIG.value), overwrite=True)


if __name__ == "__main__":
    app.run(main)
