r"""Does the cells' initialisation scheme change how fast a model learns? (issue item 12)

The question: with this library's default initialisers (Glorot-uniform w_ih over the fused
[I, G*H], forget bias 1) flax's seq2seq addition example learns far more slowly than with flax's
own (LeCun-normal w_ih: for one-hot inputs about 9x larger). The protocol: the same models,
seeds 0, 1, 2, each `init_scheme` (`cells.initializers`), on two tasks, one run at a time:

  seq2seq  flax's examples/seq2seq LSTM encoder-decoder (`experiments/seq2seq_addition.py`:
           H = 512, batch 128, Adam 3e-3, 1,200 steps, backward='autodiff'), greedy exact match
           on the fixed 1,000 problems, every 200 steps; and flax's own nn.LSTMCell model
           (scheme 'flax-model') as the reference.
  mnist1d  this repository's MNIST-1D task through the trainer (`experiments/configs/mnist1d.py`:
           the published bidirectional GRU, 6 units per direction, 8,000 steps), the scheme set
           from the command line (--config.model.cell_options="{'init_scheme': S}"); the test
           accuracy of the best-validation checkpoint, the metric the task reports.

    python -m experiments.init_schemes --out=experiments/results/init_schemes   # run, resumable
    nohup python -m experiments.init_schemes --out=... > workdirs/init_schemes.log 2>&1 &
    python -m experiments.init_schemes --out=experiments/results/init_schemes --table_only

One JSON per run, OUT/<task>_<scheme>_s<seed>.json (command, commit, whether the tracked tree
was clean, hardware, date, wall and CPU time, the metric and its curve); a run whose JSON
exists is skipped. The table: mean +- std over seeds (`records.mean_std`).
"""

from __future__ import annotations

import datetime
import json
import os
import resource
import subprocess
import sys
import time

from absl import app, flags

from experiments import records
from train import provenance

SCHEMES = ("cells", "flax", "torch", "keras")
TASKS = ("mnist1d", "seq2seq")
REFERENCE = "flax-model"  # seq2seq only: flax's nn.LSTMCell model, flax's own init
MNIST1D_STEPS = 8000  # the config's (the published 8,000)

FLAGS = flags.FLAGS


def run_names(tasks, schemes, seeds) -> list[tuple[str, str, int]]:
    """(task, scheme, seed) in run order: seed by seed, so a partial grid stays balanced."""
    runs = []
    for seed in seeds:
        for task in tasks:
            extra = (REFERENCE,) if task == "seq2seq" else ()
            runs += [(task, s, seed) for s in (*schemes, *extra)]
    return runs


def record_name(task: str, scheme: str, seed: int) -> str:
    return f"{task}_{scheme}_s{seed}"


def _git_clean() -> bool:
    """No modified tracked file (untracked results being written do not count)."""
    out = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=records.ROOT,
        capture_output=True,
        text=True,
    )
    return out.returncode == 0 and not out.stdout.strip()


def run_seq2seq(scheme: str, seed: int, steps: int) -> tuple[dict, str]:
    """One seq2seq run in this process: (its record, the equivalent command)."""
    import cells
    from experiments import seq2seq_addition

    if scheme == REFERENCE:
        record = seq2seq_addition.train(model="flax", seed=seed, steps=steps)
    else:
        cell = cells.LSTM(512, init_scheme=scheme)
        record = seq2seq_addition.train(model="cells", cell=cell, seed=seed, steps=steps)
    command = (
        f'python -c "from experiments import seq2seq_addition as s; import cells; '
        f"s.train(model={'flax' if scheme == REFERENCE else 'cells'!r}"
        + ("" if scheme == REFERENCE else f", cell=cells.LSTM(512, init_scheme={scheme!r})")
        + f', seed={seed}, steps={steps})"'
    )
    metric = {"exact_match": record["accuracy"][-1]}
    return {**metric, "curve": record}, command


def run_mnist1d(scheme: str, seed: int, workdirs: str, steps: int) -> tuple[dict, str]:
    """One MNIST-1D run through the trainer, in a subprocess (resumes from its workdir)."""
    workdir = os.path.join(workdirs, record_name("mnist1d", scheme, seed))
    options = f"{{'init_scheme': '{scheme}'}}"
    args = [
        "-m",
        "train.main",
        f"--config=experiments/configs/mnist1d.py:seed={seed}"
        + ("" if steps == MNIST1D_STEPS else f",num_steps={steps}"),
        f"--workdir={workdir}",
        f"--config.model.cell_options={options}",
    ]
    subprocess.run([sys.executable, *args], cwd=records.ROOT, check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(workdir, "results.json")) as f:
        results = json.load(f)
    curve = records.valid_curve(workdir)
    metric = {"test_accuracy": results["test"]["accuracy"], "best_step": results["best_step"]}
    command = " ".join(["python", *args[:-2], f"--workdir={records.portable_path(workdir)}"])
    command += f' --config.model.cell_options="{options}"'
    results.pop("command", None)  # its path is this machine's; `command` above is the run's
    return {**metric, "results": results, "valid_curve": curve}, command


