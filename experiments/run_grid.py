r"""Runs the forecasting and long-range grids one run at a time, resumably.

    python -m experiments.run_grid ett_S adding ett_M copy      # groups, in this order
    nohup python -m experiments.run_grid all > workdirs/grid.log 2>&1 &

    python -m experiments.run_grid adding --out=/tmp/mine --workdirs=/tmp/mine/workdirs
    python -m experiments.run_grid ptb_lr ptb_cells    # PTB: each cell's rate, then 13 epochs

Each run is `python -m train.main --config=experiments/configs/<file>.py:<fields>
--workdir=WORKDIRS/<name>`. A run whose OUT/<name>.json exists is not run again (the committed
results under experiments/results/ are reference data: rerun with --out=DIR to write elsewhere,
or --force to replace them); an interrupted run resumes from its workdir's last checkpoint
(the loop restores it). When a run ends, its results.json is written to OUT/<name>.json
together with the validation curve from metrics.jsonl and, for the long-range tasks, the
trivial baseline and the first step whose validation metric counts as solved.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time

from absl import app, flags

from experiments.lab import records
from train import provenance

FLAGS = flags.FLAGS
ROOT = records.ROOT

HORIZONS = (24, 48, 168, 336, 720)
ADDING_LENGTHS = (50, 100, 200, 400)
COPY_LENGTHS = (50, 100, 200)


# The long-range study (issue 16): larger budgets per T than the adding/copy groups, no
# patience-based early stopping (these tasks sit at the baseline for thousands of steps before
# they drop) but a stop at the first validation pass that solves the task (loss <= 5% of the
# valid set's trivial baseline; `steps_to_solve` is that step), and the IRNN and
# chrono-initialised LSTM/GRU (chrono_t_max = T) next to the plain cells. Adam 1e-2 as the
# adding/copy groups, but the IRNN at 1e-3: at 1e-2 its ReLU recurrence with W_hh = I diverges
# within a few steps (the leaderboard's adding column).
LONG_RANGE_BUDGETS = {
    "adding": {100: 5000, 200: 8000, 400: 10000, 750: 10000},
    "copy": {100: 5000, 200: 8000, 500: 10000},
}
LONG_RANGE_MODELS = ("rnn", "irnn", "lstm", "lstm_chrono", "gru", "gru_chrono")
LONG_RANGE_LEARNING_RATES = {"irnn": 1e-3, "indrnn": 1e-3}  # ReLU recurrences diverge at 1e-2
LONG_RANGE_CELLS_LENGTH = 400  # `long_range_cells`: every other cell, adding problem at this T


def long_range_arg(
    task: str, length: int, steps: int, model: str, learning_rate: float | None = None
) -> str:
    """The config argument of one long-range run; `model` is a cell or '<cell>_chrono'; the
    rate is the config's default unless `learning_rate` or LONG_RANGE_LEARNING_RATES set it."""
    cell, _, chrono = model.partition("_") if model.endswith("_chrono") else (model, "", "")
    arg = (
        f"{task}.py:length={length},cell={cell},num_steps={steps},patience=0,stop_when_solved=True"
    )
    rate = learning_rate or LONG_RANGE_LEARNING_RATES.get(model)
    if rate:
        arg += f",learning_rate={rate:g}"
    return arg + (f",chrono_t_max={length}" if chrono else "")


def long_range_irnn_runs(rate: float = 1e-4) -> list[tuple[str, str]]:
    """The IRNN's rate check: the adding problem at every T with Adam `rate` (the study's 1e-3
    diverges at T = 400), named long_adding_<T>_irnn_lr<rate>."""
    budgets = LONG_RANGE_BUDGETS["adding"]
    return [
        (
            f"long_adding_{t}_irnn_lr{rate:g}",
            long_range_arg("adding", t, steps, "irnn", learning_rate=rate),
        )
        for t, steps in budgets.items()
    ]


def long_range_runs() -> list[tuple[str, str]]:
    return [
        (f"long_{task}_{t}_{model}", long_range_arg(task, t, steps, model))
        for task, budgets in LONG_RANGE_BUDGETS.items()
        for t, steps in budgets.items()
        for model in LONG_RANGE_MODELS
    ]


