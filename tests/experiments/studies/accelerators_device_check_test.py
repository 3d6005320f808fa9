"""experiments/studies/accelerators/device_check.py: the prepared GPU check, exercised on CPU
(--dry-run)."""

import json
import os
import subprocess
import sys

import pytest

from experiments.studies.accelerators import device_check

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _run(*args, out=None):
    env = {**os.environ, "PYTHON": sys.executable, "JAX_PLATFORMS": "cpu"}
    if out is not None:
        env["OUT"] = str(out)
    return subprocess.run(
        ["bash", "experiments/studies/accelerators/device_check.sh", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.mark.slow
def test_every_implementation_agrees_on_a_tiny_shape():
    budget = device_check.Budget(600)
    records, skipped = device_check.bench_shape(("lstm", 2, 5, 16, "float32"), 1, True, budget)
    impls = {r["impl"] for r in records}
    assert {"ours", "ours-autodiff", "flax", "jax-cudnn", "pallas"} <= impls and not skipped
    assert all(r["agrees"] and r["ms"] > 0 for r in records)
    assert {r["mode"] for r in records} == {"fwd", "fwd+bwd"}
    table = device_check.ratio_table(records)
    assert "| lstm | 2 | 5 | 16 | float32 | fwd+bwd |" in table and "(jax-cudnn)" in table


def test_refuses_a_cpu_without_dry_run_and_an_existing_result(tmp_path):
    proc = _run(out=tmp_path)
    assert proc.returncode == 2 and "pass --dry-run" in proc.stderr
    (tmp_path / "device_check.json").write_text("{}")
    proc = _run("--dry-run", out=tmp_path)
    assert proc.returncode == 2 and "exists; name another --out" in proc.stderr
    assert (tmp_path / "device_check.json").read_text() == "{}"


@pytest.mark.slow
def test_dry_run_end_to_end(tmp_path):
    proc = _run("--dry-run", f"--out={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((tmp_path / "device_check.json").read_text())
    assert report["train"]["status"] == "ok" and report["records"]
    assert all(r["agrees"] for r in report["records"]) and "| ours ms |" in proc.stdout
