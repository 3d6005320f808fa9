"""A cell from the user's own package trains in every kind of task through `train.main`.

The cell lives in a module written to a temporary directory (on PYTHONPATH, nowhere in this
repository) and is named on the command line by its import path, with options:

    --config.model.cell=janet_cell:JANET --config.model.cell_options="{'forget_bias': 2.0}"
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import train_testing as tt

from train import checkpoint, workdir

# JANET (van der Westhuizen & Lasenby 2018): an LSTM with the forget gate alone.
USER_CELL = '''
import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

import cells


@dataclasses.dataclass(frozen=True)
class JANET(cells.Cell):
    """f = sigmoid(x W_f + h U_f + b_f), g = tanh(x W_g + h U_g + b_g), h' = f h + (1 - f) g."""

    forget_bias: float = 1.0

    num_gates: ClassVar[int] = 2
    gate_names: ClassVar[tuple[str, ...]] = ("f", "g")

    def _init_bias(self, key):  # the init_scheme's bias, the forget block set over it
        b = super()._init_bias(key)
        return b.at[: self.hidden_size].set(self.forget_bias)

    def fused_step(self, params, carry, xp):
        (h,) = carry
        pre = (xp + self.recurrent(params, h)).astype(h.dtype)
        f, g = jnp.split(pre, 2, axis=-1)
        f, g = jax.nn.sigmoid(f), jnp.tanh(g)
        h = f * h + (1.0 - f) * g
        return cells.RNNState(h), h, {"f": f, "g": g}

    def reference_step(self, params, carry, x):
        return self.step(params, carry, x)
'''

CELL_ARGS = [
    "--config.model.cell=janet_cell:JANET",
    "--config.model.cell_options={'forget_bias': 2.0}",
    "--config.model.hidden_size=8",
    "--config.train.num_steps=3",
    "--config.train.eval_every=3",
    "--config.train.checkpoint_every=3",
    "--config.train.log_every=3",
]


@pytest.fixture(scope="module")
def user_package(tmp_path_factory):
    root = tmp_path_factory.mktemp("mylab")
    (root / "janet_cell.py").write_text(textwrap.dedent(USER_CELL))
    text = "".join(f"line {i}: the quick brown fox jumps over the lazy dog.\n" for i in range(60))
    (root / "corpus.txt").write_text(text)
    rng = np.random.default_rng(0)
    rows = [
        f"2020-01-{1 + i // 24:02d} {i % 24:02d}:00,{v:.4f}"
        for i, v in enumerate(rng.normal(size=120))
    ]
    (root / "series.csv").write_text("date,y\n" + "\n".join(rows) + "\n")
    return root


TASKS = {
    "lm": [
        f"--config={os.path.join('experiments', 'configs', 'shakespeare_char.py')}",
        "--config.data.path={root}/corpus.txt",
        "--config.model.embed_size=4",
        "--config.model.num_layers=1",
        "--config.train.batch_size=2",
        "--config.train.seq_len=8",
        "--config.train.scan_backward=fused",  # JANET has no hand-written backward: autodiff
        "--config.eval.batch_size=2",
    ],
    "forecast": [
        "--config=experiments/configs/forecast_csv.py:path={root}/series.csv,target=y,"
        "date_column=date,input_len=8,horizon=2,batch_size=4",
        "--config.eval.batch_size=8",
    ],
    "adding": [
        "--config=experiments/configs/adding.py:length=10",
        "--config.data.num_valid=8",
        "--config.data.num_test=8",
        "--config.eval.batch_size=8",
        "--config.train.dtype=bfloat16",
    ],
}


def _git_status() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain"], cwd=tt.REPO, capture_output=True, text=True
    ).stdout


@pytest.mark.parametrize("task", list(TASKS))
def test_import_path_cell_trains_in_every_task(task, user_package, tmp_path, monkeypatch):
    before = _git_status()
    run_dir = str(tmp_path / "run")
    args = [a.format(root=user_package) for a in TASKS[task]] + CELL_ARGS
    proc = tt.run_cli(
        [*args, f"--workdir={run_dir}"], PYTHONPATH=os.pathsep.join([tt.REPO, str(user_package)])
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = tt.results(run_dir)
    assert result["task"] == task and result["steps"] == 3
    config = workdir.load_config(run_dir)
    assert config.model.cell == "janet_cell:JANET"
    assert config.model.cell_options.to_dict() == {"forget_bias": 2.0}
    if task == "lm":
        assert "JANET has no hand-written backward" in proc.stderr

    monkeypatch.syspath_prepend(str(user_package))
    trained = checkpoint.load_trained(run_dir, "latest")
    assert type(trained.task.cell).__name__ == "JANET"
    assert trained.task.cell.forget_bias == 2.0
    if task == "adding":
        assert trained.task.cell.compute_dtype == "bfloat16"
    layer0 = (trained.params["encoder"] if task == "forecast" else trained.params["rnn"])[0]
    assert layer0["w_hh"].shape == (8, 16)  # two gate blocks of 8 units
    assert _git_status() == before  # nothing in the repository was touched
    sys.modules.pop("janet_cell", None)
