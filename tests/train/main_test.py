"""The launcher: every user error is one line on stderr, exit status 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import train_testing as tt

C = tt.SYNTHETIC


def _assert_one_line_error(proc, *words, status=2):
    assert proc.returncode == status, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.fixture
def files(tmp_path):
    (tmp_path / "noget.py").write_text("x = 1\n")
    (tmp_path / "boom.py").write_text("def get_config():\n    raise RuntimeError('boom')\n")
    (tmp_path / "quits.py").write_text("import sys\n\ndef get_config():\n    sys.exit(0)\n")
    (tmp_path / "afile").write_text("")
    return tmp_path


FLAG_CASES = [
    # Errors at flag parsing: absl's and ml_collections config_flags' own.
    (["--config.train.nonexistent=3"], ["--config.train.nonexistent", "no such config field"]),
    # A cell option the config file does not set: only the whole-dict form can add it.
    (
        ["--config.model.cell_options.chrono_t_max=50"],
        [
            "--config.model.cell_options.chrono_t_max",
            "--config.model.cell_options=\"{'chrono_t_max': 50}\"",
        ],
    ),
    (["--config.train.batch_size=abc"], ["--config.train.batch_size", "abc"]),
    (["--bogus_flag=1"], ["bogus_flag"]),
    (["--config={d}/noget.py"], ["noget.py", "get_config"]),
    (["--config={d}/boom.py"], ["boom.py", "RuntimeError: boom"]),
    (["--config={d}/quits.py"], ["quits.py", "called sys.exit(0)"]),
    (
        ["--config=experiments/configs/adding.py:lenght=50"],
        ["adding.py", "unknown config argument 'lenght=50'", "length"],
    ),
    (["--config=experiments/configs/ett.py:input_len=abc"], ["input_len='abc' must be an int"]),
    (["--config={d}/missing.py"], ["missing.py", "does not exist"]),
    (["--config="], ["--config"]),
    (["--workdir="], ["--workdir is required"]),
]


@pytest.mark.parametrize("extra,words", FLAG_CASES, ids=[c[0][0] for c in FLAG_CASES])
def test_flag_errors(files, extra, words):
    extra = [a.format(d=files) for a in extra]
    config = [] if any(a.startswith("--config=") for a in extra) else [f"--config={C}"]
    args = config + [f"--workdir={files}/w"] + extra
    _assert_one_line_error(tt.run_cli(args, timeout=120), *words)


VALIDATION_CASES = [
    (["--config.model.dropout=1.5"], ["config.model.dropout", "[0, 1)"]),
    (["--config.data.path=/no/such/data.txt"], ["config.data.path", "no effect"]),
    (["--config.model.cell=gruu"], ["config.model.cell", tt.REGISTERED_CELLS]),
    (["--workdir={d}/afile"], ["afile", "is a file"]),
]


@pytest.mark.parametrize("extra,words", VALIDATION_CASES, ids=[c[0][0] for c in VALIDATION_CASES])
def test_validation_errors(files, extra, words):
    args = [f"--config={C}", f"--workdir={files}/w"] + [a.format(d=files) for a in extra]
    _assert_one_line_error(tt.run_cli(args, timeout=120), *words)
    assert not (files / "w" / "checkpoints").exists()  # nothing computed or written


def test_second_live_run_refused(tmp_path):
    """A live process holding the workdir lock blocks a second run (exit 2, one line)."""
    workdir = tmp_path / "w"
    workdir.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            f"fd = os.open({str(workdir / '.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, str(os.getpid()).encode())\n"
            "print('locked', flush=True); time.sleep(300)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        proc = tt.run_cli(tt.cli_args(str(workdir)), timeout=120)
        _assert_one_line_error(proc, "in use by another live run", f"pid {holder.pid}")
    finally:
        holder.kill()
        holder.wait()


def test_non_finite_loss_exits_1_with_one_line(tmp_path):
    proc = tt.run_cli(tt.cli_args(str(tmp_path / "w"), **{"data.nan_after_step": 5}))
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "non-finite loss at step 6" in errors[0]
    assert "Last good checkpoint: none" in errors[0]


def test_workdir_with_a_tilde_is_the_home_directory(tmp_path):
    args = [f"--config={C}", "--workdir=~/runs/tilde"] + [
        f"--config.{k}={v}" for k, v in {**tt.TINY, "train.num_steps": 2}.items()
    ]
    proc = tt.run_cli(args, timeout=120, HOME=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "runs" / "tilde" / "results.json").exists()
    assert not (tt.REPO and os.path.exists(os.path.join(tt.REPO, "~")))


def test_console_commands_are_installed():
    from importlib import metadata

    commands = {e.name: e.value for e in metadata.entry_points(group="console_scripts")}
    assert commands.get("rnn-train") == "train.main:run"
    assert commands.get("rnn-evaluate") == "train.evaluate:run"
