"""Training to a wall-clock budget (`config.train.time_budget_minutes`): the step plan.

A budget of B seconds counts training steps only. The plan is made once, at a run's first
start, from the speed measured after compilation:

    s  = median over probe steps of the seconds one training step takes   (`measure`)
    N  = max(1, floor(B / s))                                           (`planned_steps`)

and N replaces config.train.num_steps, so every schedule (cosine warm-up and decay, ...) is
laid over N steps and ends when the budget does. The probe runs the run's own model, batch
size and optimizer on a throw-away copy of the initial state (its first step compiles and is
not timed; then steps until `PROBE_SECONDS` or `PROBE_STEPS`, whichever comes first, at least
`MIN_PROBE_STEPS`), so neither the parameters nor the data stream of the run are touched.

The plan is saved in every checkpoint: a resumed run keeps its N (it does not measure again)
and adds the training time it spends to what the checkpoint recorded, so it ends at the same
step as an uninterrupted run. What the loop counts: the time from the start of each step to
its result, excluding each invocation's first step (compilation; counted at s instead),
validation passes, logs and checkpoints, which are reported beside it. As a guard against a
machine that slows down after the probe, the loop also stops once the counted time reaches B
(`stopped_at_budget` in the record; the schedule has then not finished). With several
processes (`jax.distributed`) every process plans process 0's N and the guard is off: their
clocks differ, and they must agree on the last step.

Why planned steps and not a schedule driven by the clock: a step count makes the run a
function of (config, plan), so an interrupted run resumes to exactly the same steps and
learning rates, and a rerun with `num_steps = N` reproduces it on any machine.
"""

from __future__ import annotations

import math
import statistics
import time

import jax

PROBE_SECONDS = 10.0  # the longest the probe times steps for
PROBE_STEPS = 50  # the most steps it times
MIN_PROBE_STEPS = 3  # the fewest (even when one step takes longer than PROBE_SECONDS)


def planned_steps(budget_seconds: float, seconds_per_step: float) -> int:
    """N = max(1, floor(budget / seconds per step))."""
    return max(1, math.floor(budget_seconds / max(seconds_per_step, 1e-9)))


def measure(train_step, state, batches, to_device) -> dict:
    """Times `train_step` on `state` (donated and discarded: pass a copy) over `batches`.

    Returns {'seconds_per_step' (median), 'probe_steps', 'probe_s' (the timed steps' sum),
    'compile_s' (the first, untimed step)}.
    """
    start = time.perf_counter()
    state, sums = train_step(state, to_device(next(batches)))
    jax.block_until_ready(sums)
    compile_s = time.perf_counter() - start
    times: list[float] = []
    while len(times) < PROBE_STEPS and (len(times) < MIN_PROBE_STEPS or sum(times) < PROBE_SECONDS):
        start = time.perf_counter()
        state, sums = train_step(state, to_device(next(batches)))
        jax.block_until_ready(sums)
        times.append(time.perf_counter() - start)
    del state
    return {
        "seconds_per_step": statistics.median(times),
        "probe_steps": len(times),
        "probe_s": sum(times),
        "compile_s": compile_s,
    }


def plan(budget_minutes: float, measured: dict) -> dict:
    """The plan a run keeps in its checkpoints: the budget, the measurement and N."""
    budget_s = 60.0 * float(budget_minutes)
    return {
        "budget_s": budget_s,
        **measured,
        "planned_steps": planned_steps(budget_s, measured["seconds_per_step"]),
    }
