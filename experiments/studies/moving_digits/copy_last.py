"""A parameter-free baseline's record for one seed's fixed sets, scored by the task's own
metrics: copy-last (every predicted frame is the last input frame) or mean-frame (every
predicted frame is the training frames' per-pixel mean, the best constant).

    python -m experiments.studies.moving_digits.copy_last --seed=0 --out=/tmp/copy_last_s0.json
    python -m experiments.studies.moving_digits.copy_last --baseline=mean_frame --seed=0 \
        --out=/tmp/mean_frame_s0.json
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
_BASELINE = flags.DEFINE_enum("baseline", "copy_last", BASELINES := ("copy_last", "mean_frame"),
                              "which parameter-free predictor")  # fmt: skip


def record(seed: int, config_arg: str = "", baseline: str = "copy_last") -> dict:
    """{'name', 'model', 'seed', 'valid', 'test', 'params': 0, 'wall_time_s', provenance}."""
    start = time.time()
    config = md_config.get_config(",".join(a for a in (config_arg, f"seed={seed}") if a))
    validate.validate(config)
    task = moving_digits.MovingDigitsTask(config)
    score = getattr(task, f"{baseline}_baseline")
    return {
        "name": f"md_{baseline}_s{seed}",
        "model": baseline,
        "seed": seed,
        "valid": score("valid"),
        "test": score("test"),
        "params": 0,
        "wall_time_s": time.time() - start,
        **records.provenance(),
    }


def main(argv):
    del argv
    records.write(_OUT.value, record(FLAGS.value, _CONFIG.value, _BASELINE.value), overwrite=True)


if __name__ == "__main__":
    app.run(main)
