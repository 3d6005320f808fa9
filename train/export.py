"""A task's training step as a portable program: `jax.export` for CUDA and TPU from any machine.

    from train import export
    step = export.train_step(config, platforms=("cuda", "tpu"))
    blob = step.serialize()                          # bytes (flatbuffers), to file or wire
    step = export.load(blob, config)                 # on the machine that has the platform
    state, sums = step.call(state, batch)

`train_step` traces the step the loop jits (`train.steps.train_step`: the task's loss, its
gradient, global-norm clipping and the optimizer update) on the config's state and batch
shapes and lowers it to StableHLO for each platform. Lowering needs no device: it proves every
operation, custom calls included, has a form on that platform; it does not compile the program
for it (for TPU, `make check-tpu` does) or say how fast it runs.

The program takes and returns flat lists of arrays (the leaves of (state, batch) and of
(state, sums)), so any optimizer state serialises without registering its classes; the tree
structures come from the config, which `load` reads again.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import ml_collections
from jax import export as jax_export

from train import optim, steps, trainer, validate
from train import state as state_lib
from train.tasks import registry


@dataclasses.dataclass(frozen=True)
class ExportedStep:
    """`train_step(state, batch) -> (state, sums)` exported: `exported` works on the flat
    leaves; `call` takes and returns the trees."""

    exported: jax_export.Exported
    in_tree: Any  # PyTreeDef of (state, batch)
    out_tree: Any  # PyTreeDef of (state, sums)

    @property
    def platforms(self) -> tuple[str, ...]:
        return self.exported.platforms

    def call(self, state, batch):
        leaves, tree = jax.tree.flatten((state, batch))
        if tree != self.in_tree:
            raise ValueError(
                "ExportedStep.call: (state, batch) do not have the structure the step was "
                "exported for (another config?)."
            )
        return jax.tree.unflatten(self.out_tree, self.exported.call(*leaves))

    def serialize(self) -> bytearray:
        return self.exported.serialize()


def flat_train_step(config: ml_collections.ConfigDict):
    """(flat step function, abstract flat inputs, in_tree, out_tree) of config's train step."""
    validate.validate(config)
    task = registry.get_task(config)
    tx, _ = optim.make_optimizer(
        config.optim, trainer.num_train_steps(config, task), task.steps_per_epoch()
    )
    step = functools.partial(
        steps.train_step, task=task, tx=tx, grad_clip_norm=config.optim.grad_clip_norm
    )
    abstract_state = state_lib.abstract(config, task)
    abstract_batch = jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), next(task.train_iterator())
    )
    leaves, in_tree = jax.tree.flatten((abstract_state, abstract_batch))
    out_tree = jax.tree.structure(jax.eval_shape(step, abstract_state, abstract_batch))

    def flat_step(*flat):
        state, batch = jax.tree.unflatten(in_tree, flat)
        return jax.tree.leaves(step(state, batch))

    return flat_step, leaves, in_tree, out_tree


def train_step(
    config: ml_collections.ConfigDict, platforms: tuple[str, ...] = ("cuda", "tpu")
) -> ExportedStep:
    """`config`'s training step lowered for `platforms`.

    The learning-rate schedule is the run's (it reads the state's step). Shapes are the
    config's: parameters, optimizer state and carry from `train.state.abstract`, the batch from
    the task's training iterator (its first batch is read, not trained on).
    """
    flat_step, leaves, in_tree, out_tree = flat_train_step(config)
    exported = jax_export.export(jax.jit(flat_step), platforms=platforms)(*leaves)
    return ExportedStep(exported, in_tree, out_tree)


def load(blob: bytes | bytearray, config: ml_collections.ConfigDict) -> ExportedStep:
    """An `ExportedStep` from `ExportedStep.serialize()` bytes and the config it was made from."""
    _, _, in_tree, out_tree = flat_train_step(config)
    return ExportedStep(jax_export.deserialize(blob), in_tree, out_tree)
