"""Timing and memory: the one interleaved timer and the memory readers every benchmark uses.

    seconds = timing.interleaved({"ours": run_ours, "flax": run_flax}, repeats=5)
    stats = timing.summary(seconds["ours"])     # {'median_s', 'best_s', 'all_s'}
    timing.peak_rss_mb()                        # this process's peak resident set so far
    timing.xla_memory(compiled)                 # XLA's memory analysis of a compiled program

Machines here are shared and noisy, so implementations are compared side by side in one process:
`interleaved` calls each implementation once per round, in turn, so background load falls on all
of them alike, and reports every call's seconds; tables report the median (and ratios of
medians), never a single call. Compilation and warm-up are the caller's, before timing: each
call here is waited for (`jax.block_until_ready` on what it returns), so asynchronous dispatch
cannot hide work.
"""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable, Mapping


def _wait(result):
    import jax

    return jax.block_until_ready(result)


def interleaved(
    calls: Mapping[str, Callable[[], object]],
    repeats: int,
    wait: Callable[[object], object] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, list[float]]:
    """name -> the seconds of each of `repeats` calls; one call of every name per round, in
    the mapping's order. `wait` finishes a call's work before the clock stops (default
    `jax.block_until_ready` on its result; PyTorch on a GPU passes its synchronize); `clock`
    is for tests."""
    if repeats < 1:
        raise ValueError(f"repeats={repeats}: give 1 or more")
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = clock()
            (wait or _wait)(call())
            seconds[name].append(clock() - start)
    return seconds


def summary(seconds: list[float]) -> dict:
    """The median (what tables report), the best and every call's seconds."""
    return {"median_s": statistics.median(seconds), "best_s": min(seconds), "all_s": list(seconds)}


def peak_rss_mb() -> float:
    """This process's peak resident set so far, in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def xla_memory(compiled) -> dict[str, int] | None:
    """XLA's memory analysis of a compiled program, in bytes: its arguments, outputs and
    temporaries (None where the backend gives none). A benchmark says which sum it reports."""
    memory = compiled.memory_analysis()
    if memory is None:
        return None
    return {
        "argument": int(memory.argument_size_in_bytes),
        "output": int(memory.output_size_in_bytes),
        "temp": int(memory.temp_size_in_bytes),
    }
