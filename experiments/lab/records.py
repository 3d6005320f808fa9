"""Result records: the one way to read and write a run's JSON, and where it came from.

    record = records.read(path)                  # one run's JSON
    runs = records.load_all(study.results_dir)   # name -> record, sorted by name
    records.write(path, record)                  # atomic; refuses to replace an existing file
    curve = records.valid_curve(workdir)         # per-evaluation validation metrics of a run
    record.update(records.provenance())          # commit, dirty tree?, hardware, date, command

A study's committed `results/` folder is reference data: `write` never replaces a file there
unless asked (`overwrite=True`, the runner's --force), refuses a record made from a tree with
uncommitted changes (`git_dirty`) unless asked (`allow_dirty=True`, --force again), and every
command that writes takes an output directory, so a rerun can go elsewhere.
"""

from __future__ import annotations

import glob
import json
import os

from train import metrics

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STUDIES_DIR = os.path.join(ROOT, "experiments", "studies")


class DirtyTreeError(ValueError):
    """A committed result would not say which code made it."""


def check_clean(path: str, record: dict, allow_dirty: bool = False) -> None:
    """DirtyTreeError when `path` is committed reference data (`is_committed`), the record says
    it was made from a tree with uncommitted changes (`git_dirty`) and `allow_dirty` is False."""
    if record.get("git_dirty") and is_committed(path) and not allow_dirty:
        raise DirtyTreeError(
            f"{path}: the run was made from a tree with uncommitted changes (commit "
            f"{record.get('git_commit', 'unknown')}); commit first, write elsewhere with --out, "
            "or pass --force to record it anyway."
        )


def portable_path(path: str) -> str:
    """`path` relative to the repository when inside it (commands run from there), so that a
    command recorded in a result file names no directory of this machine; else unchanged."""
    relative = os.path.relpath(os.path.abspath(path), ROOT)
    return path if relative.startswith("..") else relative


def portable_text(text: str) -> str:
    """`text` (an error message, a log line) with every path inside the repository written
    relative to it, so that a result file names no directory of this machine."""
    return text.replace(ROOT + os.sep, "")


def is_committed(path: str) -> bool:
    """Whether `path` (a file or a folder) lies in a study's committed results
    (experiments/studies/*/results/)."""
    relative = os.path.relpath(os.path.abspath(path), STUDIES_DIR).split(os.sep)
    return len(relative) >= 2 and relative[0] != ".." and relative[1] == "results"


def provenance() -> dict:
    """Where a record came from: git commit, whether tracked files had uncommitted changes,
    hardware, date (UTC) and the command line."""
    import datetime

    from train import provenance as train_provenance

    return {
        "git_commit": train_provenance.git_commit(),
        "git_dirty": train_provenance.git_dirty(),
        "hardware": train_provenance.hardware(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": train_provenance.command(),
    }


def read(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def write(path: str, record: dict, overwrite: bool = False, allow_dirty: bool = False) -> str:
    """Writes `record` as JSON to `path` atomically (a temporary file, then a rename).

    Raises FileExistsError when `path` exists and `overwrite` is False, and DirtyTreeError when
    `path` is committed reference data (`is_committed`), the record says it was made from a
    tree with uncommitted changes (`git_dirty`) and `allow_dirty` is False.
    """
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(
            f"{path} exists (committed results are reference data); write elsewhere with an "
            "output-directory flag, or pass --force to replace it."
        )
    check_clean(path, record, allow_dirty)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)
    return path


def load_all(directory: str, prefixes: tuple[str, ...] = ()) -> dict[str, dict]:
    """name (file name without .json) -> record of the JSON files in `directory`, sorted.

    With `prefixes`, only files whose name starts with one of them.
    """
    out = {}
    for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
        name = os.path.splitext(os.path.basename(path))[0]
        if not prefixes or name.startswith(prefixes):
            out[name] = read(path)
    return out


def valid_curve(workdir: str, keys: tuple[str, ...] | None = None) -> list[dict]:
    """The validation events of a run's metrics.jsonl (not the final ones), in step order.

    With `keys`, each entry keeps only those metrics (and 'step'); else every field but 'split'.
    """
    curve = []
    for event in metrics.read_events(workdir):
        if event.get("split") != "valid" or event.get("final"):
            continue
        if keys is None:
            curve.append({k: v for k, v in event.items() if k != "split"})
        else:
            curve.append({k: event[k] for k in ("step", *keys) if k in event})
    return curve