def long_range_cell_runs() -> list[tuple[str, str]]:
    """Every registered cell outside the long-range study on the adding problem at T = 400 with
    its budget: trained models for `experiments.gradient_flow` / `gates --models=all`."""
    import cells

    t = LONG_RANGE_CELLS_LENGTH
    steps = LONG_RANGE_BUDGETS["adding"][t]
    return [
        (f"long_adding_{t}_{cell}", long_range_arg("adding", t, steps, cell))
        for cell in cells.names()
        if cell not in LONG_RANGE_MODELS
    ]


# Extra config fields per group (shorter budgets where the shared 2-core machine is too slow).
EXTRA = {"ett_M": ",num_steps=1000", "adding": "", "copy": ""}

# The PTB learning-rate search (ptb_small, Zaremba's schedule): every cell gets the same rates,
# one epoch each (the schedule holds the rate for 4 epochs, so this is the first epoch of the
# full run), and the rate with the lowest validation perplexity is the one trained for 13.
PTB_CELLS = ("lstm", "gru", "rnn")
PTB_RATES = (0.25, 0.5, 1.0)
PTB_SEARCH_EPOCHS = 1


def ptb_search_name(cell: str, rate: float) -> str:
    return f"ptb_lr_{cell}_{rate:g}"


def ptb_full_name(cell: str, rate: float) -> str:
    """The 13-epoch run's result name (lr 1.0 keeps the name of the first runs)."""
    return f"ptb_small_{cell}" if rate == 1.0 else f"ptb_small_{cell}_lr{rate:g}"


def search_score(record: dict) -> float:
    """A search run's validation perplexity; inf for a run that diverged (never chosen)."""
    value = record.get("valid", {}).get("perplexity")
    return value if isinstance(value, float) and math.isfinite(value) else math.inf


def ptb_chosen_rate(cell: str, out_dir: str) -> float:
    """The searched rate with the lowest validation perplexity (`search_score`; ties go to the
    smaller rate); UsageError if the search has not run."""
    scores = {}
    for rate in PTB_RATES:
        path = os.path.join(out_dir, f"{ptb_search_name(cell, rate)}.json")
        if not os.path.exists(path):
            raise app.UsageError(f"{path} missing: run `run_grid ptb_lr` (same --out) first")
        scores[rate] = search_score(records.read(path))
    return min(PTB_RATES, key=scores.get)


# The LTSF protocol's linear baselines (experiments/configs/ltsf.py): seeds per trained model;
# the last-value forecast has nothing random and runs once.
LTSF_HORIZONS = (96, 192, 336, 720)
LTSF_SEEDS = (0, 1, 2)


def ltsf_runs(
    models: tuple[str, ...], features: str, dataset: str = "etth1"
) -> list[tuple[str, str]]:
    prefix = "ltsf" if dataset == "etth1" else f"ltsf_{dataset}"
    runs = []
    for model in models:
        seeds = (0,) if model == "repeat" else LTSF_SEEDS
        for h in LTSF_HORIZONS:
            for seed in seeds:
                suffix = "" if model == "repeat" else f"_s{seed}"
                runs.append(
                    (
                        f"{prefix}_{model}_{features}_{h}{suffix}",
                        f"ltsf.py:dataset={dataset},model={model},features={features},"
                        f"horizon={h},seed={seed}" + (",epochs=1" if model == "repeat" else ""),
                    )
                )
    return runs


def segrnn_runs() -> list[tuple[str, str]]:
    """SegRNN (experiments/configs/segrnn.py) beside the reproduction (the authors' GRU init on
    ETTh1 multivariate, every horizon and seed: `ltsf_segrnn_init`): univariate ETTh1 with the
    GRU, LSTM and minGRU and Exchange-Rate with the GRU, every horizon and seed; and the
    multivariate ablations, where a run takes 40-100 min here: this library's GRU init at
    H = 96 (3 seeds), the LSTM and minGRU in its place at H = 96 and 720, seed 0 (univariate,
    the three cells agree at H = 96-336 and part at 720)."""
    every, seeds = LTSF_HORIZONS, LTSF_SEEDS
    settings = [  # (cell, features, dataset, seeds, horizons)
        ("gru", "M", "etth1", seeds, (96,)),
        ("lstm", "M", "etth1", (0,), (96, 720)),
        ("mingru", "M", "etth1", (0,), (96, 720)),
        ("gru", "S", "etth1", seeds, every),
        ("gru", "M", "exchange", seeds, every),
        ("lstm", "S", "etth1", seeds, every),
        ("mingru", "S", "etth1", seeds, every),
    ]
    runs = []
    for cell, features, dataset, cell_seeds, horizons in settings:
        data = "" if dataset == "etth1" else f"{dataset}_"
        for h in horizons:
            for seed in cell_seeds:
                runs.append(
                    (
                        f"segrnn_{data}{cell}_{features}_{h}_s{seed}",
                        f"segrnn.py:dataset={dataset},cell={cell},features={features},"
                        f"horizon={h},seed={seed}",
                    )
                )
    return runs


