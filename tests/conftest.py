"""Strict JAX settings for every test, and a fixture for the float64 tests.

Rank promotion raises, so library code must broadcast explicitly (`cells.base.add_bias`);
float64 is off by default, as for users, and switched on only inside tests that ask for the
`x64` fixture (or use `jax.enable_x64(True)` themselves).

XLA compiles with LLVM's optimisation level 0 in tests: the suite compiles hundreds of small
programs and runs most of them once, so the backend passes cost more than they save (18-37% of
the time of the files measured back to back, 12% of the whole suite on a 2-core CPU). They change
code generation, not the HLO program the tests check; set `xla_backend_optimization_level` in
XLA_FLAGS to test with another level.
"""

import os

if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = " ".join(
        filter(None, [os.environ.get("XLA_FLAGS"), "--xla_backend_optimization_level=0"])
    )

import jax  # noqa: E402  (after XLA_FLAGS: the backend reads them once)
import pytest

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
    skip = pytest.mark.skip(reason="needs a GPU (experiments/device_check.sh runs these)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
