"""Strict JAX settings for every test, and a fixture for the float64 tests.

Rank promotion raises, so library code must broadcast explicitly (`cells.base.add_bias`);
float64 is off by default, as for users, and switched on only inside tests that ask for the
`x64` fixture (or use `jax.enable_x64(True)` themselves).

XLA compiles with LLVM's optimisation level 0 and with the classic loop emitters instead of the
MLIR fusion emitters in tests: the suite compiles thousands of small programs (77 in one test of
resets_test) and runs most of them once, so compiling is most of its time. Measured on a 2-core
CPU, back to back on the same files: level 0 saved 18-37% per file (12% of the whole suite); the
classic emitters then save another 40% (gradients_test + resets_test 193 -> 117 s; the default
suite in `CI=true bash .ci/run`, nothing else running, 16:22 -> 8:58 min). Both change
code generation, not the HLO programs the tests check; float32 results move by round-off. A flag
already in XLA_FLAGS keeps its value (`XLA_FLAGS=--xla_cpu_use_fusion_emitters=true` tests the
emitters users run); the second is an XLA flag of the pinned jaxlib (constraints.txt).
"""

import os

import pytest

_TEST_XLA_FLAGS = {"xla_backend_optimization_level": "0", "xla_cpu_use_fusion_emitters": "false"}
_flags = os.environ.get("XLA_FLAGS", "").split()
_flags += [f"--{n}={v}" for n, v in _TEST_XLA_FLAGS.items() if not any(n in f for f in _flags)]
os.environ["XLA_FLAGS"] = " ".join(_flags)

import jax  # noqa: E402  (after XLA_FLAGS: the backend reads them once)

jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def x64():
    """Enables float64 for the duration of one test."""
    with jax.enable_x64(True):
        yield


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` are skipped unless JAX's default backend is a GPU."""
    if jax.default_backend() == "gpu":
        return
    skip = pytest.mark.skip(
        reason="needs a GPU (experiments/studies/accelerators/device_check.sh runs these)"
    )
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
