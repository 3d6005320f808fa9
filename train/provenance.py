"""Where a result came from: git commit, command line and hardware, recorded with every result."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys

import jax

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _git(*args: str) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None


def git_commit() -> str:
    out = _git("rev-parse", "HEAD")
    return (out.stdout.strip() if out else "") or "unknown"


# A study's records are what runs write, not code: a grid that replaces committed records
# (`python -m experiments run ... --force`) must not mark its own later runs dirty. Nor do the
# Markdown pages (the READMEs whose tables `python -m experiments report` rewrites while a grid
# still runs): no run reads them.
_NOT_CODE = (":(exclude,glob)experiments/studies/*/results/**", ":(exclude,glob)**/*.md")


def git_dirty() -> bool | None:
    """Whether tracked files differ from the commit (`git_commit`): a result recorded from such
    a tree was made by code no commit holds. Untracked files (workdirs, new results), the
    studies' records (experiments/studies/*/results/) and Markdown pages do not count. None
    where git or a checkout is not there to ask."""
    out = _git("status", "--porcelain", "--untracked-files=no", "--", ".", *_NOT_CODE)
    if out is None or out.returncode != 0:
        return None
    return bool(out.stdout.strip())


def command() -> str:
    """The command line, as `python -m package.module ...` when a module of this repository
    was run that way (Python reports its file's absolute path, which names this machine's
    folders)."""
    argv = list(sys.argv)
    script = os.path.abspath(argv[0]) if argv else ""
    relative = os.path.relpath(script, ROOT) if script else ".."
    if script.endswith(".py") and not relative.startswith(".."):
        module = relative[: -len(".py")].replace(os.sep, ".")
        argv[0:1] = ["-m", module.removesuffix(".__main__")]
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
