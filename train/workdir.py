"""DIR/config.json, the workdir's record of its config, and refusing restarts that change the model.

A workdir belongs to one model and data stream. Restarting in it with a config that changes
FROZEN_FIELDS (which fix the train state's shapes or the data stream) is refused with a message
naming the changed fields; other changes (e.g. log_every) are allowed and logged.

`load_config` reads the record back, brought up to today's schema (`upgrade`), so workdirs
written by earlier versions still evaluate, sample and resume.
"""

from __future__ import annotations

import copy
import json
import os

import ml_collections
from absl import logging

import cells
from train import config_base, models
from train.errors import ConfigError
from train.tasks import registry

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


# model fields a config.json written before they existed lacks, with the value that meant.
_ADDED_MODEL_FIELDS = {
    "block": "stack",
    "block_norm": "rms",
    "block_ffn_factor": 0.0,
    "param_budget": 0,
}


def upgrade(config: dict) -> dict:
    """A config.json written before the cell registry, in today's schema (a new dict).

    Then `model.forget_bias` and `model.activation` applied to whichever cell used them, and
    some tasks recorded a `train.seq_len` they did not read. Now a cell's options live in
    `model.cell_options` (kept where the cell takes them and they differ from its default;
    with the LM's `init_scale` > 0 every parameter starts uniform, which the old forget_bias 0
    meant), and fields a task does not use hold the schema's default. Current configs pass
    through unchanged.
    """
    config = copy.deepcopy(config)
    model = config.get("model")
    if isinstance(model, dict):  # fields added to the schema or the task since, at defaults
        try:
            task_defaults = registry.get_task_class(config.get("task")).model_defaults
        except ConfigError:
            task_defaults = {}
        for key, default in {**_ADDED_MODEL_FIELDS, **task_defaults}.items():
            model.setdefault(key, default)
    data = config.get("data")
    if isinstance(data, dict):
        try:
            data_defaults = registry.get_task_class(config.get("task")).data_defaults
        except ConfigError:
            data_defaults = {}
        for key, default in data_defaults.items():
            data.setdefault(key, default)
    if not isinstance(model, dict) or "cell_options" in model:
        return config
    try:
        valid = models.configurable_options(cells.get(model.get("cell")))
    except ValueError:
        valid = {}
    options = {}
    for key in ("forget_bias", "activation"):
        if key not in model:
            continue
        value = model.pop(key)
        uniform_init = key == "forget_bias" and model.get("init_scale", 0) > 0 and value == 0
        if key in valid and value != valid[key] and not uniform_init:
            options[key] = value
    model["cell_options"] = options
    try:
        unused = registry.get_task_class(config.get("task")).unused_fields
    except ConfigError:
        unused = {}
    schema = config_base.base_config()
    for field in unused:
        group, key = field.split(".")
        if isinstance(config.get(group), dict):
            config[group][key] = schema[group][key]
    return config


def load_config(workdir: str) -> ml_collections.ConfigDict:
    """The config a workdir was trained with (DIR/config.json), in today's schema."""
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        raise ConfigError(f"--workdir {workdir!r} has no config.json (not a training workdir).")
    return ml_collections.ConfigDict(upgrade(_read_json(path)))


def _read_json(path: str) -> dict:
    """DIR/config.json as a dict; ConfigError (one line) when it is not a JSON object."""
    try:
        with open(path, "rb") as f:
            value = json.loads(f.read().decode("utf-8", errors="replace"))
    except json.JSONDecodeError as e:
        raise ConfigError(
            f"{path} is not valid JSON ({e.msg} at line {e.lineno}): restore it from the run's "
            "results.json 'config' or a backup; the checkpoints are untouched."
        ) from None
    if not isinstance(value, dict):
        raise ConfigError(f"{path} must hold a JSON object (the run's config).")
    return value


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


def check_restart(config, workdir: str, has_checkpoints: bool) -> None:
    """Refuses a restart whose config changes FROZEN_FIELDS (nothing is written)."""
    path = os.path.join(workdir, "config.json")
    new = upgrade(config_dict(config))  # fields a config file leaves out hold their defaults
    if has_checkpoints and os.path.exists(path):
        old = upgrade(_read_json(path))
        frozen = []
        for field in FROZEN_FIELDS:
            frozen += _diff(_lookup(old, field), _lookup(new, field), field + ".")
        if frozen:
            changes = ", ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in frozen[:5])
            raise ConfigError(
                f"--workdir {workdir} holds checkpoints of another model/data config ({changes}); "
                "use a new --workdir (or the original config) to continue."
            )
        changed = _diff(old, new)
        if changed:
            logging.warning(
                "resuming with changed settings: %s",
                ", ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in changed),
            )


def write_config_json(config, workdir: str) -> None:
    """(Re)writes DIR/config.json, atomically. The trainer calls it only once the checkpoint
    (if any) has been restored, so a refused restart leaves the record of the run untouched."""
    path = os.path.join(workdir, "config.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(config_dict(config), f, indent=2, sort_keys=True)
    os.replace(tmp, path)


DATA_FINGERPRINT = "data_sha256.json"


def data_fingerprint(config) -> dict[str, str] | None:
    """{file: sha256} of config.data.path (None for generated data, data.path '')."""
    from train.data import base as data_base  # the data layer (imports numpy and friends)

    path = config.data.get("path", "")
    return data_base.fingerprint(path) if path else None


def check_data(config, workdir: str, has_checkpoints: bool) -> dict[str, str] | None:
    """Refuses to resume checkpoints trained on other data (same path, other content).

    Returns the data's fingerprint, which `write_data_fingerprint` records once the checkpoint
    has been restored. A workdir from before fingerprints were recorded is not checked.
    """
    now = data_fingerprint(config)
    path = os.path.join(workdir, DATA_FINGERPRINT)
    if has_checkpoints and now is not None and os.path.exists(path):
        try:
            with open(path) as f:
                recorded = json.load(f)
        except (OSError, ValueError):
            recorded = None  # unreadable: rewritten below, like config.json
        if isinstance(recorded, dict) and recorded.get("files") not in (None, now):
            changed = sorted(
                name
                for name in set(now) | set(recorded["files"])
                if now.get(name) != recorded["files"].get(name)
            )
            raise ConfigError(
                f"config.data.path={config.data.path!r} has changed since --workdir {workdir} "
                f"was trained on it ({', '.join(changed[:3])} differ from the sha256 in "
                f"{DATA_FINGERPRINT}); restore the original data or use a new --workdir."
            )
    return now


def write_data_fingerprint(config, workdir: str, fingerprint: dict[str, str] | None) -> None:
    if fingerprint is None:
        return
    path = os.path.join(workdir, DATA_FINGERPRINT)
    with open(path + ".tmp", "w") as f:
        json.dump({"path": config.data.path, "files": fingerprint}, f, indent=2, sort_keys=True)
    os.replace(path + ".tmp", path)
