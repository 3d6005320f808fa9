r"""The language-model study's records and tables: an LM run's record (collect), CPU time per
step of the larger configs (time), and the README's generated part (render_section).

    python -m experiments.studies.language_models.render collect --workdir=DIR --name=NAME
    python -m experiments.studies.language_models.render time --config=ptb_medium --steps=10
    python -m experiments report language_models   # the README, from results/ only

`collect` reads a workdir (config.json, metrics.jsonl, the checkpoints and, for a finished run,
results.json). For a run that has not finished (status 'partial'), the valid and test metrics
are evaluated here from its best checkpoint over the full splits, state carried, exactly as the
loop's final evaluation does. It adds the parameter count, training tokens/s (tokens / train
time, evaluation passes included), the validation curve per evaluation, commit and hardware.
`time` measures a config's CPU seconds (user + system, all threads) per training step in the
steady state (after compilation) through the real train step, and writes
results/timing_<config>.json; CPU seconds rather than wall time, because the
machines here are shared. `render` builds the tables from those JSON files only: no number is
typed by hand.
"""

from __future__ import annotations

import json
import os
import re
import sys

from absl import app, flags, logging

from experiments.lab import records, tables
from experiments.studies.language_models import grid

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command-line flags (defined only when run as a script, so importing is side-free)."""
    flags.DEFINE_string("workdir", None, "collect: the training workdir.")
    flags.DEFINE_string("name", None, "collect: result name (file OUT/NAME.json).")
    flags.DEFINE_string("out", RESULTS_DIR, "collect, time: directory of the JSON written.")
    flags.DEFINE_bool("force", False, "collect, time: replace an existing result file.")
    flags.DEFINE_string("note", "", "collect: a note shown in the table (e.g. why partial).")
    flags.DEFINE_string("command", "", "collect: the training command of a partial run.")
    flags.DEFINE_string("config", None, "time: a config name under experiments/configs.")
    flags.DEFINE_integer("steps", 10, "time: training steps to time after compilation.")


RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
# Zaremba et al. 2014, Table 1 (valid, test perplexity of the non-regularised/medium/large LSTM).
PAPER = {"ptb_small": (120.7, 114.5), "ptb_medium": (86.2, 82.7), "ptb_large": (82.2, 78.4)}


def collect(
    workdir: str,
    name: str,
    note: str = "",
    command: str = "",
    out: str | None = RESULTS_DIR,
    overwrite: bool = False,
) -> dict:
    """Builds OUT/<name>.json from a workdir (and writes it, unless `out` is None)."""
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


def time_config(name: str, num_steps: int, out: str = RESULTS_DIR, overwrite: bool = False) -> dict:
    """CPU seconds per training step of experiments/configs/<name>.py; writes timing_<name>.json."""
    import importlib
    import resource
    import time

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

    def cpu_s():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    c0, t0 = cpu_s(), time.time()
    for _ in range(num_steps):
        state, sums = train_step(state, next(iterator))
    jax.block_until_ready(sums)
    per_step = (cpu_s() - c0) / num_steps
    record = {
        "config": name,
        "steps_timed": num_steps,
        "cpu_s_per_step": per_step,
        "wall_s_per_step": (time.time() - t0) / num_steps,
        "steps_per_epoch": spe,
        "cpu_s_per_epoch": per_step * spe,
        "epochs": config.train.num_epochs,
        "params": models.count_params(state.params),
        "git_commit": provenance.git_commit(),
        "hardware": provenance.hardware(),
        "command": "python -m experiments.studies.language_models.render time "
        f"--config={name} --steps={num_steps}",
    }
    records.write(os.path.join(out, f"timing_{name}.json"), record, overwrite)
    return record


def load_timings(results_dir: str | None = None) -> list[dict]:
    return list(records.load_all(results_dir or RESULTS_DIR, ("timing_ptb_",)).values())


def load_records(results_dir: str | None = None) -> list[dict]:
    """The LM run records (not side files such as the RNN lr probe), by file name; the
    learning-rate search's runs (diverged ones included) among them."""
    runs = records.load_all(results_dir or RESULTS_DIR, ("ptb_", "shakespeare_")).values()
    return [
        r for r in runs if r.get("task") == "lm" or str(r.get("name", "")).startswith(SEARCH_PREFIX)
    ]


SEARCH_PREFIX = "ptb_lr_"  # the study's group ptb_lr: one epoch per cell and rate
KIM_PREFIX = "ptb_kim_small_"  # experiments/configs/ptb_kim_small.py runs: <variant>_s<seed>
KIM_PAPER_TEST = 97.6  # Kim et al. 2016, LSTM-Word-Small, test perplexity


