"""The task interface: everything the training loop needs to know about one kind of experiment.

A task owns its data, its loss and its metrics, and says how its model wires the recurrent
layers that `train/models.py` builds from the config (cells, stacks, heads); the loop in
`train/trainer.py` owns everything else (optimizer, checkpoints, logging, devices). Adding an
experiment means adding one file under `train/tasks/` that subclasses `Task` (and one line in
`train/tasks/registry.py`), not a branch in the loop.

Contracts (the loop relies on these):

* Batches are dicts of NumPy arrays whose leading axis is the batch axis (so the loop can shard
  them over devices), plus an optional scalar-per-example entry 'reset' ([B] bool): True means
  "start this example's recurrent carry from `init_carry`" (a new epoch of a language model).
* `loss` is pure and jittable: (params, carry, batch, rng, train) -> (objective, (carry, sums)).
  `objective` is what is differentiated (e.g. Zaremba's cross-entropy summed over the window and
  averaged over the batch); `sums` is a dict of per-batch *sums* (e.g. {'nll': ..., 'tokens':
  ...}) that the loop adds up over log intervals and eval passes; `summarize` turns the totals
  into reported metrics (e.g. loss = nll / tokens, perplexity = exp(loss)).
* The train iterator is endless and its position is a small JSON-able dict, saved in every
  checkpoint, so a resumed run sees exactly the batches an uninterrupted one would.
* Evaluation iterates a finite split; the carry flows across its batches, starting from
  `init_carry(eval_batch_size)`.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from typing import Any

import ml_collections

from train.data.base import Batch, DataIterator

PyTree = Any


class Task(abc.ABC):
    """One kind of experiment: data + model + loss + metrics. Subclasses register a `name`."""

    name: str = ""
    # Optional: the extra fields this task reads under config.model / config.data (beyond the
    # shared schema in train/config_base.py). When a tuple is given, any other key there is
    # refused as unknown before any compute; None (the default) leaves the check to `validate`.
    model_fields: tuple[str, ...] | None = None
    data_fields: tuple[str, ...] | None = None
    # Optional config.model fields added after configs were first saved, with the default that
    # reproduces the old behaviour: an older config.json (or a config file leaving them out) is
    # read with these values (`train.workdir.upgrade`).
    model_defaults: dict[str, object] = {}
    # The same for config.data fields.
    data_defaults: dict[str, object] = {}
    # Shared-schema fields this task does not read, with the reason: validation refuses them
    # when set to anything but the schema's default (a setting never silently ignored).
    unused_fields: dict[str, str] = {}
    # True when config.model.dropout acts only between stacked recurrent layers in this task's
    # model (so with one layer it would do nothing and is refused).
    dropout_between_layers_only: bool = True
    # True when the task has a 'solved' criterion: it overrides `is_solved` and names the metric
    # that criterion compares in `loss_metric`. Only then may config.train.stop_when_solved end
    # its runs early (validation refuses the flag otherwise).
    solvable: bool = False
    loss_metric: str = ""
    # The recurrent stack the model runs its inputs through (a `train.models.Stack` or
    # `Bidirectional`), set in `__init__` by tasks whose model is one; the start-up banner names
    # its kind. None (the default): a model of another shape (e.g. an encoder and a decoder).
    stack: Any = None

    def __init__(self, config: ml_collections.ConfigDict):
        """`config` has already passed `validate`; subclasses load their data here."""
        self.config = config
        # Keyword arguments for every `cells.scan` the model runs (through Stack/Bidirectional).
        self.scan_kwargs = {"backward": config.train.scan_backward}
        if config.train.get("scan_backend", "xla") != "xla":
            self.scan_kwargs["backend"] = config.train.scan_backend

    # -- checks, before any compute --------------------------------------------------------
    @classmethod
    def validate(cls, config: ml_collections.ConfigDict) -> None:
        """Raises ConfigError for task-specific problems (missing data file, bad column ...)."""
        return None

    # -- model ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def init_params(self, rng) -> PyTree:
        """The model's parameters."""

    def init_carry(self, batch_size: int) -> PyTree:
        """Recurrent state kept across consecutive training batches (truncated BPTT).

        None (the default) for tasks whose examples are independent.
        """
        return None

    @abc.abstractmethod
    def loss(self, params, carry, batch: Batch, rng, train: bool):
        """Returns (objective, (new_carry, sums)). Pure and jittable; rng is None in eval."""

    @abc.abstractmethod
    def summarize(self, sums: dict[str, float]) -> dict[str, float]:
        """Turns accumulated sums into the metrics to report (e.g. loss, perplexity)."""

    def is_solved(self, metrics: dict[str, float], split: str) -> bool:
        """Whether `metrics` (a validation or test pass on `split`) meet the task's 'solved'
        criterion. Only called on tasks that declare `solvable = True` (which override it)."""
        raise NotImplementedError(f"task {self.name!r} has no 'solved' criterion (solvable=False).")

    # -- data ----------------------------------------------------------------------------------
    @abc.abstractmethod
    def train_iterator(self) -> DataIterator:
        """The endless training stream, at position zero."""

    @abc.abstractmethod
    def eval_batches(self, split: str) -> Iterable[Batch]:
        """One finite pass over `split` ('valid' or 'test')."""

    def steps_per_epoch(self) -> int | None:
        """Training batches in one epoch, when the task has epochs (for epoch-based configs)."""
        return None

    @classmethod
    def width_unit(cls, config: ml_collections.ConfigDict) -> int:
        """The step between the widths (config.model.hidden_size) the model accepts: the
        cell's `num_heads` option (1 without it). `train/budget.py` searches its multiples."""
        heads = config.model.cell_options.to_dict().get("num_heads", 1)
        ok = isinstance(heads, int) and not isinstance(heads, bool) and heads > 0
        return heads if ok else 1

    # -- what the run reports at start ---------------------------------------------------------
    def model_summary(self) -> str:
        """The model in a few words, for the banner (default: the recurrent layers)."""
        m = self.config.model
        kind = type(self.stack).__name__ if self.stack is not None else "model"
        return f"{m.num_layers} x {m.cell}({m.hidden_size}) in a {kind}"

    def data_summary(self) -> str:
        """One line on the data (sizes of the splits), for the start-up banner."""
        return ""

    def objective_note(self) -> str:
        """What `loss`'s objective is, for the banner (the console shows it only where it
        differs from the reported loss)."""
        return "the training loss itself"

    @property
    def eval_splits(self) -> tuple[str, ...]:
        return ("valid", "test")
