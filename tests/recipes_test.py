"""The recipes for a new cell and a new task, followed in a copy of the repository.

Each test copies the tracked files (data/ left out: neither recipe reads it), adds a throwaway
cell or task exactly as docs/guides/extending.md says, checks that the recipe touched exactly
its files (CELL_RECIPE_FILES, TASK_RECIPE_FILES: what the guide cites), and runs it there: the
cell in the parameterised cell tests and in a tiny `python -m train.main` run, the task in a
tiny training run from its config and in its own test file. The study recipe is
tests/experiments/study_recipe_test.py.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import shutil
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]

# What a new registered cell touches (docs/guides/extending.md, "A new cell").
CELL_RECIPE_FILES = (
    "cells/toy_rnn.py",  # new: the cell, registered as 'toy_rnn'
    "cells/__init__.py",  # its import line, so `import cells` registers it
    "tests/cells/reference_numpy.py",  # its float64 NumPy step, under the registered name
)
# What a new task touches (docs/guides/extending.md, "A new task").
TASK_RECIPE_FILES = (
    "train/tasks/toy_sum.py",  # new: the Task subclass
    "train/tasks/registry.py",  # its line in TASKS
    "experiments/configs/toy_sum.py",  # new: its config
    "tests/train/toy_sum_test.py",  # new: its tests, with one tiny end-to-end run
)

# -- the cell --------------------------------------------------------------------------------
CELL = '''"""A leaky Elman RNN: the throwaway cell of tests/recipes_test.py.

    a_t = x_t W_ih + b + h_{t-1} W_hh
    h_t = (1 - leak) h_{t-1} + leak tanh(a_t)

Parameters: w_ih [I, H], w_hh [H, H], b [H].
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax.numpy as jnp

from cells import base, registry


@registry.register("toy_rnn")
@dataclasses.dataclass(frozen=True)
class ToyRNN(base.Cell):
    """Leaky Elman RNN cell. See the module docstring.

    Attributes:
      leak: the share of the new state taken from tanh(a_t).
    """

    leak: float = 0.5

    num_gates: ClassVar[int] = 1
    gate_names: ClassVar[tuple[str, ...]] = ("a",)

    def fused_step(self, params, carry, xp_BxH):
        (h_prev,) = carry
        a = (xp_BxH + self.recurrent(params, h_prev)).astype(h_prev.dtype)
        h = (1.0 - self.leak) * h_prev + self.leak * jnp.tanh(a)
        return base.RNNState(h), h, {"a": a}

    def reference_step(self, params, carry, x_BxI):
        (h_prev,) = carry
        h_in = base.recurrent_input(params, h_prev)
        a = base.add_bias(x_BxI @ params["w_ih"], params["b"]) + h_in @ params["w_hh"]
        h = (1.0 - self.leak) * h_prev + self.leak * jnp.tanh(a)
        return base.RNNState(h), h
'''
CELL_IMPORT = "from cells.toy_rnn import ToyRNN  # noqa: F401\n"
REFERENCE_STEP = '''def toy_rnn_step(p, state, x, leak):
    """Leaky Elman RNN: h = (1 - leak) h + leak tanh(a). The trace holds a."""
    (h_prev,) = state
    a = x @ p["w_ih"] + h_prev @ p["w_hh"] + p["b"]
    h = (1.0 - leak) * h_prev + leak * np.tanh(a)
    return (h,), h, {"a": a}


