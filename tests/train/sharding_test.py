"""Data parallelism: 8 (host-platform) devices train like 1 device, up to summation order."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import train_testing as tt
from train_testing import compile_cache  # noqa: F401 - autouse: cached compiles

from train import sharding, trainer

EIGHT = {"XLA_FLAGS": "--xla_force_host_platform_device_count=8"}


def test_eight_devices_match_one(tmp_path):
    assert jax.device_count() == 1
    one, eight = str(tmp_path / "one"), str(tmp_path / "eight")
    ref = trainer.train_and_evaluate(tt.tiny_config(), one)
    proc = tt.run_cli(tt.cli_args(eight), **EIGHT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = tt.results(eight)
    assert got["hardware"]["device_count"] == 8
    a, b = tt.params_of(one), tt.params_of(eight)
    diff = tt.max_abs_diff(a, b)
    print(f"max |params difference| = {diff:.3g}")
    assert diff < 1e-6, diff
    for split in ("valid", "test"):
        for k, v in ref[split].items():
            assert got[split][k] == pytest.approx(v, rel=1e-5, abs=1e-6), (split, k)


def test_batch_not_divisible_by_devices_is_refused(tmp_path):
    proc = tt.run_cli(tt.cli_args(str(tmp_path / "w"), **{"train.batch_size": 12}), **EIGHT)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "train.batch_size=12 must be divisible by the number of devices (8)" in proc.stderr


def test_leading_axis_sharding_rules():
    mesh = sharding.make_mesh()
    tree = {"x": np.zeros((4, 3)), "s": np.zeros(())}
    shardings = sharding.leading_axis_sharding(mesh, tree)
    assert shardings["x"].spec == jax.sharding.PartitionSpec("data")
    assert shardings["s"].spec == jax.sharding.PartitionSpec()
    out = sharding.to_global(tree, shardings)
    np.testing.assert_array_equal(np.asarray(out["x"]), tree["x"])
