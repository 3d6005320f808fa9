"""Two processes joined by jax.distributed (gloo CPU collectives) train like one process."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
import train_testing as tt
from train_testing import compile_cache  # noqa: F401 - autouse: cached compiles

from train import metrics, trainer

STEPS = {"train.num_steps": 16, "train.eval_every": 8}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_agree_with_one(tmp_path):
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    ref = trainer.train_and_evaluate(tt.tiny_config(**STEPS), one)
    port = _free_port()
    args = tt.cli_args(two, **STEPS) + [
        f"--coordinator_address=127.0.0.1:{port}",
        "--num_processes=2",
    ]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "train.main", *args, f"--process_id={i}"],
            cwd=tt.REPO,
            env=tt.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    try:
        outputs = [p.communicate(timeout=300)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, out in zip(procs, outputs, strict=True):
        assert p.returncode == 0, out[-3000:]
    got = tt.results(two)
    assert got["hardware"]["process_count"] == 2 and got["hardware"]["device_count"] == 2
    a, b = tt.params_of(one), tt.params_of(two)
    diff = tt.max_abs_diff(a, b)
    print(f"max |params difference| = {diff:.3g}")
    assert diff < 1e-6, diff
    for split in ("valid", "test"):
        for k, v in ref[split].items():
            assert got[split][k] == pytest.approx(v, rel=1e-5, abs=1e-6)
    # Only process 0 writes the event log: one line per event, as in a 1-process run.
    assert [e["step"] for e in metrics.read_events(two)] == [
        e["step"] for e in metrics.read_events(one)
    ]
