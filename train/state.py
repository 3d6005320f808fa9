"""The train state: everything on device that a step reads and writes.

    TrainState(step, params, opt_state, rng, carry)

`carry` is the recurrent state flowing across consecutive training batches (truncated BPTT),
None for tasks whose examples are independent. `rng` is a raw uint32[2] key; the step's dropout
key is fold_in(rng, step), so a resumed run draws exactly the same masks. The whole state is
saved in every checkpoint (with the data iterator's position beside it, see checkpoint.py).
"""

from __future__ import annotations

import hashlib
from typing import Any

import flax.struct
import jax
import ml_collections
import optax

from train import optim

PyTree = Any


@flax.struct.dataclass
class TrainState:
    step: jax.Array  # int32 scalar: updates applied so far
    params: PyTree
    opt_state: PyTree
    rng: jax.Array  # uint32[2] base key (dropout key of step s: fold_in(rng, s))
    carry: PyTree  # recurrent carry across batches; leaves [B, ...]; None when unused


def create(task, tx: optax.GradientTransformation, seed: int, batch_size: int) -> TrainState:
    """A fresh state on the default device: params from `seed`, zero carry, step 0."""
    init_key, dropout_key = jax.random.split(jax.random.PRNGKey(seed))
    params = task.init_params(init_key)
    return TrainState(
        step=jax.numpy.zeros((), jax.numpy.int32),
        params=params,
        opt_state=tx.init(params),
        rng=dropout_key,
        carry=task.init_carry(batch_size),
    )


def abstract(config: ml_collections.ConfigDict, task) -> TrainState:
    """The shapes and dtypes of the TrainState `config` builds for `task` (nothing computed)."""
    tx, _ = optim.make_optimizer(config.optim, 1, task.steps_per_epoch() or 1)
    return jax.eval_shape(lambda: create(task, tx, config.seed, config.train.batch_size))


def signature(abstract_state: TrainState) -> str:
    """A short hash of the state's tree structure, shapes and dtypes.

    Stored with each checkpoint so that restarting with a config whose state does not fit the
    checkpoint (another model size, optimizer ...) is refused with a message, not a stack trace.
    """
    leaves = jax.tree_util.tree_flatten_with_path(abstract_state)[0]
    text = ";".join(
        f"{jax.tree_util.keystr(path)}:{tuple(leaf.shape)}:{leaf.dtype}" for path, leaf in leaves
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]