def lookback_runs() -> list[tuple[str, str]]:
    """Where SegRNN's gain comes from: NLinear and DLinear at SegRNN's look-back (720) and
    univariate SegRNN at the linear models' (336), ETTh1, 3 seeds; the test targets are the
    same rows at either look-back (the test split starts L rows early)."""
    runs = [
        (
            f"ltsf_{model}_{features}_{h}_L720_s{seed}",
            f"ltsf.py:model={model},features={features},horizon={h},input_len=720,seed={seed}",
        )
        for model, features in (("nlinear", "M"), ("dlinear", "M"), ("nlinear", "S"))
        for h in LTSF_HORIZONS
        for seed in LTSF_SEEDS
    ]
    return runs + [
        (
            f"segrnn_gru_S_{h}_L336_s{seed}",
            f"segrnn.py:features=S,horizon={h},input_len=336,seed={seed}",
        )
        for h in LTSF_HORIZONS
        for seed in LTSF_SEEDS
    ]


def grid(group: str, out_dir: str = records.RESULTS_DIR) -> list[tuple[str, str]]:
    """[(run name, config argument)] of one group; 'group@x' keeps the runs whose name has
    x between underscores or at either end (a whole run name selects that run alone)."""
    if "@" in group:
        group, only = group.split("@", 1)
        return [(n, a) for n, a in grid(group, out_dir) if f"_{only}_" in f"_{n}_"]
    if group == "ltsf_linear":  # ETTh1 multivariate and univariate (OT)
        return ltsf_runs(("repeat", "nlinear", "dlinear", "linear"), "M") + ltsf_runs(
            ("repeat", "nlinear", "dlinear"), "S"
        )
    if group == "ltsf_exchange":  # Exchange-Rate, multivariate (8 currencies)
        return ltsf_runs(("repeat", "nlinear", "dlinear", "linear"), "M", "exchange")
    if group == "ltsf_dlinear_init":  # DLinear's first release (cure-lab/LTSF-Linear 04ffd8d)
        # every weight starting at 1/L, and its Exchange script's H = 720 rate (5e-3, today 5e-4)
        first_lr = [
            (f"ltsf_exchange_dlinear{init}_M_720_lr0.005_s{seed}",
             f"ltsf.py:dataset=exchange,model=dlinear,features=M,horizon=720,seed={seed},"
             f"init={'mean' if init else 'torch'},learning_rate=0.005")
            for init in ("_meaninit", "")
            for seed in LTSF_SEEDS
        ]  # fmt: skip
        return [
            (n.replace("_dlinear_", "_dlinear_meaninit_"), f"{a},init=mean")
            for dataset in ("etth1", "exchange")
            for n, a in ltsf_runs(("dlinear",), "M", dataset)
        ] + first_lr
    if group == "ltsf_segrnn":
        return segrnn_runs()
    if group == "ltsf_lookback":
        return lookback_runs()
    if group == "ltsf_segrnn_init":  # the reproduction: the GRU with the authors' (PyTorch's) init
        return [
            (
                f"segrnn_gru_torchinit_M_{h}_s{seed}",
                f"segrnn.py:horizon={h},torch_init=True,seed={seed}",
            )
            for h in LTSF_HORIZONS
            for seed in LTSF_SEEDS
        ]
    if group == "ltsf":  # the whole LTSF table: the cheap baselines first
        cheap = grid("ltsf_linear") + grid("ltsf_exchange") + grid("ltsf_dlinear_init")
        return cheap + grid("ltsf_segrnn_init") + grid("ltsf_segrnn") + grid("ltsf_lookback")
    if group == "speech":  # FSDD: isolated digits (models x splits) and CTC strings, 3 seeds
        splits = ("speaker_dependent", "speaker_independent")
        # *_cmvn: each recording normalised with its own statistics (data.normalization)
        isolated = [("bilstm", "model=rnn"), ("lstm", "model=rnn,bidirectional=False"),
                    ("cnn", "model=cnn"), ("logistic", "model=logistic"),
                    ("bilstm_cmvn", "model=rnn,normalization=utterance"),
                    ("cnn_cmvn", "model=cnn,normalization=utterance")]  # fmt: skip
        runs = [
            (
                f"spoken_digits_{split}_{label}_s{seed}",
                f"spoken_digits.py:split={split},{arg},seed={seed}",
            )
            for split in splits
            for label, arg in isolated
            for seed in LTSF_SEEDS
        ]
        connected = {"bilstm": "bidirectional=True", "lstm": "bidirectional=False",
                     "bilstm_cmvn": "bidirectional=True,normalization=utterance"}  # fmt: skip
        return runs + [
            (
                f"connected_digits_{split}_{label}_s{seed}",
                f"connected_digits.py:split={split},{arg},seed={seed}",
            )
            for split in splits
            for label, arg in connected.items()
            if label != "bilstm_cmvn" or split == "speaker_independent"  # the speaker mismatch
            for seed in LTSF_SEEDS
        ]
    if group == "mnist1d":  # the published GRU (also with PyTorch's init), then every cell
        import cells

        torch_init = [
            (f"mnist1d_gru_torchinit_s{seed}", f"mnist1d.py:cell=gru,torch_init=True,seed={seed}")
            for seed in LTSF_SEEDS
        ]
        baselines = [  # the published non-recurrent models, in the same harness
            (f"mnist1d_{model}_s{seed}", f"mnist1d.py:model={model},seed={seed}")
            for model in ("cnn", "mlp", "logistic")
            for seed in LTSF_SEEDS
        ]
        every_cell = [
            (f"mnist1d_{cell}_s{seed}", f"mnist1d.py:cell={cell},seed={seed}")
            for cell in ("gru", *(c for c in cells.names() if c != "gru"))
            for seed in LTSF_SEEDS
        ]
        return torch_init + baselines + every_cell
    if group == "ett_linear":  # NLinear in the Informer-protocol table (L = 96, one seed)
        return [
            (
                f"ett_{features}_{h}_nlinear",
                f"ltsf.py:model=nlinear,features={features},horizon={h},input_len=96",
            )
            for features in ("S", "M")
            for h in HORIZONS
        ]
    if group == "ptb_lr":
        return [
            (
                ptb_search_name(cell, rate),
                f"ptb_small.py:cell={cell},learning_rate={rate},num_epochs={PTB_SEARCH_EPOCHS}",
            )
            for cell in PTB_CELLS
            for rate in PTB_RATES
        ]
    if group == "ptb_cells":
        chosen = {cell: ptb_chosen_rate(cell, out_dir) for cell in PTB_CELLS}
        return [
            (ptb_full_name(cell, rate), f"ptb_small.py:cell={cell},learning_rate={rate}")
            for cell, rate in chosen.items()
        ]
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
    if group == "long_range":
        return long_range_runs()
    if group == "long_range_cells":
        return long_range_cell_runs()
    if group == "long_range_irnn":
        return long_range_irnn_runs()
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
        f"unknown group {group!r}; valid: ett_S, ett_M, ett_linear, adding, copy, examples, "
        "seq2seq, ptb_lr, ptb_cells, ltsf, ltsf_linear, ltsf_exchange, ltsf_dlinear_init, "
        "ltsf_segrnn, ltsf_lookback, ltsf_segrnn_init, speech, mnist1d, long_range, "
        "long_range_cells, long_range_irnn, all"
    )


