"""DIR/config.json, the workdir's record of its config, and refusing restarts that change the model.

A workdir belongs to one model and data stream. Restarting in it with a config that changes
FROZEN_FIELDS (which fix the train state's shapes or the data stream) is refused with a message
naming the changed fields; other changes (e.g. log_every) are allowed and logged.
"""

from __future__ import annotations

import json
import os

from absl import logging

from train.tasks import base

# Fields a restart may not change: they fix the train state's shapes or the data stream.
FROZEN_FIELDS = (
    "task",
    "seed",
    "model",
    "data",
    "train.batch_size",
    "train.seq_len",
    "optim.optimizer",
)


def config_dict(config) -> dict:
    return json.loads(json.dumps(config.to_dict(), default=str))


def _lookup(d: dict, dotted: str):
    for part in dotted.split("."):
        d = d.get(part) if isinstance(d, dict) else None
    return d


def _diff(old, new, prefix=""):
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new)):
            out += _diff(old.get(k), new.get(k), f"{prefix}{k}.")
        return out
    return [] if old == new else [(prefix[:-1], old, new)]


def check_config_json(config, workdir: str, has_checkpoints: bool, primary: bool) -> None:
    """Refuses a restart whose config changes FROZEN_FIELDS; (re)writes DIR/config.json."""
    path = os.path.join(workdir, "config.json")
    new = config_dict(config)
    if has_checkpoints and os.path.exists(path):
        with open(path) as f:
            old = json.load(f)
        frozen = []
        for field in FROZEN_FIELDS:
            frozen += _diff(_lookup(old, field), _lookup(new, field), field + ".")
        if frozen:
            changes = ", ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in frozen[:5])
            raise base.ConfigError(
                f"--workdir {workdir} holds checkpoints of another model/data config ({changes}); "
                "use a new --workdir (or the original config) to continue."
            )
        changed = _diff(old, new)
        if changed:
            logging.warning(
                "resuming with changed settings: %s",
                ", ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in changed),
            )
    if primary:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(new, f, indent=2, sort_keys=True)
        os.replace(tmp, path)