'''
REFERENCE_ENTRY = '    "toy_rnn": lambda cell: lambda p, s, x: toy_rnn_step(p, s, x, cell.leak),\n'

# -- the task --------------------------------------------------------------------------------
TASK = '''"""A throwaway task (tests/recipes_test.py): predict the mean of T numbers drawn uniformly
from [-1, 1], from the recurrent stack's last output (mean squared error)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from train import models
from train.data import base as data_base
from train.tasks import base

_SPLIT_SEEDS = {"valid": 1, "test": 2}


def _examples(seeds, n, steps):
    x_NxTx1 = np.random.default_rng(seeds).uniform(-1, 1, (n, steps, 1))
    return {"x": x_NxTx1.astype(np.float32), "y": x_NxTx1.mean(axis=(1, 2)).astype(np.float32)}


class _Iterator(data_base.DataIterator):
    """Fresh batches drawn from (seed, step), so a resumed run sees the same ones."""

    def __init__(self, seed, batch_size, steps):
        self._seed, self._batch, self._steps, self._step = seed, batch_size, steps, 0

    def __next__(self):
        batch = _examples([self._seed, 0, self._step], self._batch, self._steps)
        self._step += 1
        return batch

    def get_state(self):
        return {"step": self._step}

    def set_state(self, state):
        self._step = int(state["step"])


class ToySumTask(base.Task):
    """Recurrent stack -> dense head on the last step -> the sequence's mean."""

    name = "toy_sum"
    model_fields = ()
    data_fields = ("num_eval",)
    unused_fields = {"data.path": "the numbers are generated, not read"}

    def __init__(self, config):
        super().__init__(config)
        self.cell = models.make_cell(config)
        self.stack = models.make_stack(config, self.cell)

    def init_params(self, rng):
        k_rnn, k_head = jax.random.split(rng)
        return {
            "rnn": self.stack.init(k_rnn, 1),
            "head": models.dense_init(k_head, self.stack.output_size, 1),
        }

    def loss(self, params, carry, batch, rng, train):
        ys_BxTxH, _ = self.stack(params["rnn"], batch["x"], rng=rng, **self.scan_kwargs)
        pred_B = models.dense(params["head"], ys_BxTxH[:, -1])[:, 0]
        se = jnp.sum(jnp.square(pred_B - batch["y"]))
        count = jnp.asarray(pred_B.shape[0], jnp.float32)
        return se / count, (carry, {"se": se, "count": count})

    def summarize(self, sums):
        return {"loss": sums["se"] / sums["count"]}

    def train_iterator(self):
        t = self.config.train
        return _Iterator(self.config.seed, t.batch_size, t.seq_len)

    def eval_batches(self, split):
        n, b = self.config.data.num_eval, self.config.eval.batch_size
        seeds = [self.config.seed, _SPLIT_SEEDS[split]]
        data = _examples(seeds, n, self.config.train.seq_len)
        for lo in range(0, n - b + 1, b):
            yield {k: v[lo : lo + b] for k, v in data.items()}
'''
TASK_LINE = '    "toy_sum": "train.tasks.toy_sum:ToySumTask",\n'
TASK_CONFIG = '''"""The throwaway task of tests/recipes_test.py: the mean of 10 numbers.

    python -m train.main --config=experiments/configs/toy_sum.py --workdir=/tmp/toy_sum
"""

from train import config_base


def get_config():
    config = config_base.base_config()
    config.task = "toy_sum"
    config.model.cell = "lstm"  # any registered cell (cells.names()) or 'pkg.module:Class'
    config.model.hidden_size = 16  # units per recurrent layer
    config.data.num_eval = 64  # examples per validation/test split
    config.optim.learning_rate = 1e-2  # Adam's step
    config.train.num_steps = 200  # training steps
    config.train.batch_size = 16  # sequences per step
    config.train.seq_len = 10  # numbers per sequence
    config.train.log_every = 50  # steps between train logs
    config.train.eval_every = 100  # steps between validation passes
    config.train.checkpoint_every = 100  # steps between checkpoints
    config.eval.batch_size = 16  # sequences per evaluation batch
    return config
'''
TASK_TEST = '''"""train/tasks/toy_sum.py: one tiny end-to-end training run."""

from experiments.configs import toy_sum
from train import trainer


def test_tiny_run_trains_and_reports(tmp_path):
    config = toy_sum.get_config()
    config.train.num_steps, config.train.eval_every = 4, 2
    result = trainer.train_and_evaluate(config, str(tmp_path))
    assert result["steps"] == 4 and set(result["test"]) == {"loss"}
