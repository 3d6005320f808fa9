"""Data parallelism with JAX's own engine: one mesh axis 'data' over all devices (all hosts).

Batches and the recurrent carry are split on their leading (batch) axis; parameters and the
optimizer state are replicated. Every process builds the same global batch from its own copy of
the (deterministic) data iterator and hands each of its devices only that device's slice, so
several hosts need no data exchange and agree on what each step sees.
"""

from __future__ import annotations

import jax
import numpy as np
from absl import logging
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

AXIS = "data"


def initialize_distributed(coordinator_address: str, num_processes: int, process_id: int) -> None:
    """Joins a multi-process run (jax.distributed); CPU processes use gloo collectives."""
    if jax.config.jax_platforms in (None, "", "cpu") or "cpu" in str(jax.config.jax_platforms):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
    )
    logging.info(
        "jax.distributed: process %d of %d, %d local / %d global devices",
        jax.process_index(),
        jax.process_count(),
        jax.local_device_count(),
        jax.device_count(),
    )


def make_mesh() -> Mesh:
    """A 1-D mesh over every device of every process."""
    return Mesh(np.asarray(jax.devices()), (AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P(AXIS))


def leading_axis_sharding(mesh: Mesh, tree):
    """Per leaf: split on the leading axis when it divides evenly, else replicate."""
    n = mesh.devices.size

    def pick(x):
        shape = np.shape(x)
        if shape and shape[0] % n == 0:
            return batch_sharded(mesh)
        return replicated(mesh)

    return jax.tree.map(pick, tree)


def to_global(tree, shardings):
    """Host (or single-device) values -> global arrays laid out as `shardings`.

    Every process must pass the same values; each fills only its own devices' shards.
    """

    def put(x, sharding):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

    return jax.tree.map(put, tree, shardings)


def state_shardings(mesh: Mesh, abstract_state):
    """Replicated params/opt state/step/rng; carry split on its batch axis."""
    rep = replicated(mesh)
    shardings = jax.tree.map(lambda _: rep, abstract_state)
    return shardings.replace(
        carry=jax.tree.map(lambda _: batch_sharded(mesh), abstract_state.carry)
    )
