"""experiments/lab/timing.py: calls interleave round by round, every call is waited for, and the
summary is the median (no timing is asserted: a fake clock)."""

import jax.numpy as jnp
import pytest

from experiments.lab import timing


def test_interleaved_calls_each_once_per_round_and_waits_for_each():
    order, waited = [], []
    ticks = iter(range(100))
    calls = {"a": lambda: order.append("a") or 1, "b": lambda: order.append("b") or 2}
    seconds = timing.interleaved(
        calls, repeats=3, wait=waited.append, clock=lambda: float(next(ticks))
    )
    assert order == ["a", "b"] * 3 and waited == [1, 2] * 3
    assert seconds == {"a": [1.0, 1.0, 1.0], "b": [1.0, 1.0, 1.0]}
    with pytest.raises(ValueError, match="repeats=0"):
        timing.interleaved(calls, repeats=0)


def test_the_default_wait_blocks_on_jax_results():
    seconds = timing.interleaved({"x": lambda: jnp.ones(3) * 2}, repeats=2)
    assert len(seconds["x"]) == 2 and all(s >= 0 for s in seconds["x"])


def test_summary_and_memory_readers():
    assert timing.summary([3.0, 1.0, 2.0]) == {"median_s": 2.0, "best_s": 1.0,
                                              "all_s": [3.0, 1.0, 2.0]}  # fmt: skip
    assert timing.peak_rss_mb() > 0
    import jax

    compiled = jax.jit(lambda x: x * 2).lower(jnp.ones((4, 4))).compile()
    memory = timing.xla_memory(compiled)
    assert memory is None or set(memory) == {"argument", "output", "temp"}