LONG_RANGE_TASKS = ("adding", "copy", "selective_copy")


def run_config(results: dict):
    """A run record's config as a ConfigDict in today's schema (fields added since the run
    take their defaults)."""
    import ml_collections

    from train import config_base
    from train import workdir as workdir_lib

    config = config_base.base_config().to_dict()
    for group, fields in workdir_lib.upgrade(results["config"]).items():
        if isinstance(fields, dict) and isinstance(config.get(group), dict):
            config[group].update(fields)
        else:
            config[group] = fields
    return ml_collections.ConfigDict(config)


def registry_task(results: dict):
    """The task object of a run record (its data and fixed sets rebuilt from the config)."""
    from train.tasks import registry

    return registry.get_task(run_config(results))


def long_range_fields(results: dict) -> dict:
    """The trivial baseline of each fixed set, loss relative to it, solved and steps to solve.

    The sets are regenerated from the run's config (they are deterministic in the seed; schema
    fields added since the run take their defaults); "solved" is `long_range.solved`: loss <=
    5% of the same set's baseline loss.
    """
    task = registry_task(results)
    metric = task.loss_metric
    baseline = {split: task.trivial_baseline(split) for split in ("valid", "test")}
    curve = results.get("valid_curve", [])
    return {
        "baseline": baseline,
        "relative_loss": {
            split: results[split][metric] / baseline[split][metric] for split in ("valid", "test")
        },
        "steps_to_solve": next(
            (e["step"] for e in curve if metric in e and task.is_solved(e, "valid")), None
        ),
        "solved": task.is_solved(results["test"], "test"),
    }


