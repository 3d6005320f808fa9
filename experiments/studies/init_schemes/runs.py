r"""One run of the init-scheme study (study.py lists them; the lab's runner calls this).

    python -m experiments.studies.init_schemes.runs --task=seq2seq --scheme=flax --seed=0 \
        --out=/tmp/seq2seq_flax_s0.json --workdir=/tmp/w

seq2seq trains in this process (`seq2seq_addition.train`); mnist1d trains through the trainer
in a subprocess (resuming its workdir). The record: the metric and its curve, the equivalent
command, provenance (`records.provenance`), wall time and CPU time (children included).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

from absl import app, flags

from experiments.lab import records

SCHEMES = ("cells", "flax", "torch", "keras")
TASKS = ("mnist1d", "seq2seq")
REFERENCE = "flax-model"  # seq2seq only: flax's nn.LSTMCell model, flax's own init
MNIST1D_STEPS = 8000  # the config's (the published 8,000)
SEQ2SEQ_STEPS = 1200  # flax's example

FLAGS = flags.FLAGS


def run_seq2seq(scheme: str, seed: int, steps: int) -> tuple[dict, str]:
    """One seq2seq run in this process: (its record, the equivalent command)."""
    import cells
    from experiments.studies.init_schemes import seq2seq_addition

    if scheme == REFERENCE:
        record = seq2seq_addition.train(model="flax", seed=seed, steps=steps)
    else:
        cell = cells.LSTM(512, init_scheme=scheme)
        record = seq2seq_addition.train(model="cells", cell=cell, seed=seed, steps=steps)
    command = (
        f'python -c "from experiments.studies.init_schemes import seq2seq_addition as s; '
        f"import cells; "
        f"s.train(model={'flax' if scheme == REFERENCE else 'cells'!r}"
        + ("" if scheme == REFERENCE else f", cell=cells.LSTM(512, init_scheme={scheme!r})")
        + f', seed={seed}, steps={steps})"'
    )
    metric = {"exact_match": record["accuracy"][-1]}
    return {**metric, "curve": record}, command


def run_mnist1d(scheme: str, seed: int, workdir: str, steps: int) -> tuple[dict, str]:
    """One MNIST-1D run through the trainer, in a subprocess (resumes from its workdir)."""
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


def run_one(task: str, scheme: str, seed: int, path: str, workdir: str, steps: int) -> None:
    """Trains one (task, scheme, seed) and writes its record to `path`."""
    start, cpu_self = time.time(), time.process_time()
    cpu_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    if task == "seq2seq":
        outcome, command = run_seq2seq(scheme, seed, steps)
    else:
        outcome, command = run_mnist1d(scheme, seed, workdir, steps)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() - cpu_self
    cpu += (children.ru_utime + children.ru_stime) - (cpu_children.ru_utime + cpu_children.ru_stime)
    record = {
        "task": task,
        "scheme": scheme,
        "seed": seed,
        **outcome,
        **records.provenance(),
        "command": command,
        "wall_time_s": time.time() - start,
        "cpu_time_s": cpu,
    }
    records.write(path, record)
    metric = outcome.get("exact_match", outcome.get("test_accuracy"))
    print(f"  -> {metric:.3f} in {record['wall_time_s']:.0f} s ({cpu:.0f} CPU-s)", flush=True)


def define_flags() -> None:
    flags.DEFINE_enum("task", None, TASKS, "The task.", required=True)
    flags.DEFINE_enum("scheme", None, (*SCHEMES, REFERENCE), "init_scheme (or flax-model).")
    flags.DEFINE_integer("seed", 0, "Seed.")
    flags.DEFINE_integer("steps", None, "Training steps (default: 1,200 seq2seq, 8,000 MNIST-1D).")
    flags.DEFINE_string("out", None, "The record's path.", required=True)
    flags.DEFINE_string("workdir", None, "The MNIST-1D run's workdir.", required=True)


def main(argv) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.task == "mnist1d" and FLAGS.scheme == REFERENCE:
        raise app.UsageError(f"--scheme={REFERENCE} is a seq2seq model; mnist1d takes {SCHEMES}")
    steps = FLAGS.steps or (SEQ2SEQ_STEPS if FLAGS.task == "seq2seq" else MNIST1D_STEPS)
    run_one(FLAGS.task, FLAGS.scheme, FLAGS.seed, FLAGS.out, FLAGS.workdir, steps)


if __name__ == "__main__":
    define_flags()
    app.run(main)
