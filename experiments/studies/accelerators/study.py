"""GPU and TPU, proven from a CPU machine: deviceless TPU compilation (`make check-tpu`, in its
own venv with libtpu: results/tpu_compile.json) and the prepared GPU check (`make device-check`
on a machine with one NVIDIA GPU). Neither runs through `python -m experiments run`: each needs
its own environment (README.md)."""

from __future__ import annotations

import os

from experiments.lab import records

GROUPS: dict = {}


def headline(results_dir: str) -> dict:
    record = records.read(os.path.join(results_dir, "tpu_compile.json"))
    compiled, failed = len(record["results"]), record["failures"]
    return {
        "ours": f"{compiled} programs (cells, kernels, a train step) compile for TPU without "
        f"one, {failed} failures (XLA:TPU deviceless, libtpu {record['libtpu']})",
        "published": "-",
    }
