r"""Runs the forecasting and long-range grids one run at a time, resumably.

    python -m experiments.run_grid ett_S adding ett_M copy      # groups, in this order
    nohup python -m experiments.run_grid all > workdirs/grid.log 2>&1 &

    python -m experiments.run_grid adding --out=/tmp/mine --workdirs=/tmp/mine/workdirs

Each run is `python -m train.main --config=experiments/configs/<file>.py:<fields>
--workdir=WORKDIRS/<name>`. A run whose OUT/<name>.json exists is not run again (the committed
results under experiments/results/ are reference data: rerun with --out=DIR to write elsewhere,
or --force to replace them); an interrupted run resumes from its workdir's last checkpoint
(the loop restores it). When a run ends, its results.json is written to OUT/<name>.json
together with the validation curve from metrics.jsonl and, for the long-range tasks, the
trivial baseline and the first step whose validation metric counts as solved.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from absl import app, flags

from experiments import records
from train.tasks import long_range

FLAGS = flags.FLAGS
ROOT = records.ROOT

HORIZONS = (24, 48, 168, 336, 720)
ADDING_LENGTHS = (50, 100, 200, 400)
COPY_LENGTHS = (50, 100, 200)
ADDING_SOLVED_MSE = 0.01
COPY_SOLVED_ACCURACY = 0.99


# Extra config fields per group (shorter budgets where the shared 2-core machine is too slow).
EXTRA = {"ett_M": ",num_steps=1000", "adding": "", "copy": ""}


def grid(group: str) -> list[tuple[str, str]]:
    """[(run name, config argument)] of one group; 'group@x' keeps runs whose name has _x."""
    if "@" in group:
        group, only = group.split("@", 1)
        return [(n, a) for n, a in grid(group) if f"_{only}_" in f"{n}_"]
    if group in ("ett_S", "ett_M"):
        features = group[-1]
        extra = EXTRA.get(group, "")
        return [
            (
                f"ett_{features}_{h}_{cell}",
                f"ett.py:features={features},horizon={h},cell={cell}{extra}",
            )
            for h in HORIZONS
            for cell in ("lstm", "gru")
        ]
    if group in ("adding", "copy"):
        lengths = ADDING_LENGTHS if group == "adding" else COPY_LENGTHS
        return [
            (f"{group}_{t}_{cell}", f"{group}.py:length={t},cell={cell}")
            for t in lengths
            for cell in ("rnn", "lstm", "gru")
        ]
    if group == "seq2seq":  # the decoder head next to the direct head, LSTM, short horizons
        return [
            (f"ett_{f}_{h}_lstm_seq2seq", f"ett.py:features={f},horizon={h},cell=lstm,head=seq2seq")
            for f in ("S", "M")
            for h in (24, 168)
        ]
    if group == "examples":
        return [("airline_lstm", "airline.py"), ("sunspots_lstm", "sunspots.py")]
    raise app.UsageError(
        f"unknown group {group!r}; valid: ett_S, ett_M, adding, copy, examples, seq2seq, all"
    )


def solved(task: str, metrics: dict) -> bool:
    if task == "adding":
        return metrics.get("mse", 1.0) < ADDING_SOLVED_MSE
    if task == "copy":
        return metrics.get("copy_accuracy", 0.0) >= COPY_SOLVED_ACCURACY
    return False


def collect(name: str, workdir: str) -> dict:
    """results.json + the validation curve (+ baseline and steps to solve for long-range)."""
    results = records.read(os.path.join(workdir, "results.json"))
    curve = records.valid_curve(workdir)
    results["name"] = name
    results["valid_curve"] = curve
    task = results["task"]
    if task in ("adding", "copy"):
        length = int(results["config"]["data"]["length"])
        if task == "adding":
            results["baseline"] = {"mse": long_range.adding_baseline_mse()}
        else:
            results["baseline"] = {"cross_entropy": long_range.copy_baseline_ce(length)}
        results["steps_to_solve"] = next((e["step"] for e in curve if solved(task, e)), None)
        results["solved"] = solved(task, results["test"])
    return results


def run(name: str, config_arg: str, out_dir: str, workdirs: str, force: bool = False) -> None:
    out = os.path.join(out_dir, f"{name}.json")
    if os.path.exists(out) and not force:
        print(
            f"[grid] {name}: {out} exists, not run again (--out=DIR writes elsewhere, --force "
            "replaces it)",
            flush=True,
        )
        return
    workdir = os.path.join(workdirs, name)
    if not os.path.exists(os.path.join(workdir, "results.json")):
        os.makedirs(workdir, exist_ok=True)
        cmd = [
            sys.executable, "-m", "train.main",
            f"--config=experiments/configs/{config_arg}", f"--workdir={workdir}",
        ]  # fmt: skip
        print(f"[grid] {name}: {' '.join(cmd[1:])}", flush=True)
        start = time.time()
        with open(os.path.join(workdir, "stdout.log"), "a") as log:
            status = subprocess.call(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        print(f"[grid] {name}: exit {status} after {time.time() - start:.0f}s", flush=True)
        if status != 0:
            return
    results = collect(name, workdir)
    records.write(out, results, overwrite=force)
    print(f"[grid] {name}: test {results['test']}", flush=True)


def define_flags() -> None:
    """The command-line flags (defined only when run as a script, so importing is side-free)."""
    flags.DEFINE_string("out", records.RESULTS_DIR, "Directory of the result JSONs.")
    flags.DEFINE_string("workdirs", os.path.join(ROOT, "workdirs"), "Directory of the workdirs.")
    flags.DEFINE_bool("force", False, "Rerun and replace results that exist in --out.")


def main(argv) -> None:
    groups = argv[1:]
    if not groups:
        raise app.UsageError(
            "name the groups to run: ett_S ett_M adding copy examples seq2seq | all "
            "(GROUP@x keeps the runs whose name has _x)"
        )
    if groups == ["all"]:
        groups = ["ett_S", "adding", "ett_M", "copy", "examples"]
    runs = [run_spec for group in groups for run_spec in grid(group)]
    for name, config_arg in runs:
        run(name, config_arg, FLAGS.out, FLAGS.workdirs, FLAGS.force)


if __name__ == "__main__":
    define_flags()
    app.run(main)
