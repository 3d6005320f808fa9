"""Strict JAX settings for every test, and a fixture for the float64 tests.

Rank promotion raises, so library code must broadcast explicitly (`cells.base.add_bias`);
float64 is off by default, as for users, and switched on only inside tests that ask for the
`x64` fixture (or use `jax.enable_x64(True)` themselves).
"""

import jax
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
