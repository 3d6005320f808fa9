"""A language-model run's record, CPU time per step of a config, and how the LM studies show them.

The three LM studies (this one, kim2016 and shakespeare_char) build their runs' records here:

    python -m experiments.studies.ptb_zaremba.lm_record collect --workdir=DIR --name=NAME --out=DIR
    python -m experiments.studies.ptb_zaremba.lm_record time --config=ptb_medium --steps=10 \
        --json=results/timing_ptb_medium.json

`collect` (each study's `Run(..., collect=...)`) reads a workdir (config.json, metrics.jsonl,
the checkpoints and, for a finished run, results.json). For a run that has not finished (status
'partial'), the valid and test metrics are evaluated here from its best checkpoint over the full
splits, state carried, exactly as the loop's final evaluation does. It adds the parameter count,
training tokens/s (tokens / train time, evaluation passes included), the validation curve per
evaluation, the last checkpoint's metrics where the best is another one, and a sample of text.
`time` measures a config's CPU seconds (user + system, all threads) per training step in the
steady state (after compilation) through the real train step, with `lab.timing`'s timer on a
CPU-time clock: CPU seconds rather than wall time, because the machines here are shared.
"""

from __future__ import annotations

import json
import os
import re
import resource
import sys
import time

from absl import app, flags, logging

