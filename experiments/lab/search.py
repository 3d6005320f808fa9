r"""Hyper-parameter search on Optuna: trials are training runs, the best is rerun with seeds.

    python -m experiments search adding.py:length=400 --space=training --trials=12 \
        [--set model.cell=gru --set model.param_budget=20000] [--metric=loss] \
        [--storage=URL] [--jobs=N] [--out=DIR] [--pruner=median|asha|none] [--seeds=0,1,2]

Each trial draws the space's fields (`experiments/lab/spaces.py`), trains with
`train.trainer.train_and_evaluate` in OUT/trials/<trial number> and reports every validation
pass to Optuna, whose pruner (median: a trial below the median of the others at the same step,
or asha: successive halving) stops hopeless trials there. The objective is the best validation
value of `--metric` (lower wins; default the config's `train.best_metric`, which it also makes
the checkpoint-selection metric); trials never see the test set. When the last trial is done,
the best configuration is trained again with each of `--seeds` and scored on valid and test
once: those reruns, not the trial that won, are the result (a search's best trial is biased
low: it won by its own noise). OUT/search.json (and `--record`) holds every trial, the reruns'
mean and spread, the fANOVA importance of each field (Hutter et al. 2014, the evaluator of
Greff et al. 2017) and provenance.

Storage. Default: an SQLite file, OUT/search.db; a killed search resumes where it stopped when
the same command is given again (each trial's workdir resumes from its last checkpoint). Many
machines: give every machine the same command with `--storage=postgresql://user:pw@host/db`
(Optuna's RDB storage); they join one study and draw trials from it, each trial run once.
`--jobs=N` starts N worker processes on this machine the same way. Trials that a dead worker
left running are failed once their heartbeat is stale and retried with the same fields (Optuna's
`RetryHeartbeatStaleTrialCallback`); a trial stopped by SIGTERM/SIGINT is retried by the next
invocation.

Trials that diverge (non-finite loss) or whose drawn fields the trainer refuses are recorded
and count as done (the setting cannot train; retrying would fail again).
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import warnings

import ml_collections
import optuna

from experiments.lab import records, spaces, tables

# Heartbeats, stale-trial retries and their helpers are marked experimental in Optuna (since
# 2.8-3.0, unchanged since); this module relies on them knowingly (constraints.txt pins Optuna).
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

SEARCHES_DIR = os.path.join("workdirs", "searches")
PRUNERS = ("median", "asha", "none")
SAMPLERS = ("tpe", "random")
HEARTBEAT_S = 30  # a running trial writes a heartbeat this often; stale after 3 missed
MAX_RETRIES = 3  # retries of a trial whose worker died or was stopped
POLL_S = 10  # how often a worker with nothing to start looks at the others' progress


class SearchError(ValueError):
    """Bad input to a search, reported as one line (`python -m experiments` prints it)."""


class _Diverged(Exception):
    """A trial whose loss became non-finite, or whose drawn fields the trainer refused."""


class _Stray(Exception):
    """A rerun trial that no one enqueued (two workers raced for the last queued seed)."""


# -- the base config and its fields ----------------------------------------------------------------
def load_config_module(config_arg: str):
    """The module of '<file>.py[:arg]': a bare file name is looked up in experiments/configs/."""
    path = config_arg.split(":", 1)[0]
    if os.sep not in path:
        path = os.path.join("experiments", "configs", path)
    full = path if os.path.isabs(path) else os.path.join(records.ROOT, path)
    if not path.endswith(".py") or not os.path.isfile(full):
        raise SearchError(f"config {config_arg!r}: no config file {path!r}")
    relative = os.path.relpath(full, records.ROOT)
    if not relative.startswith(".."):  # a module of this repository: import it by its name
        return importlib.import_module(relative[: -len(".py")].replace(os.sep, "."))
    spec = importlib.util.spec_from_file_location("search_config", full)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_config(config_arg: str, module=None) -> ml_collections.ConfigDict:
    """get_config() of '<file>.py[:arg]', as `--config=` gives it to train.main (`module`: its
    `load_config_module`, when the caller has it already)."""
    module = module or load_config_module(config_arg)
    _, _, arg = config_arg.partition(":")
    try:
        return module.get_config(arg) if arg else module.get_config()
    except Exception as e:  # noqa: BLE001 - a config file can raise anything: one line
        raise SearchError(f"config {config_arg!r}: {type(e).__name__}: {e}") from None


def parse_override(text: str) -> tuple[str, object]:
    """'model.cell=gru' -> ('model.cell', 'gru'); values as Python literals where they parse."""
    field, sep, value = text.partition("=")
    if not sep or not field:
        raise SearchError(f"--set {text!r}: give FIELD=VALUE, e.g. --set model.cell=gru")
    try:
        return field, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return field, value


def set_field(config: ml_collections.ConfigDict, field: str, value, source: str) -> None:
    """config.<field> = value; SearchError naming `source` for a field the config lacks or a
    value of the wrong type. Cell options may be added (the trainer checks them per cell)."""
    *groups, key = field.split(".")
    node = config
    for group in groups:
        if not isinstance(node, ml_collections.ConfigDict) or group not in node:
            raise SearchError(f"{source}: the config has no field {field!r}")
        node = node[group]
    if key not in node and field != spaces.CELL_OPTIONS + key:
        raise SearchError(f"{source}: the config has no field {field!r}")
    try:
        with node.unlocked():
            node[key] = value
    except (TypeError, ValueError) as e:
        raise SearchError(f"{source}: {field}={value!r}: {str(e).splitlines()[0]}") from None


# -- the space ---------------------------------------------------------------------------------
def find_space(name: str, config_module, study_module=None):
    """The space called `name`: the study's, the config file's, or a shared one."""
    found = {}
    for module in (study_module, config_module):  # the first definition of a name wins
        for n, s in getattr(module, "SEARCH_SPACES", {}).items():
            found.setdefault(n, s)
    for n, s in spaces.SPACES.items():
        found.setdefault(n, s)
    if name not in found:
        raise SearchError(
            f"--space={name!r}: no such search space; valid: {', '.join(sorted(found))}"
        )
    return found[name]


def applicable_space(space, config) -> tuple[dict, list[str]]:
    """(the fields this config's cell can take, the cell options it cannot take)."""
    from train import models

    fields = space(config) if callable(space) else dict(space)
    options = models.configurable_options(models.cell_class(config))
    skipped = [
        f for f in fields if f.startswith(spaces.CELL_OPTIONS)
        and f[len(spaces.CELL_OPTIONS):] not in options
    ]  # fmt: skip
    return {f: r for f, r in fields.items() if f not in skipped}, skipped


def draw(trial: optuna.Trial, field: str, spec):
    """One value of `spec` for `field`, through Optuna's suggest API."""
    if isinstance(spec, spaces.LogUniform):
        return trial.suggest_float(field, spec.low, spec.high, log=True)
    if isinstance(spec, spaces.Uniform):
        return trial.suggest_float(field, spec.low, spec.high)
    if isinstance(spec, spaces.IntRange):
        return trial.suggest_int(field, spec.low, spec.high)
    if isinstance(spec, spaces.Choice):
        return trial.suggest_categorical(field, list(spec.values))
    raise SearchError(f"search space field {field!r}: {spec!r} is not a range of lab.spaces")


# -- storage -----------------------------------------------------------------------------------
def storage_url(storage: str | None, out: str) -> str:
    """The SQLAlchemy URL: OUT/search.db by default; 'postgresql://' uses psycopg (3)."""
    if not storage:
        return f"sqlite:///{os.path.abspath(os.path.join(out, 'search.db'))}"
    scheme = storage.split("://", 1)[0] if "://" in storage else ""
    if scheme.split("+")[0] not in ("sqlite", "postgresql", "mysql"):
        raise SearchError(
            f"--storage={storage!r}: give an SQLAlchemy database URL, sqlite:///FILE or "
            "postgresql://USER:PASSWORD@HOST[:PORT]/DATABASE"
        )
    if scheme == "postgresql":
        return "postgresql+psycopg" + storage[len("postgresql") :]
    return storage


def shown_url(url: str) -> str:
    """The URL with its password hidden, for records and messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL too broken to parse is shown as given
        return url


def recorded_url(url: str) -> str:
    """`shown_url`, with an SQLite file inside the repository named relative to it
    (`sqlite:///workdirs/...`): a committed record reads the same on every machine."""
    if url.startswith("sqlite:///"):
        return "sqlite:///" + records.portable_path(url[len("sqlite:///") :])
    return shown_url(url)


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage with heartbeats; SearchError (one line) when it cannot connect."""
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    if url.startswith("sqlite:///"):
        os.makedirs(os.path.dirname(url[len("sqlite:///") :]) or ".", exist_ok=True)
    try:
        return optuna.storages.RDBStorage(
            url,
            engine_kwargs={**engine, "pool_pre_ping": True},
            heartbeat_interval=HEARTBEAT_S,
            grace_period=3 * HEARTBEAT_S,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                MAX_RETRIES
            ),
        )
    except Exception as e:  # noqa: BLE001 - SQLAlchemy and driver errors: one line
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SearchError(f"--storage={shown_url(url)}: cannot open it: {reason}") from None


