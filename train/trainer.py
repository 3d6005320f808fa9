"""`train_and_evaluate(config, workdir)`: the training loop.

    validate -> lock the workdir -> build task/optimizer/state -> restore the latest checkpoint
    -> for step in [start, num_steps): train_step; log / eval / checkpoint when due
    -> evaluate the best checkpoint on valid and test -> DIR/results.json

Exactness across interruptions: the checkpoint holds the TrainState (params, optimizer state,
step, rng, carry) and, beside it, the data-iterator position, the best-metric bookkeeping and
the per-step train sums not yet logged. A run killed at any moment and restarted with the same
command therefore produces the same parameters and metrics (bitwise, on the same machine) as a
run that was never interrupted. Non-finite losses are caught before any log, evaluation or
checkpoint, so no checkpoint ever holds a diverged state.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import signal
import threading
import time
from collections.abc import Callable

import jax
import ml_collections
import numpy as np
from jax.experimental import multihost_utils

from train import (
    budget,
    checkpoint,
    errors,
    metrics,
    models,
    optim,
    provenance,
    resources,
    sharding,
    steps,
    time_budget,
    validate,
)
from train import state as state_lib
from train import workdir as workdir_lib
from train.tasks import base


class NonFiniteError(RuntimeError):
    """The training loss or gradient became NaN/Inf; the run stopped before saving it."""


class Preempted(Exception):
    """SIGTERM/SIGINT arrived; the current step was saved. Rerun the same command to resume."""

    def __init__(self, signum: int, step: int):
        super().__init__(
            f"received {signal.Signals(signum).name}: saved step {step} and stopped; "
            "rerun the same command to resume."
        )
        self.signum = signum


# -- set-up helpers ------------------------------------------------------------------------------
def num_train_steps(config: ml_collections.ConfigDict, task: base.Task) -> int:
    """num_epochs * steps_per_epoch when num_epochs > 0, else num_steps."""
    if config.train.num_epochs > 0:
        spe = task.steps_per_epoch()
        if not spe:
            raise errors.ConfigError(
                f"config.train.num_epochs > 0 needs a task with epochs; task {config.task!r} has "
                "none: set num_epochs = 0 and use num_steps."
            )
        return config.train.num_epochs * spe
    return config.train.num_steps


class _StopFlag:
    """Catches SIGTERM/SIGINT (main thread only) so the loop can save and stop cleanly."""

    def __init__(self):
        self.signum = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.signum = signum
        # A second Ctrl-C interrupts immediately.
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def agreed(self) -> int | None:
        """The signal number if any process was signalled (collective when multi-process)."""
        if jax.process_count() == 1:
            return self.signum
        got = multihost_utils.process_allgather(np.int32(self.signum or 0))
        got = int(np.max(got))
        return got or None

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


# -- evaluation ----------------------------------------------------------------------------------
def evaluate(task, eval_step, params, split: str, mesh, batch_size: int) -> dict[str, float]:
    """One pass over `split`; the carry flows across batches from init_carry(batch_size)."""
    carry = task.init_carry(batch_size)
    if carry is not None:
        carry = sharding.to_global(carry, sharding.leading_axis_sharding(mesh, carry))
    per_batch = []
    for batch in task.eval_batches(split):
        batch = sharding.to_global(batch, sharding.leading_axis_sharding(mesh, batch))
        carry, sums = eval_step(params, carry, batch)
        per_batch.append(sums)
    return _summarize(task, _total(jax.device_get(per_batch)))


def _total(host_sums: list[dict]) -> dict[str, float]:
    """Adds per-batch sums in float64, in order (deterministic)."""
    totals: dict[str, float] = {}
    for sums in host_sums:
        for k, v in sums.items():
            totals[k] = totals.get(k, 0.0) + float(v)
    return totals


def _summarize(task, totals: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in task.summarize(totals).items()}


# -- the loop ------------------------------------------------------------------------------------
def train_and_evaluate(
    config: ml_collections.ConfigDict,
    workdir: str,
    *,
    on_validation: Callable[[int, dict[str, float]], None] | None = None,
    final_splits: tuple[str, ...] | None = None,
) -> dict:
    """Trains per `config` in `workdir` (resuming from its latest checkpoint) and evaluates.

    Returns the results dict also written to DIR/results.json. Raises ConfigError for invalid
    input (before any compute), NonFiniteError when the loss diverges, Preempted after saving
    on SIGTERM/SIGINT.

    on_validation(step, metrics) is called after each validation pass, once its checkpoint is
    saved; an exception it raises ends the run there (a hyper-parameter search stops a hopeless
    trial this way: experiments/lab/search.py). final_splits: the splits the best checkpoint is
    evaluated on at the end (default: all of the task's; a search trial names ('valid',) so
    the test set is scored only by the reruns of the chosen configuration).
    With config.model.param_budget > 0 the width is chosen first (train/budget.py) and
    config.model.hidden_size is set to it.
    """
    start_time = time.time()
    task_cls = validate.validate(config)
    chosen_width = budget.apply(config, task_cls)
    validate.check_workdir(workdir)
    primary = jax.process_index() == 0
    lock = checkpoint.WorkdirLock(workdir)
    if primary:
        lock.acquire()
    try:
        run = _Run(
            config,
            workdir,
            task_cls,
            primary,
            start_time,
            chosen_width=chosen_width,
            on_validation=on_validation,
            final_splits=final_splits,
        )
        return _train_and_evaluate(run)
    finally:
        lock.release()


def _train_and_evaluate(run: _Run) -> dict:
    try:
        run.train()
        return run.finish()
    finally:
        run.close()


def _fresh_meta() -> dict:
    """The bookkeeping saved beside the TrainState (JSON), for a run at step 0."""
    return {
        "step": 0,
        "best_value": None,  # lowest validation best_metric so far
        "best_step": None,  # the step it was reached at (that checkpoint is kept)
        "evals_since_best": 0,  # for early stopping
        "stopped_early": False,
        "last_valid": None,  # [step, best_metric value] of the latest validation pass
        "pending": [],  # per-step train sums not yet logged (bitwise-equal logs on resume)
        "plateau_previous": None,  # schedule 'plateau': the last validation plateau_metric
        "nt_history": [],  # NT-ASGD: every validation best_metric value so far
        "nt_asgd_step": None,  # NT-ASGD: the step averaging started at
        "train_time_s": 0.0,  # summed over invocations, up to the last checkpoint
        "wall_time_s": 0.0,
        # train.time_budget_minutes (train/time_budget.py): the plan, and the seconds counted
        # against the budget (training steps), spent on compiling, and beside (eval, saving)
        "budget_plan": None,
        "budget_train_s": 0.0,
        "budget_compile_s": 0.0,
        "budget_side_s": 0.0,
        "stopped_at_budget": False,
    }


def _metric_names(task, abstract_params, batch, batch_size: int) -> set[str] | None:
    """The metrics an evaluation pass reports, from a trace of `task.loss` on `batch` (nothing
    computed); None when the trace fails."""
    try:

        def eval_sums(params):  # the carry traced too: never allocated before the memory check
            return task.loss(params, task.init_carry(batch_size), batch, None, False)[1][1]

        sums = jax.eval_shape(eval_sums, abstract_params)
        return set(task.summarize({k: 1.0 for k in sums}))
    except Exception:  # noqa: BLE001 - a best-effort check
        return None


def validation_metric_names(config: ml_collections.ConfigDict) -> set[str] | None:
    """The metrics a validation pass of `config` would report (None when they cannot be traced);
    for checking a metric name before any training (experiments/lab/search.py)."""
    task_cls = validate.validate(config)
    task = task_cls(config)
    batch = next(iter(task.eval_batches("valid")), None)
    if batch is None:
        return None
    abstract = state_lib.abstract(config, task)
    return _metric_names(task, abstract.params, batch, config.eval.batch_size)


def _check_eval_splits(config, task, abstract) -> None:
    """Data-dependent evaluation checks, before step 1 (not after hours of training).

    Every split yields its first batch (a task refuses an eval.batch_size its split cannot
    fill here), and the best_metric must be one the task reports (best effort for the latter).
    """
    first = {}
    for split in task.eval_splits:
        first[split] = next(iter(task.eval_batches(split)), None)
        if first[split] is None:
            raise errors.ConfigError(
                f"the {split!r} split of task {config.task!r} has no evaluation batch with "
                f"config.eval.batch_size={config.eval.batch_size}; lower it or add data."
            )
    names = _metric_names(task, abstract, first["valid"], config.eval.batch_size)
    if names is None:  # the check is a convenience; the loop checks again
        return
    if config.train.best_metric not in names:
        raise errors.ConfigError(
            f"config.train.best_metric={config.train.best_metric!r} is not a validation metric "
            f"of task {config.task!r}; valid: {', '.join(sorted(names))}."
        )
    if config.optim.schedule == "plateau" and config.optim.plateau_metric not in names:
        raise errors.ConfigError(
            f"config.optim.plateau_metric={config.optim.plateau_metric!r} is not a validation "
            f"metric of task {config.task!r}; valid: {', '.join(sorted(names))}."
        )


class _Run:
    """One invocation of the loop: set-up and restore, the steps, the final evaluation."""

    def __init__(
        self,
        config,
        workdir,
        task_cls,
        primary,
        start_time,
        chosen_width=None,
        on_validation=None,
        final_splits=None,
    ):
        self.config, self.workdir, self.primary = config, workdir, primary
        self.start_time = start_time
        self.chosen_width, self.on_validation = chosen_width, on_validation
        self.final_splits = final_splits
        # The code this process runs is the checkout at its start, not at the end of a long run.
        self.git_commit = provenance.git_commit()
        self.git_dirty = provenance.git_dirty()
        self.ckpts = self.writer = self.console = None
        try:
            self._set_up(task_cls)
        except BaseException:
            self.close()
            raise

    def _set_up(self, task_cls):
        config, workdir, primary = self.config, self.workdir, self.primary
        ckpt_dir = os.path.join(workdir, checkpoint.CHECKPOINTS)
        has_ckpts = os.path.isdir(ckpt_dir) and any(n.isdigit() for n in os.listdir(ckpt_dir))
        workdir_lib.check_restart(config, workdir, has_ckpts)
        data_sha256 = workdir_lib.check_data(config, workdir, has_ckpts)

        self.mesh = sharding.make_mesh()
        n_dev = self.mesh.devices.size
        if config.train.batch_size % n_dev:
            raise errors.ConfigError(
                f"config.train.batch_size={config.train.batch_size} must be divisible by the "
                f"number of devices ({n_dev}) for data parallelism."
            )
        self.task = task = task_cls(config)
        unknown = sorted(set(self.final_splits or ()) - set(task.eval_splits))
        if unknown:
            raise errors.ConfigError(
                f"final_splits: task {config.task!r} has no split {', '.join(unknown)}; its "
                f"splits: {', '.join(task.eval_splits)}."
            )
        self.num_steps = num_train_steps(config, task)
        self.tx, self.schedule = optim.make_optimizer(
            config.optim, self.num_steps, task.steps_per_epoch()
        )
        self.abstract = state_lib.abstract(config, task)
        _check_eval_splits(config, task, self.abstract.params)
        self.memory = resources.check_memory(
            task, self.abstract, next(task.train_iterator()), num_devices=n_dev
        )
        self.shardings = sharding.state_shardings(self.mesh, self.abstract)
        self.signature = state_lib.signature(self.abstract)

        self.ckpts = checkpoint.Checkpoints(workdir, keep=config.train.keep_checkpoints)
        restored = self.ckpts.restore_latest(self.abstract, self.signature, self.shardings)
        if primary:  # only now: a refused restart must not rewrite the workdir's record
            workdir_lib.write_config_json(config, workdir)
            workdir_lib.write_data_fingerprint(config, workdir, data_sha256)
        self.iterator = task.train_iterator()
        if restored is None:
            # One jitted init (not dozens of eager ops), laid out on the mesh directly.
            self.state = jax.jit(
                lambda: state_lib.create(task, self.tx, config.seed, config.train.batch_size),
                out_shardings=self.shardings,
            )()
            self.meta = _fresh_meta()
        else:
            self.state, meta = restored
            self.meta = {**_fresh_meta(), **meta}  # keys added later default to fresh values
            self.iterator.set_state(self.meta["iterator"])
        self.start_step = self.done = int(self.meta["step"])
        self.pending: list[dict] = list(self.meta["pending"])  # per-step sums since last log
        if config.train.time_budget_minutes > 0:  # the plan replaces num_steps and the schedule
            if self.meta["budget_plan"] is None:
                self.meta["budget_plan"] = self._plan_budget()
            self.num_steps = int(self.meta["budget_plan"]["planned_steps"])
            self.tx, self.schedule = optim.make_optimizer(
                config.optim, self.num_steps, task.steps_per_epoch()
            )

        self.writer = metrics.Writer(workdir, self.start_step, enabled=primary)
        self.console = metrics.Console(self.num_steps, self.start_step, enabled=primary)
        self._banner(n_dev)
        if restored is not None:
            self.console.line(f"resumed from step {self.start_step} ({self.ckpts.directory})")
        self.train_step = steps.make_train_step(
            task, self.tx, config.optim.grad_clip_norm, self.shardings
        )
        self.eval_step = steps.make_eval_step(task)
        self.run_start = time.time()

    def _plan_budget(self) -> dict:
        """`time_budget.plan` from steps timed on a copy of the fresh state (every process
        keeps process 0's measurement, so all plan the same steps)."""
        config = self.config
        probe_step = steps.make_train_step(
            self.task, self.tx, config.optim.grad_clip_norm, self.shardings
        )
        copy = jax.tree.map(lambda x: x.copy(), self.state)  # the probe's step donates it

        def to_device(batch):
            return sharding.to_global(batch, sharding.leading_axis_sharding(self.mesh, batch))

        measured = time_budget.measure(probe_step, copy, self.task.train_iterator(), to_device)
        if jax.process_count() > 1:
            seconds = np.float64(measured["seconds_per_step"])
            measured["seconds_per_step"] = float(multihost_utils.broadcast_one_to_all(seconds))
        return time_budget.plan(config.train.time_budget_minutes, measured)

    def _banner(self, n_dev: int) -> None:
        """What the run is about to do: task, model, size, devices, workdir, data, length."""
        config, task = self.config, self.task
        t = config.train
        device = jax.devices()[0]
        lines = [
            f"task {config.task} | {task.model_summary()} | "
            f"{models.count_params(self.abstract.params):,} parameters | {n_dev} x "
            f"{device.platform} ({device.device_kind}) | workdir {os.path.abspath(self.workdir)}",
        ]
        if self.chosen_width is not None:
            chosen = self.chosen_width
            lines.append(
                f"param_budget {chosen['budget']:,}: hidden_size {chosen['hidden_size']} gives "
                f"{chosen['params']:,} parameters ({chosen['deviation']:+.2%})"
            )
        data = task.data_summary()
        if data:
            lines.append(f"data: {data}")
        spe = task.steps_per_epoch()
        length = f"{self.num_steps:,} steps"
        if t.num_epochs > 0 and spe:
            length += f" ({t.num_epochs} epochs x {spe:,})"
        plan = self.meta["budget_plan"]
        if plan is not None:
            length += (
                f" planned for a budget of {plan['budget_s'] / 60:g} min of training steps at "
                f"{plan['seconds_per_step'] * 1e3:.1f} ms/step (median of {plan['probe_steps']} "
                "probe steps)"
            )
        lines.append(
            f"training: {length}, batch {t.batch_size}; objective: {task.objective_note()}; "
            f"memory estimate {resources.human_bytes(self.memory['total'])}"
        )
        for line in lines:
            self.console.line(line)

    # -- pieces of a step ----------------------------------------------------------------------
    def evaluate(self, params, split: str) -> dict[str, float]:
        return evaluate(
            self.task, self.eval_step, params, split, self.mesh, self.config.eval.batch_size
        )

    def save(self) -> None:
        self.meta.update(
            step=self.done,
            iterator=self.iterator.get_state(),
            signature=self.signature,
            pending=[{k: float(v) for k, v in p.items()} for p in self.pending],
        )
        now = time.time()
        saved = dict(
            self.meta,
            train_time_s=self.meta["train_time_s"] + now - self.run_start,
            wall_time_s=self.meta["wall_time_s"] + now - self.start_time,
        )
        self.ckpts.save(self.done, self.state, saved, best_step=self.meta["best_step"])

    def check_finite(self) -> None:
        """Raises NonFiniteError at the first pending step with a non-finite loss/gradient."""
        self.pending[:] = jax.device_get(self.pending)
        for i, sums in enumerate(self.pending):
            if not (math.isfinite(sums["objective"]) and math.isfinite(sums["grad_norm"])):
                bad = self.done - len(self.pending) + i + 1
                kept = self.ckpts.steps()
                raise NonFiniteError(
                    f"non-finite loss at step {bad} (objective={float(sums['objective'])}, "
                    f"grad_norm={float(sums['grad_norm'])}); stopped without saving it. Last good "
                    f"checkpoint: {f'step {kept[-1]}' if kept else 'none'} in "
                    f"{self.ckpts.directory}. Lower config.optim.learning_rate or set "
                    "config.optim.grad_clip_norm."
                )

    def learning_rate(self) -> float:
        """The rate of the last update (a 'plateau' rate is read from the optimizer state)."""
        if self.schedule is None:
            return optim.learning_rate(self.state.opt_state)
        return float(self.schedule(self.done - 1))

    def log_train(self) -> None:
        """Summarizes the pending per-step sums into one 'train' event."""
        totals, n = _total(self.pending), len(self.pending)
        task_totals = {k: v for k, v in totals.items() if k not in ("objective", "grad_norm")}
        train_metrics = _summarize(self.task, task_totals)
        train_metrics.update(
            objective=totals["objective"] / n,
            grad_norm=totals["grad_norm"] / n,
            lr=self.learning_rate(),
        )
        rates = self.console.rates(self.done, totals.get("tokens", 0.0), steps_in_tokens=n)
        self.writer.write(self.done, "train", train_metrics)
        self.writer.scalars(
            self.done,
            {
                "train/steps_per_sec": rates["steps_per_sec"],
                "train/tokens_per_sec": rates["tokens_per_sec"],
            },
        )
        self.console.log(self.done, "train", train_metrics, rates)
        self.pending.clear()

    def validate(self, last: bool) -> tuple[bool, bool, dict[str, float]]:
        """A 'valid' pass; updates the best-metric bookkeeping. Returns (improved, stop, the
        pass's metrics)."""
        t, meta = self.config.train, self.meta
        valid = self.evaluate(optim.eval_params(self.state), "valid")
        self.writer.write(self.done, "valid", valid)
        self.console.log(self.done, "valid", valid)
        value = valid.get(t.best_metric)
        if value is None:
            raise errors.ConfigError(
                f"config.train.best_metric={t.best_metric!r} is not a validation metric "
                f"of task {self.config.task!r}; valid: {', '.join(valid)}."
            )
        meta["last_valid"] = [self.done, value]  # saved with the checkpoint of this step
        if self.config.optim.schedule == "plateau":
            self._plateau(valid[self.config.optim.plateau_metric])
        if self.config.optim.nt_asgd_patience > 0:
            self._nt_asgd(value)
        improved = meta["best_value"] is None or value < meta["best_value"]
        if improved:
            meta.update(best_value=value, best_step=self.done, evals_since_best=0)
            meta["best_valid"] = valid  # the final evaluation reuses it (same params, same data)
        else:
            meta["evals_since_best"] += 1
        reason = None if last else self._stop_reason(valid)
        if reason:
            meta["stopped_early"] = True
            self.console.line(f"early stopping at step {self.done}: {reason}")
        return improved, reason is not None, valid

    def _stop_reason(self, valid: dict[str, float]) -> str | None:
        """Why training ends after this validation pass, or None: the task is solved on the
        validation set (`train.stop_when_solved`), or `early_stopping_patience` passes went by
        without a new best."""
        t = self.config.train
        if t.stop_when_solved and self.task.is_solved(valid, "valid"):
            metric = self.task.loss_metric
            return f"solved on the validation set (valid {metric} = {valid[metric]:.4g})"
        patience = t.early_stopping_patience
        if patience and self.meta["evals_since_best"] >= patience:
            return f"no better valid {t.best_metric} in {patience} evaluations"
        return None

    def _plateau(self, current: float) -> None:
        """The 'plateau' rule after a validation pass (`optim.plateau_step`); the previous
        value is kept in the checkpoint meta, the rate in the optimizer state."""
        o = self.config.optim
        opt_state, decayed = optim.plateau_step(
            o, self.state.opt_state, self.meta.get("plateau_previous"), current
        )
        self.meta["plateau_previous"] = current
        if decayed:
            self.state = self.state.replace(opt_state=opt_state)
            self.console.line(
                f"validation {o.plateau_metric} improved by less than {o.plateau_threshold}: "
                f"learning rate x {o.decay_factor} -> {optim.learning_rate(opt_state):.6g}"
            )

    def _nt_asgd(self, value: float) -> None:
        """NT-ASGD (Merity et al. 2018): start averaging the iterates once validation is worse
        than the best of the passes before the last `nt_asgd_patience`; from then on the
        average is the model evaluated and checkpointed (`optim.eval_params`)."""
        patience, history = self.config.optim.nt_asgd_patience, self.meta["nt_history"]
        if self.meta["nt_asgd_step"] is None and optim.nt_asgd_triggered(history, value, patience):
            opt_state = optim.start_averaging(self.state.opt_state, self.state.params)
            self.state = self.state.replace(opt_state=opt_state)
            self.meta["nt_asgd_step"] = self.done
            self.console.line(
                f"NT-ASGD: valid {self.config.train.best_metric} {value:.4g} is worse than the "
                f"best before the last {patience} passes; averaging the iterates from step "
                f"{self.done} on"
            )
        history.append(value)

    # -- the loop ------------------------------------------------------------------------------
    def train(self) -> None:
        t, meta = self.config.train, self.meta
        plan = meta["budget_plan"]
        ended = meta["stopped_early"] or meta["stopped_at_budget"]
        end = self.start_step if ended else self.num_steps
        with _StopFlag() as stop:
            for step in range(self.start_step, end):
                step_start = time.perf_counter()
                batch = next(self.iterator)
                batch = sharding.to_global(batch, sharding.leading_axis_sharding(self.mesh, batch))
                if step == self.start_step:
                    self.console.line("compiling the train step ...")
                    compile_start = time.time()
                self.state, sums = self.train_step(self.state, batch)
                if step == self.start_step:  # compilation + one step: kept out of the rates
                    jax.block_until_ready(sums)
                    first = time.time() - compile_start
                    self.console.line(f"compiled and ran the first step in {first:.1f} s")
                    self.console.restart_clock(step + 1)
                self.pending.append(sums)
                if len(self.pending) >= 2:
                    # At most one step in flight: XLA:CPU allocates a dispatched step's buffers
                    # before it runs, so an unbounded run-ahead to the next log holds log_every
                    # steps' temporaries at once (a ConvLSTM step's 1.3 GB x 50 was killed for
                    # memory). One queued step still overlaps the next batch with this one.
                    jax.block_until_ready(self.pending[-2])
                self.done = done = step + 1
                if plan is not None:  # steps run one at a time, as the probe timed them
                    jax.block_until_ready(sums)
                    spent = time.perf_counter() - step_start
                    if step == self.start_step:  # compilation: counted at the planned speed
                        meta["budget_compile_s"] += spent
                        spent = plan["seconds_per_step"]
                    meta["budget_train_s"] += spent
                    # The guard is one process's clock: with several, the planned steps alone
                    # end the run (processes must agree on their last step).
                    out_of_time = meta["budget_train_s"] >= plan["budget_s"]
                    if out_of_time and done < self.num_steps and jax.process_count() == 1:
                        meta["stopped_at_budget"] = True
                        self.console.line(
                            f"time budget reached at step {done} of {self.num_steps} planned "
                            f"({meta['budget_train_s']:.1f} s of training steps)"
                        )
                last = done == self.num_steps or meta["stopped_at_budget"]
                do_log = done % t.log_every == 0 or last
                do_eval = last or (t.eval_every > 0 and done % t.eval_every == 0)
                due_save = t.checkpoint_every > 0 and done % t.checkpoint_every == 0
                # Several processes agree on a signal at the same steps (a collective); a
                # single process checks its own flag every step.
                signum = None
                if jax.process_count() == 1 or do_log or do_eval or due_save or done % 10 == 0:
                    signum = stop.agreed()
                self.console.progress(done)
                if not (do_log or do_eval or due_save or last or signum):
                    continue
                self.check_finite()  # nothing diverged gets logged or saved
                if do_log:
                    self.log_train()
                side_start = time.time()
                improved = stop_early = False
                valid = None
                if do_eval:
                    improved, stop_early, valid = self.validate(last)
                if last or due_save or signum or improved or stop_early:
                    self.save()
                self.console.exclude(time.time() - side_start)
                meta["budget_side_s"] += time.time() - side_start
                if valid is not None and self.on_validation is not None:
                    self.on_validation(done, valid)
                if signum:
                    raise Preempted(signum, done)
                if stop_early or last:
                    break
        self.console.close()

    def finish(self) -> dict:
        """Evaluates the best checkpoint (or the final params) on every split; results.json."""
        best_step, done = self.meta["best_step"], self.done
        params = optim.eval_params(self.state)  # the iterate average under NT-ASGD
        if best_step is not None and best_step != done:
            # A missing or unreadable best checkpoint falls back (warned), never a traceback.
            state, _, best_step = self.ckpts.restore_best(best_step, self.abstract, self.shardings)
            params = optim.eval_params(state)
        final = {}
        for split in self.final_splits or self.task.eval_splits:
            reuse = split == "valid" and best_step == self.meta["best_step"]
            if reuse and self.meta.get("best_valid"):  # this checkpoint's own validation pass
                final[split] = dict(self.meta["best_valid"])
            else:
                final[split] = self.evaluate(params, split)
            self.writer.write(
                done, split, final[split], final=True, checkpoint_step=best_step or done
            )
            self.console.log(done, f"final {split} (checkpoint {best_step or done})", final[split])
        now = time.time()
        results = {
            "name": self.config.name or os.path.basename(os.path.abspath(self.workdir)),
            "task": self.config.task,
            "steps": done,
            "num_steps": self.num_steps,
            "best_step": best_step,
            "stopped_early": self.meta["stopped_early"],
            "params": models.count_params(params),
            "param_budget": self.chosen_width,
            "memory_estimate_bytes": self.memory,
            **final,
            # Summed over invocations when the run was interrupted and resumed.
            "wall_time_s": self.meta["wall_time_s"] + now - self.start_time,
            "train_time_s": self.meta["train_time_s"] + now - self.run_start,
            "resumed_from_step": self.start_step or None,
            "time_budget": self._budget_record(),
            "git_commit": self.git_commit,
            "git_dirty": self.git_dirty,
            "hardware": provenance.hardware(),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "command": provenance.command(),
            "config": workdir_lib.config_dict(self.config),
        }
        if self.primary:
            path = os.path.join(self.workdir, "results.json")
            with open(path + ".tmp", "w") as f:
                json.dump(results, f, indent=2)
            os.replace(path + ".tmp", path)
        return results

    def _budget_record(self) -> dict | None:
        """The plan and the seconds counted (None without train.time_budget_minutes)."""
        meta = self.meta
        if meta["budget_plan"] is None:
            return None
        return {
            **meta["budget_plan"],
            "train_s": meta["budget_train_s"],
            "compile_s": meta["budget_compile_s"] + meta["budget_plan"]["compile_s"],
            "eval_and_checkpoint_s": meta["budget_side_s"],
            "stopped_at_budget": meta["stopped_at_budget"],
        }

    def close(self) -> None:
        for closable in (self.console, self.writer, self.ckpts):
            if closable is not None:
                closable.close()