def collect(name: str, workdir: str) -> dict:
    """results.json + the validation curve (+ baseline and steps to solve for long-range)."""
    results = records.read(os.path.join(workdir, "results.json"))
    results["name"] = name
    results["valid_curve"] = records.valid_curve(workdir)
    if results["task"] in LONG_RANGE_TASKS:
        results.update(long_range_fields(results))
    return results


def diverged(name: str, workdir: str, cmd: list[str], wall_time_s: float) -> dict | None:
    """The record of a run stopped by a non-finite loss (train.trainer.NonFiniteError), from
    its log; None for any other failure (which is then retried by the next invocation)."""
    with open(os.path.join(workdir, "stdout.log")) as log:
        lines = [line.strip() for line in log if "non-finite loss" in line]
    if not lines:
        return None
    return {
        "name": name,
        "status": "diverged",
        "error": lines[-1],
        "command": " ".join(["python", *cmd[1:]]),
        "wall_time_s": wall_time_s,
        "git_commit": provenance.git_commit(),
        "hardware": provenance.hardware(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def run(
    name: str,
    config_arg: str,
    out_dir: str,
    workdirs: str,
    force: bool = False,
    overrides: tuple[str, ...] = (),
) -> None:
    """Trains one run (resuming its workdir) and writes OUT/<name>.json; `overrides` are extra
    `--config.x=y` flags."""
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
            f"--config=experiments/configs/{config_arg}",
            f"--workdir={records.portable_path(workdir)}",
            *overrides,
        ]  # fmt: skip
        print(f"[grid] {name}: {' '.join(cmd[1:])}", flush=True)
        start = time.time()
        with open(os.path.join(workdir, "stdout.log"), "a") as log:
            status = subprocess.call(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        print(f"[grid] {name}: exit {status} after {time.time() - start:.0f}s", flush=True)
        if status != 0:
            record = diverged(name, workdir, cmd, time.time() - start)
            if record is not None:  # a result too: the run cannot train at this setting
                records.write(out, record, overwrite=force)
                print(f"[grid] {name}: diverged ({record['error']})", flush=True)
            return
    task = records.read(os.path.join(workdir, "results.json"))["task"]
    if task == "lm" and not name.startswith(("ptb_lr_", "board_")):
        # A full LM run gets the LM record (epochs, tokens/s, last checkpoint, a sample); the
        # search runs and the leaderboard's short runs keep the plain one.
        from experiments import lm_results

        results = lm_results.collect(workdir, name, out=out_dir, overwrite=force)
    else:
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
            "name the groups to run: ett_S ett_M ett_linear adding copy examples seq2seq ptb_lr "
            "ptb_cells ltsf (= ltsf_linear ltsf_exchange ltsf_dlinear_init ltsf_segrnn_init "
            "ltsf_segrnn ltsf_lookback) speech mnist1d long_range long_range_cells "
            "long_range_irnn | all "
            "(GROUP@x keeps the runs whose name has x between underscores; GROUP@<run name> "
            "that run alone)"
        )
    if groups == ["all"]:
        groups = ["ett_S", "adding", "ett_M", "copy", "examples"]
    for group in groups:  # one group at a time: ptb_cells reads what ptb_lr wrote
        for name, config_arg in grid(group, FLAGS.out):
            run(name, config_arg, FLAGS.out, FLAGS.workdirs, FLAGS.force)


if __name__ == "__main__":
    define_flags()
    app.run(main)