from experiments.lab import records, tables, timing

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command-line flags (defined only when run as a script, so importing is side-free)."""
    flags.DEFINE_string("workdir", None, "collect: the training workdir.")
    flags.DEFINE_string("name", None, "collect: result name (file OUT/NAME.json).")
    flags.DEFINE_string("out", None, "collect: directory of the JSON written.")
    flags.DEFINE_string("json", None, "time: the JSON file written.")
    flags.DEFINE_bool("force", False, "collect, time: replace an existing result file.")
    flags.DEFINE_string("note", "", "collect: a note shown in the table (e.g. why partial).")
    flags.DEFINE_string("command", "", "collect: the training command of a partial run.")
    flags.DEFINE_string("config", None, "time: a config name under experiments/configs.")
    flags.DEFINE_integer("steps", 10, "time: training steps to time after compilation.")


def collect(
    workdir: str,
    name: str,
    note: str = "",
    command: str = "",
    out: str | None = None,
    overwrite: bool = False,
) -> dict:
    """The LM record of the run in `workdir` (written to OUT/<name>.json when `out` is given).

    Example: `record = lm_record.collect("workdirs/ptb_zaremba/ptb_small_lstm", "ptb_small_lstm")`.
    """
    import jax

    from train import checkpoint, models, provenance, sharding, steps, trainer

    best = checkpoint.load_trained(workdir, "best")
    config, task = best.config, best.task
    final_path = os.path.join(workdir, "results.json")
    ckpts = checkpoint.Checkpoints(workdir)
    try:
        latest = ckpts.steps()[-1]
        meta = ckpts.read_meta(latest)
    finally:
        ckpts.close()
    mesh = sharding.make_mesh()
    eval_step = steps.make_eval_step(task)

    def evaluate(which_params) -> dict:
        replicated = jax.tree.map(lambda _: sharding.replicated(mesh), which_params)
        p = sharding.to_global(jax.device_get(which_params), replicated)
        return {
            s: trainer.evaluate(task, eval_step, p, s, mesh, config.eval.batch_size)
            for s in task.eval_splits
        }

    if os.path.exists(final_path):
        record = records.read(final_path)
        record["status"] = "complete"
    else:
        splits = evaluate(best.params)
        record = {
            "name": name,
            "task": config.task,
            "status": "partial",
            "steps": latest,
            "num_steps": trainer.num_train_steps(config, task),
            "best_step": meta.get("best_step"),
            **{
                s: {k: v for k, v in m.items() if k not in ("workdir", "split")}
                for s, m in splits.items()
            },
            "train_time_s": meta.get("train_time_s"),
            "git_commit": provenance.git_commit(),
            "git_dirty": provenance.git_dirty(),
            "hardware": provenance.hardware(),
            "config": config.to_dict(),
            "command": command,
        }
    record["name"] = name
    record["note"] = note
    if meta.get("best_step") not in (None, latest):
        # The paper reports the end of training: evaluate the last checkpoint as well.
        last = checkpoint.load_trained(workdir, "latest", task)
        record["last"] = {"step": latest, **evaluate(last.params)}
    record["params"] = models.count_params(best.params)
    tokens_per_step = config.train.batch_size * config.train.seq_len
    record["train_tokens_per_s"] = record["steps"] * tokens_per_step / record["train_time_s"]
    spe = task.steps_per_epoch()
    record["epochs"] = record["steps"] / spe if spe else None
    record["valid_curve"] = records.valid_curve(workdir, ("loss", "perplexity", "bits_per_char"))
    from experiments.tools import sample

    prompt, length = ("ROMEO:", 300) if task.corpus.level == "char" else ("the", 40)
    # The workdir as the run's own command names it (a run made in another checkout is then
    # named as from the repository root, never by this machine's absolute path).
    named = re.search(r"--workdir=(\S+)", record.get("command") or "")
    run_workdir = named.group(1) if named else records.portable_path(workdir)
    text = sample.generate(task, best.params, prompt, length, 0.8, seed=0)
    record["sample"] = {
        "prompt": prompt,
        "temperature": 0.8,
        "seed": 0,
        "text": prompt + text,
        "command": f"python -m experiments.tools.sample --workdir={run_workdir} "
        f"--prompt={prompt!r} "
        f"--length={length} --temperature=0.8 --seed=0",
    }
    if out is not None:
        records.write(os.path.join(out, f"{name}.json"), record, overwrite)
    return record


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process so far, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def time_config(
    name: str, num_steps: int, path: str | None = None, overwrite: bool = False
) -> dict:
    """CPU seconds per training step of experiments/configs/<name>.py (written to `path`).

    Example: `lm_record.time_config("ptb_medium", 10)["cpu_s_per_epoch"]`.
    """
    import importlib

    import jax

    from train import models, optim, provenance, steps, trainer
    from train import state as state_lib
    from train.tasks import registry

    config = importlib.import_module(f"experiments.configs.{name}").get_config()
    task = registry.get_task(config)
    spe = task.steps_per_epoch()
    tx, _ = optim.make_optimizer(config.optim, trainer.num_train_steps(config, task), spe)
    fresh = state_lib.create(task, tx, config.seed, config.train.batch_size)
    state = jax.tree.map(jax.numpy.asarray, jax.device_get(fresh))  # distinct buffers to donate
    train_step = steps.make_train_step(task, tx, config.optim.grad_clip_norm)
    iterator = task.train_iterator()
    state, sums = train_step(state, next(iterator))  # compile
    jax.block_until_ready(sums)
    carried = {"state": state}

    def one_step():
        carried["state"], step_sums = train_step(carried["state"], next(iterator))
        return step_sums

    start = time.time()
    cpu = timing.interleaved({"step": one_step}, repeats=num_steps, clock=_cpu_seconds)["step"]
    per_step = sum(cpu) / num_steps
    record = {
        "config": name,
        "steps_timed": num_steps,
        "cpu_s_per_step": per_step,
        "wall_s_per_step": (time.time() - start) / num_steps,
        "steps_per_epoch": spe,
        "cpu_s_per_epoch": per_step * spe,
        "epochs": config.train.num_epochs,
        "params": models.count_params(carried["state"].params),
        "git_commit": provenance.git_commit(),
        "git_dirty": provenance.git_dirty(),
        "hardware": provenance.hardware(),
        "command": "python -m experiments.studies.ptb_zaremba.lm_record time "
        f"--config={name} --steps={num_steps}",
    }
    if path is not None:
        records.write(path, record, overwrite, allow_dirty=overwrite)
    return record


# How the LM studies show a record.


def fmt_duration(seconds) -> str:
    """'H:MM:SS' of a number of seconds (train time)."""
    seconds = int(round(seconds or 0))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def status(record: dict) -> str:
    """The record's status and, after a colon, the note it was collected with."""
    return record["status"] + (f": {record['note']}" if record.get("note") else "")


