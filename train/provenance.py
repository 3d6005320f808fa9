"""Where a result came from: git commit, command line and hardware, recorded with every result."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys

import jax


def git_commit() -> str:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def command() -> str:
    """The command line, as `python -m train.main ...` when run that way."""
    argv = list(sys.argv)
    if argv and argv[0].endswith(os.path.join("train", "main.py")):
        argv[0:1] = ["-m", "train.main"]
    return " ".join(["python"] + argv)


def hardware() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    device = jax.devices()[0]
    return {
        "platform": device.platform,
        "device_kind": device.device_kind,
        "device_count": jax.device_count(),
        "process_count": jax.process_count(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "hostname": socket.gethostname(),
    }