# -- the search --------------------------------------------------------------------------------
@dataclasses.dataclass
class Search:
    """One search: a config, fixed overrides, a named space, a trial budget, a storage."""

    config: str
    space: str
    trials: int
    overrides: tuple[str, ...] = ()
    metric: str | None = None
    storage: str | None = None
    out: str | None = None
    name: str | None = None
    pruner: str = "median"
    sampler: str = "tpe"
    seeds: tuple[int, ...] = (0, 1, 2)
    study_module: object = None  # a study's module, whose SEARCH_SPACES come first

    def __post_init__(self):
        if self.trials < 1:
            raise SearchError(f"--trials={self.trials}: give 1 or more")
        if self.pruner not in PRUNERS:
            raise SearchError(f"--pruner={self.pruner!r}: valid: {', '.join(PRUNERS)}")
        if self.sampler not in SAMPLERS:
            raise SearchError(f"--sampler={self.sampler!r}: valid: {', '.join(SAMPLERS)}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise SearchError(f"--seeds={self.seeds}: give distinct seeds, e.g. 0,1,2")
        config_module = load_config_module(self.config)
        self.base = load_config(self.config, config_module)
        for text in self.overrides:
            field, value = parse_override(text)
            set_field(self.base, field, value, f"--set {text}")
        from train import errors, validate

        try:
            validate.validate(self.base)
        except errors.ConfigError as e:
            raise SearchError(f"{self.config} with {list(self.overrides)}: {e}") from None
        space = find_space(self.space, config_module, self.study_module)
        self.fields, self.not_applicable = applicable_space(space, self.base)
        for field in self.fields:  # a misspelt field fails here, not in every trial
            set_field(self.base.copy_and_resolve_references(), field, None, f"--space={self.space}")
        self.metric = self.metric or self.base.train.best_metric
        self._check_metric()
        with self.base.unlocked():
            self.base.train.best_metric = self.metric  # the checkpoint the objective reads
        self.name = self.name or self._default_name()
        self.out = self.out or os.path.join(SEARCHES_DIR, self.name)
        self.url = storage_url(self.storage, self.out)

    def _default_name(self) -> str:
        """'<config stem>-<space>-<hash of the command's search arguments>': the same command
        on any machine names the same study."""
        key = json.dumps([self.config, sorted(self.overrides), self.space, self.metric])
        stem = os.path.basename(self.config.split(":", 1)[0])[: -len(".py")]
        return f"{stem}-{self.space}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"

    def _check_metric(self) -> None:
        from train import trainer

        names = trainer.validation_metric_names(self.base)
        if names is not None and self.metric not in names:
            raise SearchError(
                f"--metric={self.metric!r}: task {self.base.task!r} reports no such validation "
                f"metric; valid: {', '.join(sorted(names))}"
            )

    def describe(self) -> dict:
        """What defines the search (stored in the study: a machine joining it with another
        search is refused)."""
        return {
            "config": self.config,
            "overrides": sorted(self.overrides),
            "space": self.space,
            "fields": spaces.describe(self.fields),
            "metric": self.metric,
            "trials": self.trials,
            "pruner": self.pruner,
            "sampler": self.sampler,
            "seeds": list(self.seeds),
        }

    # -- the Optuna study ------------------------------------------------------------------
    def open(self, worker: str = "") -> optuna.Study:
        """Creates or joins the study; SearchError when the stored one is another search."""
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = open_storage(self.url)
        # Workers on one machine start at once: each draws its own random sequence.
        seed = int(hashlib.sha256(f"{socket.gethostname()}-{os.getpid()}-{worker}-{time.time()}"
                                  .encode()).hexdigest()[:8], 16)  # fmt: skip
        sampler = (
            optuna.samplers.TPESampler(seed=seed)
            if self.sampler == "tpe"
            else optuna.samplers.RandomSampler(seed=seed)
        )
        pruner = {
            "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=4),
            "asha": lambda: optuna.pruners.SuccessiveHalvingPruner(),
            "none": lambda: optuna.pruners.NopPruner(),
        }[self.pruner]()
        study = optuna.create_study(
            study_name=self.name,
            storage=storage,
            sampler=sampler,
            pruner=pruner,
            direction="minimize",
            load_if_exists=True,
        )
        stored = study.user_attrs.get("search")
        mine = self.describe()
        if stored is None:
            study.set_user_attr("search", mine)
        elif {k: v for k, v in stored.items() if k != "trials"} != {
            k: v for k, v in mine.items() if k != "trials"
        }:
            raise SearchError(
                f"study {self.name!r} in {shown_url(self.url)} is another search "
                f"({stored['config']} {stored['overrides']} --space={stored['space']}); give "
                "--name to start a new one"
            )
        return study

    def run(self, jobs: int = 1, worker: str = "") -> dict | None:
        """Runs this process's share of the trials and the reruns; with jobs > 1, starts
        `jobs` worker processes instead. Returns the record when the search is complete."""
        os.makedirs(self.out, exist_ok=True)
        study = self.open(worker)
        if not worker:
            _retry_stopped(study)
        if jobs > 1:
            return self._run_workers(jobs)
        while True:  # trials until none is left to start, then wait for the others' to end
            self._search(study)
            if self._complete(study):
                break
            if not self._counts(study)[2]:  # nothing queued (a retry would be): wait
                print(f"search {self.name}: waiting for trials running in other workers",
                      flush=True)  # fmt: skip
                time.sleep(POLL_S)
        if _best(study) is None:
            print(f"search {self.name}: no trial completed (each diverged or was pruned); "
                  "nothing to rerun", flush=True)  # fmt: skip
        else:
            self._rerun_best(study)
        if worker:
            return None
        return self.record(study)

    def command_args(self, hide_password: bool = False) -> list[str]:
        """This search as `python -m experiments` arguments (what each worker runs; recorded
        with the storage's password hidden)."""
        args = ["search", self.config, f"--space={self.space}", f"--trials={self.trials}"]
        args += [f"--set={text}" for text in self.overrides]
        args += [f"--metric={self.metric}", f"--out={self.out}", f"--name={self.name}"]
        args += [f"--pruner={self.pruner}", f"--sampler={self.sampler}"]
        args += ["--seeds=" + ",".join(map(str, self.seeds))]
        if self.storage:
            storage = shown_url(self.storage) if hide_password else self.storage
            args.append(f"--storage={storage}")
        if self.study_module is not None:
            args.append(f"--study={self.study_module.__name__.split('.')[-2]}")
        return args

    def _run_workers(self, jobs: int) -> dict | None:
        argv = self.command_args()
        logs, procs = [], []
        for i in range(jobs):
            log = os.path.join(self.out, f"worker{i}.log")
            logs.append(log)
            with open(log, "a") as f:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "experiments", *argv, "--jobs=1", f"--worker=w{i}"],
                    cwd=records.ROOT, stdout=f, stderr=subprocess.STDOUT,
                ))  # fmt: skip
        print(f"search {self.name}: {jobs} workers (logs: {', '.join(logs)})", flush=True)
        codes = [p.wait() for p in procs]
        if any(codes):
            raise SearchError(f"workers exited with {codes}; their logs say why: {logs}")
        study = self.open()
        if not self._complete(study):
            return None
        if _best(study) is None:
            return self.record(study)
        return self.record(study) if self._reruns_done(self._reruns_study(study)[0]) else None

    # -- trials --------------------------------------------------------------------------------
    def _counts(self, study: optuna.Study) -> tuple[int, int, int]:
        """(trials done, running, waiting); diverged and refused trials count as done."""
        done = running = waiting = 0
        for t in study.get_trials(deepcopy=False):
            if _ended(t):
                done += 1
            elif t.state == optuna.trial.TrialState.RUNNING:
                running += 1
            elif t.state == optuna.trial.TrialState.WAITING:
                waiting += 1
        return done, running, waiting

    def _search(self, study: optuna.Study) -> None:
        while True:
            optuna.storages.fail_stale_trials(study)
            done, running, waiting = self._counts(study)
            if not waiting and done + running >= self.trials:
                return
            study.optimize(self._objective, n_trials=1, catch=(_Diverged,))

    def _complete(self, study: optuna.Study) -> bool:
        optuna.storages.fail_stale_trials(study)
        done, running, waiting = self._counts(study)
        return done >= self.trials and not running and not waiting

    def _train(self, trial: optuna.Trial, config, workdir: str, final_splits, prune: bool):
        """train_and_evaluate with Optuna's reports; records the run's facts on the trial."""
        from train import errors, trainer

        def report(step: int, valid: dict[str, float]) -> None:
            trial.report(valid[self.metric], step)
            if prune and trial.should_prune():
                trial.set_user_attr("pruned_at_step", step)
                raise optuna.TrialPruned(f"pruned at step {step}")

        trial.set_user_attr("workdir", records.portable_path(workdir))
        try:
            results = trainer.train_and_evaluate(
                config, workdir, on_validation=report, final_splits=final_splits
            )
        except (trainer.NonFiniteError, errors.ConfigError) as e:
            trial.set_user_attr("diverged", records.portable_text(str(e).splitlines()[0]))
            if isinstance(e, trainer.NonFiniteError) and config.model.get("param_budget", 0):
                # the width the budget chose (set on the config before training began)
                trial.set_user_attr("hidden_size", config.model.hidden_size)
            raise _Diverged(str(e)) from None
        except trainer.Preempted:
            trial.set_user_attr("stopped", True)
            raise
        for key in ("steps", "best_step", "stopped_early", "wall_time_s", "train_time_s"):
            trial.set_user_attr(key, results[key])
        trial.set_user_attr("num_params", results["params"])
        trial.set_user_attr("git_commit", results["git_commit"])
        trial.set_user_attr("git_dirty", results["git_dirty"])
        trial.set_user_attr("hidden_size", results["config"]["model"]["hidden_size"])
        for split in ("valid", "test"):
            if split in results:
                trial.set_user_attr(split, results[split])
        return results

    def trial_config(self, params: dict, seed: int | None = None) -> ml_collections.ConfigDict:
        config = self.base.copy_and_resolve_references()
        for field, value in params.items():
            if field in self.fields:
                set_field(config, field, value, f"--space={self.space}")
        if seed is not None:
            config.seed = seed
        return config

    def _objective(self, trial: optuna.Trial) -> float:
        params = {field: draw(trial, field, spec) for field, spec in self.fields.items()}
        config = self.trial_config(params)
        origin = optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(
            _frozen(trial)
        )
        number = trial.number if origin is None else origin
        config.name = f"{self.name}/trial{number}"
        workdir = os.path.join(self.out, "trials", f"{number:04d}")
        results = self._train(trial, config, workdir, ("valid",), prune=True)
        return results["valid"][self.metric]

    # -- the reruns of the best configuration ----------------------------------------------
    def _reruns_study(self, study: optuna.Study) -> tuple[optuna.Study, optuna.trial.FrozenTrial]:
        best = study.best_trial
        reruns = optuna.create_study(
            study_name=f"{self.name}:best{best.number}:seeds",
            storage=study._storage,
            sampler=optuna.samplers.RandomSampler(),
            direction="minimize",
            load_if_exists=True,
        )
        return reruns, best

    def _rerun_best(self, study: optuna.Study) -> None:
        reruns, best = self._reruns_study(study)
        for seed in self.seeds:  # every worker enqueues; the storage keeps one of each
            reruns.enqueue_trial({"seed": seed}, user_attrs={"best_trial": best.number},
                                 skip_if_exists=True)  # fmt: skip
        # A rerun that failed for another reason than diverging (a crash, a signal) runs again.
        _retry_stopped(reruns, lambda t: "best_trial" in t.user_attrs and not t.user_attrs.get(
            "diverged"))  # fmt: skip
        while not self._reruns_done(reruns):  # every worker takes queued seeds until none is
            optuna.storages.fail_stale_trials(reruns)  # left, then waits for the others' reruns
            states = [t.state for t in reruns.get_trials(deepcopy=False)]
            if optuna.trial.TrialState.WAITING in states:
                reruns.optimize(
                    lambda trial: self._rerun(trial, best), n_trials=1, catch=(_Stray, _Diverged)
                )
            elif optuna.trial.TrialState.RUNNING in states:
                time.sleep(POLL_S)
            else:
                raise SearchError(
                    f"search {self.name}: a rerun of the best configuration failed; its log "
                    "says why; the same command runs it again"
                )

    def _rerun(self, trial: optuna.Trial, best: optuna.trial.FrozenTrial) -> float:
        if "best_trial" not in trial.user_attrs:
            raise _Stray("another worker took the last queued seed")
        seed = trial.suggest_categorical("seed", list(self.seeds))
        config = self.trial_config(best.params, seed=seed)
        config.name = f"{self.name}/best{best.number}_seed{seed}"
        workdir = os.path.join(self.out, "reruns", f"best{best.number}_seed{seed}")
        results = self._train(trial, config, workdir, None, prune=False)
        return results["valid"][self.metric]

    def _reruns_done(self, reruns: optuna.Study) -> bool:
        """Whether every seed's rerun has ended (a rerun is never pruned)."""
        done = {
            t.params.get("seed") for t in reruns.get_trials(deepcopy=False)
            if t.user_attrs.get("best_trial") is not None and _ended(t)
        }  # fmt: skip
        return set(self.seeds) <= done

    # -- the record ------------------------------------------------------------------------
    def record(self, study: optuna.Study) -> dict:
        """The search's record (OUT/search.json): trials, reruns, importance, provenance."""
        trials = [_with_train_time(_trial_record(t)) for t in study.get_trials(deepcopy=False)]
        best, seeds = _best(study), []
        if best is not None:
            reruns = self._reruns_study(study)[0]
            seeds = [
                _with_train_time(_trial_record(t)) for t in reruns.get_trials(deepcopy=False)
                if t.user_attrs.get("best_trial") is not None
                and t.state.name in ("COMPLETE", "FAIL")
            ]  # fmt: skip
        summary = {}
        for split in ("valid", "test"):
            values = [s[split] for s in seeds if isinstance(s.get(split), dict)]
            summary[split] = {
                key: _stats([v[key] for v in values]) for key in (values[0] if values else {})
            }
        wall = sum(t.get("duration_s") or 0.0 for t in trials)
        record = {
            "name": self.name,
            "search": self.describe(),
            "not_applicable": self.not_applicable,
            "storage": recorded_url(self.url),
            "trials": trials,
            "best_trial": _trial_record(best) if best is not None else None,
            "reruns": seeds,
            "rerun_summary": summary,
            "importance": importance(study),
            "trained_at": _trained_at(trials + seeds),
            "search_wall_time_s": wall,
            "rerun_wall_time_s": sum(s.get("duration_s") or 0.0 for s in seeds),
            **records.provenance(),
            "command": "python -m experiments " + " ".join(self.command_args(hide_password=True)),
        }
        path = os.path.join(self.out, "search.json")
        records.write(path, record, overwrite=True, allow_dirty=True)
        return record