def sample_command(record: dict) -> str:
    """The recorded command that regenerates the record's sample (the tool has since moved from
    experiments/sample.py to experiments/tools/sample.py: the command names where it is now)."""
    return record["sample"]["command"].replace(
        "python -m experiments.sample ", "python -m experiments.tools.sample "
    )


def samples(runs: list[dict]) -> str:
    """Each run's sample of text in a code block, under the command that regenerates it."""
    out = []
    for r in runs:
        out += [f"Sample from `{r['name']}` (`{sample_command(r)}`):", "", "```"]
        out += [r["sample"]["text"].strip("\n"), "```", ""]
    return "\n".join(out)


def commands(runs: list[dict]) -> str:
    """The training command of each run, as its record holds it."""
    return "\n".join(f"- {r['name']}: `{r['command']}`" for r in runs if r.get("command"))


def provenance(runs: list[dict]) -> str:
    """Each run's commit, date and train time (summed over its invocations), then the hardware."""
    rows = [
        [r["name"], (r.get("git_commit") or "unknown")[:10], (r.get("date") or "–")[:10],
         fmt_duration(r["train_time_s"]) if r.get("train_time_s") else "–"]
        for r in runs
    ]  # fmt: skip
    table = tables.markdown(["run", "commit", "date", "train time"], rows, align="lllr")
    hardware = sorted(
        {(r["hardware"]["cpu"], r["hardware"]["cpu_count"]) for r in runs if "hardware" in r}
    )
    where = "; ".join(f"{cpu}, {n} cores (shared with other jobs)" for cpu, n in hardware)
    return f"{table}\n\nHardware: {where}."


def timing_table(timings: list[dict], steps_per_run: dict[str, int] | None = None) -> str:
    """CPU seconds per step of each timed config and what a full run costs: `epochs` epochs,
    or the number of steps `steps_per_run` gives for a config trained by steps."""
    rows = []
    for t in timings:
        epochs = t["epochs"]
        steps = (steps_per_run or {}).get(t["config"]) if not epochs else None
        full_s = t["cpu_s_per_step"] * steps if steps else t["cpu_s_per_epoch"] * epochs
        rows.append([
            t["config"], f"{t['params']:,}", f"{t['cpu_s_per_step']:.2f}",
            t["steps_per_epoch"], f"{t['cpu_s_per_epoch']:,.0f}",
            f"{steps:,} steps" if steps else epochs, f"{full_s / 3600:.1f}",
        ])  # fmt: skip
    header = ["config", "params", "CPU s / step", "steps / epoch", "CPU s / epoch", "epochs",
              "CPU hours, full run"]  # fmt: skip
    return tables.markdown(header, rows, align="lrrrrrr")


def main(argv):
    logging.set_verbosity(logging.WARNING)
    if len(argv) != 2 or argv[1] not in ("collect", "time"):
        sys.exit("usage: python -m experiments.studies.ptb_zaremba.lm_record collect|time")
    if argv[1] == "time":
        if not (FLAGS.config and FLAGS.json):
            sys.exit("error: time needs --config (e.g. ptb_medium) and --json (the file written).")
        print(json.dumps(time_config(FLAGS.config, FLAGS.steps, FLAGS.json, FLAGS.force)))
        return
    if not (FLAGS.workdir and FLAGS.name and FLAGS.out):
        sys.exit("error: collect needs --workdir, --name and --out.")
    r = collect(FLAGS.workdir, FLAGS.name, FLAGS.note, FLAGS.command, FLAGS.out, FLAGS.force)
    print(json.dumps({k: r[k] for k in ("name", "status", "steps", "valid", "test")}))


if __name__ == "__main__":
    define_flags()
    app.run(main)
