"""Gated or not, at equal cost: every cell tuned by the same search at the same parameter budget
on tasks that pull them apart, the best configuration rerun with 3 seeds and scored on test once
(README.md has the protocol and the conclusions).

Each run of a group is one search (`python -m experiments search`, experiments/lab/search.py):
its record in results/<task>_<cell>.json holds every trial, the reruns and the fANOVA importance
of each searched field. The search's SQLite file and trial workdirs stay in
workdirs/gating/<task>_<cell>/, so a killed group resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import os

from experiments.lab import Run, records, spaces, tables

# The cells compared (issue 36): the Elman RNN, the LSTM and its coupled (CIFG) and peephole
# forms, the GRU, the minimal gated unit, the parallel-scan minGRU and the xLSTM's sLSTM; the
# IRNN (Le et al. 2015) joins them on the long-range task, where it was proposed.
CELLS = ("rnn", "lstm", "lstm_cifg", "lstm_peephole", "gru", "mgu", "mingru", "slstm")
TRIALS = 12
SEEDS = "0,1,2"

# The learning rate (log-uniform), gradient clipping and the forget-gate bias (the LSTM family
# and the MGU) on the short tasks; on the long-range task chrono initialisation (Tallec &
# Ollivier 2018, T_max = the sequence length: LSTM family and GRU) in the forget bias's place,
# since the two set the same bias and a cell refuses both.
LEARNING_RATE = spaces.LogUniform(1e-4, 3e-2)
CLIP = spaces.Choice(0.0, 1.0)
SEARCH_SPACES = {
    "gating": {
        "optim.learning_rate": LEARNING_RATE,
        "optim.grad_clip_norm": CLIP,
        spaces.CELL_OPTIONS + "forget_bias": spaces.Choice(0.0, 1.0, 2.0),
    },
    "gating_long": lambda config: {
        "optim.learning_rate": LEARNING_RATE,
        "optim.grad_clip_norm": CLIP,
        spaces.CELL_OPTIONS + "chrono_t_max": spaces.Choice(0.0, float(config.data.length)),
    },
}


@dataclasses.dataclass(frozen=True)
class Task:
    """One task of the study: its config, budget, space and what its table reports."""

    title: str
    config: str
    param_budget: int
    space: str
    pruner: str
    metric: str  # the test metric of the table
    higher_is_better: bool = False
    scale: float = 1.0  # the table shows metric * scale
    unit: str = ""
    tokens_per_step: int = 0  # sequence steps in one training batch (batch x length)
    cells: tuple[str, ...] = CELLS
    overrides: tuple[str, ...] = ()

    @property
    def solved_stop(self) -> bool:
        """Whether a run stops at the first validation pass that solves the task."""
        return "stop_when_solved=True" in self.config


TASKS = {
    # Bidirectional with a mean-pooled head: the published flatten head's 480 x 10 weights would
    # outweigh the cells themselves; 2,000 steps of Adam (about 56 epochs), validation every
    # 250 (the pruner's checkpoints).
    "mnist1d": Task(
        "MNIST-1D, 10,000 parameters, 2,000 steps",
        "mnist1d.py:head=mean,num_steps=2000",
        10_000,
        "gating",
        "median",
        "accuracy",
        higher_is_better=True,
        scale=100,
        unit="%",
        tokens_per_step=100 * 40,
    ),
    # T = 400 with a solved-stop; no pruning: these runs sit at the trivial baseline for
    # hundreds of steps before they drop, so a median rule would stop the ones that would
    # learn (the long_range study's curves).
    "adding": Task(
        "Adding problem, T = 400, 6,000 parameters, up to 3,000 steps",
        "adding.py:length=400,num_steps=3000,patience=0,stop_when_solved=True",
        6_000,
        "gating_long",
        "none",
        "mse",
        scale=1000,  # the solved runs' 1e-3 would read 0.00 at two decimals
        unit=" ×10⁻³",
        tokens_per_step=50 * 400,
        cells=(*CELLS, "irnn"),
    ),
    "selective_copy": Task(
        "Selective copying, T = 100, K = 8, 20,000 parameters, up to 2,000 steps",
        "selective_copy.py:length=100,num_steps=2000,patience=0,stop_when_solved=True",
        20_000,
        "gating",
        "none",
        "copy_accuracy",
        higher_is_better=True,
        scale=100,
        unit="%",
        tokens_per_step=50 * (100 + 8),
    ),
    # One layer (no dropout), 32-dim embeddings, 1,000 steps of 32 x 64 characters with the
    # config's warm-up and cosine decay; 5% of the text held out as a test set of its own (the
    # config's default reports the validation text again), 10% validates.
    "shakespeare": Task(
        "Tiny Shakespeare, 1 layer, 50,000 parameters, 1,000 steps",
        "shakespeare_char.py",
        50_000,
        "gating",
        "median",
        "bits_per_char",
        tokens_per_step=32 * 64,
        overrides=(
            "--set=model.num_layers=1",
            "--set=model.dropout=0.0",
            "--set=model.embed_size=32",
            "--set=train.num_steps=1000",
            "--set=train.eval_every=250",
            "--set=train.seq_len=64",
            "--set=data.test_fraction=0.05",
        ),  # fmt: skip
    ),
}


def search_runs(task_name: str) -> list[Run]:
    """One search per cell of the task: TRIALS trials, the best rerun with SEEDS."""
    task = TASKS[task_name]
    runs = []
    for cell in task.cells:
        name = f"{task_name}_{cell}"
        command = (
            "-m", "experiments", "search", task.config, f"--space={task.space}",
            f"--trials={TRIALS}", f"--set=model.cell={cell}",
            f"--set=model.param_budget={task.param_budget}", *task.overrides,
            f"--pruner={task.pruner}", f"--seeds={SEEDS}", "--study=gating",
            f"--name=gating-{name}", "--out={workdir}", "--record={out}",
        )  # fmt: skip
        runs.append(Run(name, command=command))
    return runs


GROUPS = {name: (lambda results_dir, name=name: search_runs(name)) for name in TASKS}


# -- tables ------------------------------------------------------------------------------------
def _scaled(task: Task, stats: dict) -> str:
    return tables.fmt_mean_std([v * task.scale for v in stats["values"]], digits=2) + task.unit


def _tokens_per_sec(task: Task, reruns: list[dict]) -> str:
    """Training throughput of the reruns: sequence steps per second of training time
    (compilation and evaluation excluded), mean over the reruns."""
    rates = [
        r["steps"] * task.tokens_per_step / r["train_time_s"]
        for r in reruns
        if r.get("train_time_s") and r.get("steps")
    ]
    return f"{sum(rates) / len(rates):,.0f}" if rates else "–"


def _trial_counts(trials: list[dict]) -> str:
    """'12 (3 pruned, 1 diverged)': the configurations tried, and how many the pruner stopped
    and how many diverged; a trial interrupted (a signal, a lost worker) and run again from its
    checkpoint counts once, as its retry."""
    retried = _retried(trials)
    diverged = sum(t["state"] == "FAIL" and bool(t.get("diverged")) for t in trials)
    pruned = sum(t["state"] == "PRUNED" for t in trials)
    note = f", {retried} interrupted and retried" if retried else ""
    return f"{len(trials) - retried} ({pruned} pruned, {diverged} diverged{note})"


def _retried(trials: list[dict]) -> int:
    """The trials that failed without diverging (a signal, a lost worker): each was run again
    as a later trial, so it is not a configuration of its own."""
    return sum(t["state"] == "FAIL" and not t.get("diverged") for t in trials)


def _solved(trials: list[dict], reruns: list[dict]) -> str:
    """'6 of 12; 900, 500, –': how many of the configurations tried stopped as solved, and the
    step each rerun solved at ('–': not within the budget). A retried trial counts once."""
    tried = len(trials) - _retried(trials)
    solved = sum(t["state"] == "COMPLETE" and bool(t.get("stopped_early")) for t in trials)
    steps = ", ".join(f"{r['steps']:,}" if r.get("stopped_early") else "–" for r in reruns)
    return f"{solved} of {tried}" + (f"; {steps}" if steps else "")


def task_table(task_name: str, results: dict[str, dict]) -> str:
    """Per cell: the tuned test metric over the reruns, its width and parameters, the best
    trial's fields, the trials pruned / diverged, and the search's and reruns' wall time; on a
    task with a solved-stop, also the trials that solved it and the step each rerun did."""
    task = TASKS[task_name]
    rows = []
    for cell in task.cells:
        record = results.get(f"{task_name}_{cell}")
        if record is None:
            rows.append([f"`{cell}`", "not run yet", *[""] * (6 + task.solved_stop)])
            continue
        best = record["best_trial"]
        test = record["rerun_summary"]["test"].get(task.metric)
        trials = record["trials"]
        if best is None:  # every trial diverged or was pruned: no configuration to rerun
            size = next((t for t in trials if t.get("hidden_size")), {})
            fields = "no trial completed"
        else:
            size = best
            fields = ", ".join(f"{k.rsplit('.', 1)[-1]} {v:.2g}" for k, v in best["params"].items())
        rows.append([
            f"`{cell}`",
            _scaled(task, test) if test else "–",
            *([_solved(trials, record["reruns"])] if task.solved_stop else []),
            f"{size.get('hidden_size', '–')} / "
            + (f"{size['num_params']:,}" if size.get("num_params") else "–"),
            fields,
            _trial_counts(trials),
            _tokens_per_sec(task, record["reruns"]),
            f"{record['search_wall_time_s'] / 60:.1f}",
            f"{record['rerun_wall_time_s'] / 60:.1f}",
        ])  # fmt: skip
    solved = ["solved: trials; reruns at step"] if task.solved_stop else []
    return tables.markdown(
        ["cell", f"test {task.metric} (3 seeds)", *solved, "width / parameters",
         "best trial's fields", "trials", "tokens/s (reruns)", "search min", "reruns min"],
        rows, align="lr" + "r" * len(solved) + "rlrrrr",
    )  # fmt: skip


def importance_table(task_name: str, results: dict[str, dict]) -> str:
    """fANOVA importance of each searched field per cell (the share of the validation
    objective's variance over the completed trials)."""
    task = TASKS[task_name]
    found = {c: results[f"{task_name}_{c}"] for c in task.cells if f"{task_name}_{c}" in results}
    fields = []
    for record in found.values():
        for field in record["search"]["fields"]:
            if field not in fields:
                fields.append(field)
    rows = []
    for cell, record in found.items():
        importance = record["importance"]
        fanova = importance.get("fanova")
        if not fanova:
            note = importance.get("note", "–")
            rows.append([f"`{cell}`", "–", note, *[""] * (len(fields) - 1)])
            continue
        values = (f"{fanova[f]:.2f}" if f in fanova else "n/a" for f in fields)
        rows.append([f"`{cell}`", str(importance["trials"]), *values])
    header = ["cell", "complete trials", *(f"`{f.rsplit('.', 1)[-1]}`" for f in fields)]
    return tables.markdown(header, rows, align="lr" + "r" * len(fields))


def provenance_table(results: dict[str, dict]) -> str:
    """Per task: searches recorded, commits, hardware, and the summed wall time of the trials
    and of the reruns (each search ran as one process on the 2 cores, two searches at a time)."""
    rows = []
    for name, task in TASKS.items():
        found = [results[f"{name}_{c}"] for c in task.cells if f"{name}_{c}" in results]
        commits = sorted({c["git_commit"][:7] + (" (dirty)" if c.get("git_dirty") else "")
                          for r in found for c in r.get("trained_at") or [r]})  # fmt: skip
        cpus = sorted({f"{r['hardware']['cpu']}, {r['hardware']['cpu_count']} cores"
                       for r in found})  # fmt: skip
        trials = sum(r["search_wall_time_s"] for r in found) / 3600
        reruns = sum(r["rerun_wall_time_s"] for r in found) / 3600
        rows.append([
            name, f"{len(found)} / {len(task.cells)}", ", ".join(commits) or "–",
            "; ".join(cpus) or "–", f"{trials:.2f} h" if found else "–",
            f"{reruns:.2f} h" if found else "–",
        ])  # fmt: skip
    return tables.markdown(
        ["task", "searches", "commits", "hardware", "trials' wall time", "reruns' wall time"],
        rows, align="lrllrr",
    )  # fmt: skip


def readme_tables(results_dir: str) -> dict[str, str]:
    results = records.load_all(results_dir)
    out = {"provenance": provenance_table(results)}
    for name in TASKS:
        out[name] = task_table(name, results)
        out[f"{name}_importance"] = importance_table(name, results)
    return out


def figures(results_dir: str, workdirs: str, figures_dir: str) -> list[str]:
    """Per task, the fANOVA importance of each field for each cell (bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = records.load_all(results_dir)
    written = []
    os.makedirs(figures_dir, exist_ok=True)
    for name, task in TASKS.items():
        found = {c: results[f"{name}_{c}"] for c in task.cells if f"{name}_{c}" in results}
        found = {c: r for c, r in found.items() if r["importance"].get("fanova")}
        if not found:
            continue
        fields = sorted({f for r in found.values() for f in r["importance"]["fanova"]})
        fig, ax = plt.subplots(figsize=(9, 3.2))
        width = 0.8 / len(fields)
        for i, field in enumerate(fields):
            values = [found[c]["importance"]["fanova"].get(field, 0.0) for c in found]
            ax.bar([j + i * width for j in range(len(found))], values, width,
                   label=field.rsplit(".", 1)[-1])  # fmt: skip
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(found))], list(found), rotation=15)
        ax.set_ylabel("fANOVA importance")
        ax.set_title(task.title, fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = os.path.join(figures_dir, f"importance_{name}.png")
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written


def headline(results_dir: str) -> dict[str, str]:
    """The best tuned cell of every finished task: every cell's search has its reruns (3 seeds
    each). A task still under way names no best cell (one finished search is not a ranking)."""
    results = records.load_all(results_dir)
    parts = []
    for name, task in TASKS.items():
        scored = {}
        for cell in task.cells:
            record = results.get(f"{name}_{cell}")
            stats = record and (record.get("rerun_summary") or {}).get("test", {}).get(task.metric)
            if stats:
                scored[cell] = stats
        if len(scored) < len(task.cells):
            continue
        pick = max if task.higher_is_better else min
        best = pick(scored, key=lambda c: scored[c]["mean"])
        parts.append(f"{task.title.split(',')[0]} {best} {_scaled(task, scored[best])}")
    if not parts:
        return {"ours": "searches under way", "published": "-"}
    return {
        "ours": "best tuned cell at equal parameters: " + "; ".join(parts),
        "published": "Greff et al. 2017: no variant beats the LSTM clearly",
    }