def _best(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The best complete trial, or None where none completed (every trial diverged or was
    pruned: a result of the search, recorded with no reruns)."""
    if not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        return None
    return study.best_trial


def _ended(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether a trial is over for good: complete, pruned, or failed by diverging (or by a
    refused draw), which a retry would repeat; other failures are retried."""
    state = optuna.trial.TrialState
    return trial.state in (state.COMPLETE, state.PRUNED) or (
        trial.state == state.FAIL and bool(trial.user_attrs.get("diverged"))
    )


def _frozen(trial: optuna.Trial) -> optuna.trial.FrozenTrial:
    """The stored form of a running trial (its system attributes say whether it is a retry)."""
    running = trial.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    return next(t for t in running if t.number == trial.number)


def _with_train_time(trial: dict) -> dict:
    """A trial's record with its training time (without compilation and evaluation) and the
    commit it trained at, read from its results.json where a search recorded before those
    attributes existed left them out."""
    path = os.path.join(records.ROOT, trial.get("workdir", ""), "results.json")
    missing = [k for k in ("train_time_s", "git_commit", "git_dirty") if k not in trial]
    if missing and trial.get("workdir") and os.path.exists(path):
        results = records.read(path)
        trial.update({k: results[k] for k in missing if k in results})
    return trial


def _trained_at(trials: list[dict]) -> list[dict]:
    """The commits the trials and reruns trained at (a record is written later, perhaps at
    another commit: its own git_commit says which code wrote it)."""
    seen = {(t["git_commit"], t.get("git_dirty")) for t in trials if t.get("git_commit")}
    return [{"git_commit": c, "git_dirty": d} for c, d in sorted(seen, key=str)]


def _stats(values: list[float]) -> dict:
    mean, std = tables.mean_std(values)
    return {"values": values, "mean": mean, "std": std, "n": len(values)}


def _trial_record(trial: optuna.trial.FrozenTrial) -> dict:
    attrs = dict(trial.user_attrs)
    out = {
        "number": trial.number,
        "state": trial.state.name,
        "params": dict(trial.params),
        "value": trial.value,
        "last_reported_step": max(trial.intermediate_values, default=None),
        # The trial's whole cost as Optuna timed it (set-up, compilation, evaluation included;
        # pruned and failed trials too).
        "duration_s": trial.duration.total_seconds() if trial.duration else None,
    }
    out.update({k: v for k, v in attrs.items() if k != "best_trial"})
    return out


def importance(study: optuna.Study) -> dict:
    """fANOVA importance of each searched field over the completed trials (Optuna's
    FanovaImportanceEvaluator: the share of the objective's variance a random forest assigns
    to each field alone), or the reason there is none."""
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if len(complete) < 4:
        return {"note": f"{len(complete)} completed trials: too few for fANOVA (4 or more)"}
    try:
        values = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0)
        )
    except (ValueError, RuntimeError) as e:
        return {"note": f"fANOVA failed: {str(e).splitlines()[0]}"}
    return {"fanova": {k: float(v) for k, v in values.items()}, "trials": len(complete)}