'''


def _copy_repository(dest: pathlib.Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    for name in filter(None, files):
        source = REPO / name
        if source.is_file() and not name.startswith("data/"):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def _tree(root: pathlib.Path) -> dict[str, str]:
    """Every file under root (no caches) -> the sha256 of its bytes."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def _insert(path: pathlib.Path, anchor: str, text: str, before: bool = False) -> None:
    """Puts `text` right after (or before) the one line `anchor` of the file."""
    old = path.read_text()
    assert old.count(anchor) == 1, f"{path}: the recipe's anchor {anchor!r} is not there once"
    path.write_text(old.replace(anchor, text + anchor if before else anchor + text))


def _follow(copy: pathlib.Path, new: dict[str, str], edits) -> set[str]:
    """Writes the `new` files and runs the `edits`; returns the paths that changed."""
    before = _tree(copy)
    for name, text in new.items():
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / name).write_text(text)
    edits()
    after = _tree(copy)
    return {p for p in after.keys() | before.keys() if after.get(p) != before.get(p)}


def _run(copy: pathlib.Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    out = subprocess.run(
        [sys.executable, *args], cwd=copy, capture_output=True, text=True, timeout=timeout
    )
    assert out.returncode == 0, f"{' '.join(args)}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


def _train(copy: pathlib.Path, config: str, *overrides: str) -> dict:
    """A tiny `python -m train.main` run in the copy; its results.json."""
    workdir = copy / "workdir"
    tiny = ("num_steps=4", "log_every=2", "eval_every=2", "checkpoint_every=4")
    _run(
        copy, "-m", "train.main", f"--config={config}", f"--workdir={workdir}",
        *(f"--config.train.{o}" for o in tiny), *overrides,
    )  # fmt: skip
    return json.loads((workdir / "results.json").read_text())


@pytest.fixture(scope="module")
def cell_copy(tmp_path_factory):
    """A copy of the repository with the new cell added by its recipe."""
    copy = tmp_path_factory.mktemp("cell_recipe")
    _copy_repository(copy)

    def edits():
        _insert(copy / "cells/__init__.py", "__all__ = [", CELL_IMPORT, before=True)
        reference = copy / "tests/cells/reference_numpy.py"
        _insert(reference, "def _lstm(cell):", REFERENCE_STEP, before=True)
        _insert(reference, "STEPS = {\n", REFERENCE_ENTRY)

    changed = _follow(copy, {CELL_RECIPE_FILES[0]: CELL}, edits)
    return copy, changed


@pytest.fixture(scope="module")
def task_copy(tmp_path_factory):
    """A copy of the repository with the new task added by its recipe."""
    copy = tmp_path_factory.mktemp("task_recipe")
    _copy_repository(copy)
    task, _, config, test = TASK_RECIPE_FILES
    new = {task: TASK, config: TASK_CONFIG, test: TASK_TEST}

    def edits():
        _insert(copy / "train/tasks/registry.py", "TASKS: dict[str, str] = {\n", TASK_LINE)

    return copy, _follow(copy, new, edits)


def test_a_new_cell_touches_the_recipes_files_and_trains(cell_copy):
    copy, changed = cell_copy
    assert changed == set(CELL_RECIPE_FILES)
    result = _train(copy, "experiments/configs/synthetic.py", "--config.model.cell=toy_rnn")
    assert result["steps"] == 4 and result["config"]["model"]["cell"] == "toy_rnn"


def test_a_new_cell_joins_the_parameterised_cell_tests(cell_copy):
    """The default run of tests/cells, restricted to the new cell: among them, its float64
    NumPy step against the fused and reference paths (reference_numpy_test.py)."""
    copy, _ = cell_copy
    out = _run(copy, "-m", "pytest", "-v", "-x", "-p", "no:cacheprovider", "-m", "not slow",
               "-k", "toy_rnn", "tests/cells")  # fmt: skip
    numpy = "reference_numpy_test.py::test_every_cell_matches_its_float64_reference[toy_rnn]"
    assert f"{numpy} PASSED" in out.stdout


def test_a_new_task_touches_the_recipes_files_and_trains(task_copy):
    copy, changed = task_copy
    assert changed == set(TASK_RECIPE_FILES)
    result = _train(copy, "experiments/configs/toy_sum.py", "--config.model.cell=gru")
    assert result["steps"] == 4 and result["task"] == "toy_sum"
    assert set(result["test"]) == {"loss"}


@pytest.mark.slow
def test_a_new_tasks_own_test_passes(task_copy):
    copy, _ = task_copy
    _run(copy, "-m", "pytest", "-q", "-p", "no:cacheprovider", TASK_RECIPE_FILES[3])