def _mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return tables.fmt_mean_std(values, digits=2)


def render_search(runs: list[dict]) -> list[str]:
    """The learning-rate search table: validation perplexity after the searched epochs, per
    cell and rate, the chosen (lowest) rate in bold, and the full run at that rate."""
    search = {r["name"]: r for r in runs if r["name"].startswith(SEARCH_PREFIX)}
    if not search:
        return []
    rates = grid.PTB_RATES
    out = [
        "## A fair cell comparison: the same learning-rate search for every cell",
        "",
        f"Each cell of ptb_small trained for {grid.PTB_SEARCH_EPOCHS} epoch at each rate "
        "(`python -m experiments run language_models ptb_lr`; Zaremba's schedule keeps the "
        "rate for the first 4 epochs, so this is the first epoch of the full run); the rate with "
        "the lowest "
        "**validation** perplexity (the test set is not looked at) is then trained for the "
        "full 13 epochs (`python -m experiments run language_models ptb_cells`).",
        "",
        "| cell | " + " | ".join(f"valid ppl, lr {r:g}" for r in rates) + " | chosen | "
        "full run at the chosen lr: valid / test ppl (best ckpt) |",
        "|---|" + "---:|" * len(rates) + "---:|---|",
    ]
    by_name = {r["name"]: r for r in runs}
    for cell in grid.PTB_CELLS:
        cells_runs = [search.get(grid.ptb_search_name(cell, rate)) for rate in rates]
        if not any(cells_runs):
            continue
        scores = [None if r is None else grid.search_score(r) for r in cells_runs]
        runnable = None not in scores and min(scores) < float("inf")
        chosen = rates[scores.index(min(scores))] if runnable else None
        cells_s = []
        for v, rate in zip(scores, rates, strict=True):
            text = "not run" if v is None else "diverged" if v == float("inf") else f"{v:.2f}"
            cells_s.append(f"**{text}**" if rate == chosen else text)
        full = by_name.get(grid.ptb_full_name(cell, chosen)) if chosen is not None else None
        full_s = (
            f"{full['name']}: {full['valid']['perplexity']:.2f} / {full['test']['perplexity']:.2f}"
            if full and full.get("status") == "complete"
            else "not run yet"
        )
        chosen_s = f"{chosen:g}" if chosen is not None else ""
        out.append(f"| {cell} | " + " | ".join(cells_s) + f" | {chosen_s} | {full_s} |")
    commits = sorted({r.get("git_commit", "unknown")[:10] for r in search.values()})
    out += ["", f"Search commits: {', '.join(commits)}.", ""]
    return out