def run_one(task: str, scheme: str, seed: int, out: str) -> None:
    path = os.path.join(out, record_name(task, scheme, seed) + ".json")
    if os.path.exists(path):
        return
    print(f"{datetime.datetime.now():%H:%M:%S} {record_name(task, scheme, seed)}", flush=True)
    clean = _git_clean()
    start, cpu_self = time.time(), time.process_time()
    cpu_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    if task == "seq2seq":
        outcome, command = run_seq2seq(scheme, seed, FLAGS.steps)
    else:
        outcome, command = run_mnist1d(scheme, seed, FLAGS.workdirs, FLAGS.mnist1d_steps)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() - cpu_self
    cpu += (children.ru_utime + children.ru_stime) - (cpu_children.ru_utime + cpu_children.ru_stime)
    record = {
        "task": task,
        "scheme": scheme,
        "seed": seed,
        **outcome,
        "command": command,
        "git_commit": provenance.git_commit(),
        "git_clean": clean,
        "hardware": provenance.hardware(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "wall_time_s": time.time() - start,
        "cpu_time_s": cpu,
    }
    records.write(path, record)
    metric = outcome.get("exact_match", outcome.get("test_accuracy"))
    print(f"  -> {metric:.3f} in {record['wall_time_s']:.0f} s ({cpu:.0f} CPU-s)", flush=True)


def table(out: str) -> str:
    """Markdown: per task and scheme, the metric's mean +- std over seeds and the run times."""
    runs = records.load_all(out)
    lines = [
        "| task | scheme | metric | mean +- std | per seed | wall per run | CPU in all |",
        "|---|---|---|---|---|---|---|",
    ]
    order = {s: k for k, s in enumerate((*SCHEMES, REFERENCE))}
    groups: dict[tuple[str, str], list[dict]] = {}
    for record in runs.values():
        groups.setdefault((record["task"], record["scheme"]), []).append(record)
    for (task, scheme), group in sorted(groups.items(), key=lambda kv: (kv[0][0], order[kv[0][1]])):
        group.sort(key=lambda r: r["seed"])
        metric = "exact_match" if task == "seq2seq" else "test_accuracy"
        values = [r[metric] for r in group]
        mean, std = records.mean_std(values)
        seeds = ", ".join(f"{v:.3f}" for v in values)
        walls = [r["wall_time_s"] for r in group]
        cpu = sum(r["cpu_time_s"] for r in group) / 60
        lines.append(
            f"| {task} | {scheme} | {metric} | {mean:.3f} +- {std:.3f} (n={len(values)}) | "
            f"{seeds} | {min(walls):.0f}-{max(walls):.0f} s | {cpu:.0f} CPU-min |"
        )
    return "\n".join(lines)


def curve_table(out: str, task: str = "seq2seq") -> str:
    """Markdown: seq2seq exact match at every evaluation step, mean over seeds, per scheme, and
    the mean over the evaluations (how fast it learns; mean +- std over seeds)."""
    runs = [r for r in records.load_all(out).values() if r["task"] == task]
    if not runs:
        return ""
    steps = runs[0]["curve"]["eval_steps"]
    lines = [
        "| scheme | " + " | ".join(f"step {s}" for s in steps) + " | mean over steps |",
        "|---|" + "---:|" * (len(steps) + 1),
    ]
    for scheme in (*SCHEMES, REFERENCE):
        group = [r["curve"]["accuracy"] for r in runs if r["scheme"] == scheme]
        if group:
            means = [sum(col) / len(col) for col in zip(*group, strict=True)]
            area, spread = records.mean_std([sum(curve) / len(curve) for curve in group])
            cells_ = " | ".join(f"{m:.3f}" for m in means)
            lines.append(f"| {scheme} | {cells_} | {area:.3f} +- {spread:.3f} |")
    return "\n".join(lines)


def define_flags() -> None:
    flags.DEFINE_string("out", os.path.join(records.RESULTS_DIR, "init_schemes"), "JSON dir.")
    flags.DEFINE_string("workdirs", os.path.join(records.ROOT, "workdirs", "init_schemes"), "")
    flags.DEFINE_list("tasks", list(TASKS), f"Tasks, in run order: {TASKS}.")
    flags.DEFINE_list("schemes", list(SCHEMES), f"init_scheme values: {SCHEMES}.")
    flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds.")
    flags.DEFINE_integer("steps", 1200, "seq2seq training steps (the issue's 1,200).")
    flags.DEFINE_integer("mnist1d_steps", MNIST1D_STEPS, "MNIST-1D training steps.")
    flags.DEFINE_bool("table_only", False, "Print the tables of the runs in --out; run nothing.")


def main(argv) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    unknown = set(FLAGS.tasks) - set(TASKS) or set(FLAGS.schemes) - set(SCHEMES)
    if unknown:
        raise app.UsageError(f"unknown task or scheme {sorted(unknown)}: {TASKS}, {SCHEMES}.")
    if not FLAGS.table_only:
        for task, scheme, seed in run_names(FLAGS.tasks, FLAGS.schemes, map(int, FLAGS.seeds)):
            run_one(task, scheme, seed, FLAGS.out)
    print(table(FLAGS.out))
    print()
    print(curve_table(FLAGS.out))


if __name__ == "__main__":
    define_flags()
    app.run(main)