def _retry_stopped(study: optuna.Study, failed=lambda t: t.user_attrs.get("stopped")) -> None:
    """Re-queues the failed trials `failed` picks (default: those a SIGTERM/SIGINT stopped)
    that nothing retried yet."""
    trials = study.get_trials(deepcopy=False)
    retried = {
        n for t in trials
        for n in optuna.storages.RetryHeartbeatStaleTrialCallback.retry_history(t)
    }  # fmt: skip
    callback = optuna.storages.RetryHeartbeatStaleTrialCallback(MAX_RETRIES)
    for t in trials:
        if t.state.name == "FAIL" and failed(t) and t.number not in retried:
            callback(study, t)


def summary_lines(record: dict) -> list[str]:
    """A few lines for the console: the best trial and the reruns' mean ± std."""
    best, metric, trials = record["best_trial"], record["search"]["metric"], record["trials"]
    lines = [
        f"search {record['name']}: {len(trials)} trials "
        f"({sum(t['state'] == 'PRUNED' for t in trials)} pruned, "
        f"{sum(t['state'] == 'FAIL' for t in trials)} failed), "
        f"{record['search_wall_time_s'] / 60:.1f} min of trials",
    ]
    if best is None:
        lines.append("no trial completed: no best configuration, no reruns")
    else:
        lines.append(
            f"best trial {best['number']}: valid {metric} {best['value']:.4g} with {best['params']}"
        )
    for split in ("valid", "test"):
        stats = record["rerun_summary"].get(split, {}).get(metric)
        if stats:
            shown = tables.fmt_mean_std(stats["values"], digits=4)
            lines.append(f"reruns, {split} {metric}: {shown} over {stats['n']} seeds")
    fanova = record["importance"].get("fanova")
    if fanova:
        lines.append("fANOVA importance: " + ", ".join(f"{k} {v:.2f}" for k, v in fanova.items()))
    return lines
