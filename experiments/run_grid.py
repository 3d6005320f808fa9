r"""Runs the forecasting and long-range grids one run at a time, resumably.

    python -m experiments.run_grid ett_S adding ett_M copy      # groups, in this order
    nohup python -m experiments.run_grid all > workdirs/grid.log 2>&1 &

Each run is `python -m train.main --config=experiments/configs/<file>.py:<fields>
--workdir=workdirs/<name>`. A run whose experiments/results/<name>.json exists is skipped; an
interrupted run resumes from its workdir's last checkpoint (the loop restores it). When a run
ends, its results.json is copied to experiments/results/<name>.json together with the
validation curve from metrics.jsonl and, for the long-range tasks, the trivial baseline and the
first step whose validation metric counts as solved.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from train.tasks import long_range

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "experiments", "results")
WORKDIRS = os.path.join(ROOT, "workdirs")

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
    raise SystemExit(
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
    with open(os.path.join(workdir, "results.json")) as f:
        results = json.load(f)
    curve = []
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        for line in f:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if event.get("split") == "valid" and not event.get("final"):
                curve.append({k: v for k, v in event.items() if k != "split"})
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


def run(name: str, config_arg: str) -> None:
    out = os.path.join(RESULTS, f"{name}.json")
    if os.path.exists(out):
        print(f"[grid] {name}: done, skipped", flush=True)
        return
    workdir = os.path.join(WORKDIRS, name)
    if not os.path.exists(os.path.join(workdir, "results.json")):
        os.makedirs(workdir, exist_ok=True)
        cmd = [
            sys.executable, "-m", "train.main",
            f"--config=experiments/configs/{config_arg}", f"--workdir=workdirs/{name}",
        ]  # fmt: skip
        print(f"[grid] {name}: {' '.join(cmd[1:])}", flush=True)
        start = time.time()
        with open(os.path.join(workdir, "stdout.log"), "a") as log:
            status = subprocess.call(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        print(f"[grid] {name}: exit {status} after {time.time() - start:.0f}s", flush=True)
        if status != 0:
            return
    results = collect(name, workdir)
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(results, f, indent=1)
    os.replace(tmp, out)
    print(f"[grid] {name}: test {results['test']}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "groups", nargs="+", help="ett_S ett_M adding copy examples seq2seq | all; GROUP@x filters"
    )
    args = parser.parse_args()
    groups = args.groups
    if groups == ["all"]:
        groups = ["ett_S", "adding", "ett_M", "copy", "examples"]
    os.makedirs(RESULTS, exist_ok=True)
    for group in groups:
        for name, config_arg in grid(group):
            run(name, config_arg)


if __name__ == "__main__":
    main()
