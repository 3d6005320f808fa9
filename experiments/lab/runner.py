"""The runner: a study's runs, one record each, resumable, optionally several at a time.

    runs = [lab.Run("adding_100_lstm", config="adding.py:length=100,cell=lstm")]
    runner.run_all(runs, out_dir, workdirs, jobs=2)

A run is either a training run, `python -m train.main --config=<config> --workdir=WORKDIRS/<name>`
(its record: the workdir's results.json, the validation curve, then the study's `collect`), or a
command that writes its record itself (`command`, with '{out}' and '{workdir}' substituted).
A run whose OUT/<name>.json exists is not run again (--force replaces it); an interrupted
training run resumes from its workdir's last checkpoint (the loop restores it); a training run
stopped by a non-finite loss gets a 'diverged' record (a result too: the setting cannot train);
any other failure writes nothing, so the next invocation retries it. `run_group` runs a group
whose runs follow from its own records (asked again until it adds none).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

from experiments.lab import records

CONFIGS_DIR = os.path.join("experiments", "configs")


@dataclasses.dataclass(frozen=True)
class Run:
    """One run of a study.

    Attributes:
      name: the record's name: OUT/<name>.json, WORKDIRS/<name>.
      config: a training run's config argument, '<file>.py[:fields]': a file under
        experiments/configs/, or a path from the repository root (a study's own config).
      overrides: extra `--config.x=y` flags of a training run.
      command: instead of `config`, the arguments after `python` of a command that writes
        the record to '{out}' itself (e.g. ('-m', 'experiments.studies.cpu_speed.bench',
        '--json={out}')); '{workdir}' is the run's workdir.
      collect: a training run's record from (name, workdir), default `collect`.
    """

    name: str
    config: str | None = None
    overrides: tuple[str, ...] = ()
    command: tuple[str, ...] | None = None
    collect: Callable[[str, str], dict] | None = None

    def __post_init__(self):
        if (self.config is None) == (self.command is None):
            raise ValueError(f"run {self.name!r}: give exactly one of config= and command=")

    def config_path(self) -> str:
        """The --config argument: a bare file name is looked up under experiments/configs/."""
        file = self.config.split(":", 1)[0]
        return self.config if os.sep in file else os.path.join(CONFIGS_DIR, self.config)


def select(runs: Sequence[Run], only: str) -> list[Run]:
    """The runs whose name has `only` between underscores or at either end ('GROUP@x'); a whole
    run name selects that run alone."""
    return [r for r in runs if f"_{only}_" in f"_{r.name}_"]


def collect(name: str, workdir: str) -> dict:
    """A training run's record: its results.json, its name and its validation curve."""
    record = records.read(os.path.join(workdir, "results.json"))
    record["name"] = name
    record["valid_curve"] = records.valid_curve(workdir)
    return record


def diverged(name: str, workdir: str, command: str, wall_time_s: float) -> dict | None:
    """The record of a training run stopped by a non-finite loss (train.trainer.NonFiniteError),
    from its log; None for any other failure."""
    with open(os.path.join(workdir, "stdout.log")) as log:
        lines = [line.strip() for line in log if "non-finite loss" in line]
    if not lines:
        return None
    return {
        "name": name,
        "status": "diverged",
        "error": records.portable_text(lines[-1]),
        **records.provenance(),
        "command": command,
        "wall_time_s": wall_time_s,
    }


def _say(name: str, text: str) -> None:
    print(f"[run] {name}: {text}", flush=True)


def _command(run: Run, out: str, workdir: str) -> list[str]:
    if run.command is not None:
        workdir = records.portable_path(workdir)  # a recorded command names no machine's folder
        args = [a.replace("{out}", out).replace("{workdir}", workdir) for a in run.command]
        return [sys.executable, *args]
    return [
        sys.executable, "-m", "train.main",
        f"--config={run.config_path()}",
        f"--workdir={records.portable_path(workdir)}",
        *run.overrides,
    ]  # fmt: skip


def run_one(run: Run, out_dir: str, workdirs: str, force: bool = False) -> str:
    """Runs `run` unless its record exists; returns 'skipped', 'done', 'diverged' or 'failed'."""
    out = os.path.join(out_dir, f"{run.name}.json")
    if os.path.exists(out) and not force:
        _say(run.name, f"{records.portable_path(out)} exists, not run again (--force replaces it)")
        return "skipped"
    workdir = os.path.join(workdirs, run.name)
    os.makedirs(workdir, exist_ok=True)
    os.makedirs(out_dir, exist_ok=True)
    finished = run.command is None and os.path.exists(os.path.join(workdir, "results.json"))
    # A command writes its record beside the final path first: a rerun with --force replaces
    # the old record only once the new one exists, and a command that refuses to overwrite
    # never sees the old one.
    written = out + ".new" if run.command is not None else out
    if run.command is not None and os.path.exists(written):
        os.remove(written)  # a previous attempt's leftover, never a record
    if not finished:
        cmd = _command(run, records.portable_path(written), workdir)
        shown = " ".join(["python", *cmd[1:]])
        _say(run.name, shown)
        start = time.time()
        with open(os.path.join(workdir, "stdout.log"), "a") as log:
            status = subprocess.call(cmd, cwd=records.ROOT, stdout=log, stderr=subprocess.STDOUT)
        wall = time.time() - start
        _say(run.name, f"exit {status} after {wall:.0f} s (log: {workdir}/stdout.log)")
        if status != 0:
            record = diverged(run.name, workdir, shown, wall) if run.command is None else None
            if record is None:
                return "failed"
            records.write(out, record, overwrite=force, allow_dirty=force)
            _say(run.name, f"diverged ({record['error']})")
            return "diverged"
        if run.command is not None:
            if not os.path.exists(written):
                _say(run.name, f"the command exited 0 but wrote no {written}")
                return "failed"
            try:
                records.check_clean(out, records.read(written), allow_dirty=force)
            except records.DirtyTreeError as e:  # said now, not after the group's other runs
                os.remove(written)
                _say(run.name, f"not recorded: {e} (the command resumes from {workdir})")
                return "failed"
            os.replace(written, out)  # the command's own bytes, not a rewrite
            return "done"
    record = (run.collect or collect)(run.name, workdir)
    records.write(out, record, overwrite=force, allow_dirty=force)
    _say(run.name, f"test {record.get('test')}")
    return "done"


def run_all(
    runs: Sequence[Run], out_dir: str, workdirs: str, jobs: int = 1, force: bool = False
) -> dict[str, str]:
    """Runs `runs` (`run_one`), up to `jobs` at a time (each run is its own process; JAX in
    each uses every core, so jobs > 1 pays where runs are small or cores many); name -> outcome."""
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        raise ValueError(f"run names repeat: {sorted({n for n in names if names.count(n) > 1})}")
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {r.name: pool.submit(run_one, r, out_dir, workdirs, force) for r in runs}
        return {name: future.result() for name, future in futures.items()}


def run_group(
    runs_of: Callable[[], Sequence[Run]],
    out_dir: str,
    workdirs: str,
    jobs: int = 1,
    force: bool = False,
) -> dict[str, str]:
    """Runs a group's runs (`run_all`), then asks `runs_of` again and runs the names it had not
    given, until it gives none: a group whose runs follow from its own records (a search that
    steps past its edge while its best sits there) grows as they land. A static group is asked
    twice."""
    outcomes: dict[str, str] = {}
    while runs := [r for r in runs_of() if r.name not in outcomes]:
        outcomes.update(run_all(runs, out_dir, workdirs, jobs=jobs, force=force))
    return outcomes