def render_kim(runs: list[dict]) -> list[str]:
    """Kim et al. 2016 Word-Small (seeds) and the regularisation ablation rows."""
    kim = [r for r in runs if r["name"].startswith(KIM_PREFIX)]
    if not kim:
        return []
    out = [
        "## Kim et al. 2016 LSTM-Word-Small and the regularisation ablation",
        "",
        "`experiments/configs/ptb_kim_small.py[:variant=NAME,seed=N]`: 2 x 200 LSTM, 200-dim "
        "embeddings, dropout 0.5 above the first layer and before the softmax, SGD lr 1 halved "
        "when validation perplexity improves by less than 1, 25 epochs, BPTT 35, batch 20, "
        f"clip 5, init +-0.05. Paper: test perplexity {KIM_PAPER_TEST} (target within 2%, <= "
        f"{KIM_PAPER_TEST * 1.02:.1f}). Seconds per epoch: train time / epochs, evaluation "
        "passes included, on the 2-core CPU shared by 2 to 5 runs at a time (compare loosely).",
        "",
        "| variant | seeds | valid ppl (best ckpt) | test ppl (best ckpt) | test vs baseline | "
        "test ppl (last ckpt) | s / epoch | status |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    from experiments.configs import ptb_kim_small

    variants: dict[str, list[dict]] = {name: [] for name in ptb_kim_small.VARIANTS}
    for r in kim:
        variant = r["name"][len(KIM_PREFIX) :].rsplit("_s", 1)[0]
        variants.setdefault(variant, []).append(r)
    base = [r["test"]["perplexity"] for r in variants.get("baseline", [])]
    base_mean = sum(base) / len(base) if base else None
    for variant, rs in variants.items():
        if not rs:
            out.append(f"| {variant} | – | not run | not run | – | – | – | – |")
            continue
        seeds = ", ".join(str(r["config"]["seed"]) for r in rs)
        valid = _mean_std([r["valid"]["perplexity"] for r in rs])
        test = _mean_std([r["test"]["perplexity"] for r in rs])
        last = _mean_std([(r.get("last") or r)["test"]["perplexity"] for r in rs])
        per_epoch = _mean_std([r["train_time_s"] / r["epochs"] for r in rs])
        status = ", ".join(sorted({r["status"] for r in rs}))
        mean_test = sum(r["test"]["perplexity"] for r in rs) / len(rs)
        versus = "–" if base_mean is None else f"{100.0 * (mean_test / base_mean - 1.0):+.1f}%"
        out.append(
            f"| {variant} | {seeds} | {valid} | {test} | {versus} | {last} | {per_epoch} | "
            f"{status} |"
        )
    out.append("")
    for r in kim:
        if r["name"].startswith(KIM_PREFIX + "baseline"):
            ppl = r["test"]["perplexity"]
            out.append(
                f"- {r['name']}: test perplexity {ppl:.2f} vs the paper's {KIM_PAPER_TEST} "
                f"({100.0 * (ppl / KIM_PAPER_TEST - 1.0):+.1f}%; "
                f"{'meets' if ppl <= KIM_PAPER_TEST * 1.02 else 'misses'} the target "
                f"<= {KIM_PAPER_TEST * 1.02:.1f})."
            )
    out.append("")
    return out


def _fmt_time(seconds) -> str:
    seconds = int(round(seconds or 0))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _current_command(command: str) -> str:
    """A recorded sampling command as it runs today (the sampler moved to experiments/tools/)."""
    return command.replace("python -m experiments.sample ", "python -m experiments.tools.sample ")


def render_section(runs: list[dict], results_dir: str | None = None) -> str:
    """The Markdown between the section:lm markers."""
    ptb = [
        r
        for r in runs
        if r["name"].startswith("ptb_") and not r["name"].startswith((SEARCH_PREFIX, KIM_PREFIX))
    ]
    chars = [r for r in runs if r["name"].startswith("shakespeare_")]
    out = [
        "Task `lm` (`train/tasks/lm.py`, data in `train/data/text.py`): embedding -> 2-layer "
        "`cells.Stack` -> softmax, Zaremba's uniform init, SGD with his schedule, the cost summed "
        "over the window and averaged over the batch, state carried across windows. Valid/test: "
        "the best checkpoint over the full splits with the state carried (PTB: eval batch 1, as "
        "TF's reproduction). Rendered by `python -m experiments report language_models` from "
        "`results/*.json`.",
        "",
    ]
    if ptb:
        out += [
            "| run | cell | lr | params | epochs | valid ppl (best ckpt) | test ppl (best ckpt) | "
            "valid / test ppl (last ckpt) | paper valid / test | train tokens/s | train time | "
            "status |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for r in ptb:
            cfg = r["config"]
            paper = next((v for k, v in PAPER.items() if r["name"].startswith(k)), None)
            paper_s = f"{paper[0]} / {paper[1]}" if paper and cfg["model"]["cell"] == "lstm" else ""
            status = r["status"] + (f": {r['note']}" if r.get("note") else "")
            last = r.get("last") or r
            last_s = f"{last['valid']['perplexity']:.2f} / {last['test']['perplexity']:.2f}"
            out.append(
                f"| {r['name']} | {cfg['model']['cell']} | {cfg['optim']['learning_rate']:g} | "
                f"{r['params']:,} | {r['epochs']:.2f} | "
                f"{r['valid']['perplexity']:.2f} | {r['test']['perplexity']:.2f} | {last_s} | "
                f"{paper_s} | "
                f"{r['train_tokens_per_s']:,.0f} | {_fmt_time(r['train_time_s'])} | {status} |"
            )
        out.append("")
        out.append(
            "Train tokens/s and train time include the evaluation passes and whatever share of "
            "the 2-core CPU each run got (runs overlapped, and some were paused or resumed in a "
            "later session): they are not cell speeds (see the speed section for those). Every "
            "PTB run uses its config unchanged except the cell and, where the lr column says "
            "so, the initial learning rate (the schedule's decay is unchanged). Each cell's rate "
            "comes from the same learning-rate search on validation (the table after the "
            "curves); the runs of the GRU and the Elman RNN at the LSTM's rate 1.0 stay in the "
            "table as the record of what that rate does to them (the RNN diverged)."
        )
        out.append("")
        out.append("Validation perplexity after each epoch (the curve behind the table):")
        out.append("")
        for r in ptb:
            curve = ", ".join(f"{e['perplexity']:.1f}" for e in r.get("valid_curve", []))
            out.append(f"- {r['name']}: {curve}")
        out.append("")
        for r in ptb:
            paper = PAPER.get(r["name"].rsplit("_", 1)[0])
            if paper and r["config"]["model"]["cell"] == "lstm" and r["status"] == "complete":
                for label, rec in (("best", r), ("last", r.get("last") or r)):
                    ppl = rec["test"]["perplexity"]
                    out.append(
                        f"- {r['name']}, {label} checkpoint: test perplexity {ppl:.2f} vs the "
                        f"paper's {paper[1]} ({100.0 * (ppl / paper[1] - 1.0):+.1f}%; target: "
                        f"within 2%, <= {paper[1] * 1.02:.1f})."
                    )
                out.append("")
    out += render_search(runs)
    out += render_kim(runs)
    if chars:
        out += [
            "| run | cell | params | steps | valid nats/char | valid bits/char | "
            "train tokens/s | train time | status |",
            "|---|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for r in chars:
            v = r["valid"]
            status = r["status"] + (f": {r['note']}" if r.get("note") else "")
            out.append(
                f"| {r['name']} | {r['config']['model']['cell']} | {r['params']:,} | "
                f"{r['steps']} | {v['loss']:.3f} | {v['bits_per_char']:.3f} | "
                f"{r['train_tokens_per_s']:,.0f} | {_fmt_time(r['train_time_s'])} | {status} |"
            )
        out.append("")
    commands = [
        (r["name"], r["command"])
        for r in runs
        if r.get("command") and not r["name"].startswith(SEARCH_PREFIX)
    ]
    if commands:
        out += ["Commands (as recorded in the result files; rerunning one resumes its workdir):"]
        out.append("")
        out += [f"- {name}: `{cmd}`" for name, cmd in commands]
        out.append("")
    timings = load_timings(results_dir)
    if timings:
        out += [
            "Larger configs on this CPU (not trained to the end): CPU seconds per training step "
            "(user + system over all threads, steady state), from `python -m experiments."
            "studies.language_models.render time`:",
            "",
            "| config | params | CPU s / step | steps / epoch | CPU s / epoch | epochs | "
            "CPU hours, full run |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for t in timings:
            out.append(
                f"| {t['config']} | {t['params']:,} | {t['cpu_s_per_step']:.2f} | "
                f"{t['steps_per_epoch']} | {t['cpu_s_per_epoch']:,.0f} | {t['epochs']} | "
                f"{t['cpu_s_per_epoch'] * t['epochs'] / 3600:.1f} |"
            )
        out.append("")
    for r in runs:
        if r.get("sample") and (
            r["name"].endswith("_lstm") or r["name"].startswith("shakespeare_char_")
        ):
            smp = r["sample"]
            out += [
                f"Sample from `{r['name']}` (`{_current_command(smp['command'])}`):",
                "",
                "```",
                smp["text"].strip("\n"),
                "```",
                "",
            ]
    hardware = sorted(
        {(r["hardware"]["cpu"], r["hardware"]["cpu_count"]) for r in runs if "hardware" in r}
    )
    commits = sorted({r.get("git_commit", "unknown")[:10] for r in runs})
    if runs:
        out.append(
            "Hardware: "
            + "; ".join(f"{cpu}, {n} cores (shared with other jobs)" for cpu, n in hardware)
            + f". Commits: {', '.join(commits)}. Commands: each config's docstring; "
            "`python -m experiments.tools.sample --workdir=DIR --prompt=...` generates text."
        )
    return "\n".join(out)


def main(argv):
    logging.set_verbosity(logging.WARNING)
    if len(argv) != 2 or argv[1] not in ("collect", "time"):
        print(
            "usage: python -m experiments.studies.language_models.render collect|time",
            file=sys.stderr,
        )
        sys.exit(2)
    if argv[1] == "time":
        if not FLAGS.config:
            print("error: time needs --config (e.g. ptb_medium).", file=sys.stderr)
            sys.exit(2)
        print(json.dumps(time_config(FLAGS.config, FLAGS.steps, FLAGS.out, FLAGS.force)))
        return
    if not (FLAGS.workdir and FLAGS.name):
        print("error: collect needs --workdir and --name.", file=sys.stderr)
        sys.exit(2)
    r = collect(FLAGS.workdir, FLAGS.name, FLAGS.note, FLAGS.command, FLAGS.out, FLAGS.force)
    print(json.dumps({k: r[k] for k in ("name", "status", "steps", "valid", "test")}))


if __name__ == "__main__":
    define_flags()
    app.run(main)
