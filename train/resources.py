"""Memory the training step will need, estimated before anything is compiled or allocated.

    estimate = train state (parameters, optimizer state, carry)
             + gradients (one more copy of the parameters)
             + the activations autodiff stores for the backward pass (the residuals of
               `jax.vjp` of the task's loss on one training batch, found by `jax.eval_shape`:
               traced, never run)

It leaves out XLA's temporaries and its buffer reuse, so it is an estimate, not a bound; a run
whose estimate exceeds the machine's memory is refused before compiling
(`config.model.hidden_size=1000000` fails in seconds with the numbers, not minutes later with an
allocation error).
"""

from __future__ import annotations

import math
import os

import jax
import numpy as np

from train.errors import ConfigError


def nbytes(tree) -> int:
    """Bytes of every array (or ShapeDtypeStruct) in `tree`."""
    total = 0
    for leaf in jax.tree.leaves(tree):
        dtype = (
            np.dtype("uint32")
            if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)
            else leaf.dtype
        )
        total += math.prod(leaf.shape) * np.dtype(dtype).itemsize  # Python ints: no overflow
    return total


def activation_bytes(task, abstract_params, batch) -> int:
    """Bytes autodiff keeps for the backward pass of `task.loss` on `batch` (eval_shape only).

    The initial carry is made inside the traced function too: made outside, it is a real
    array of batch x hidden floats, and for a model far beyond memory (hidden_size=1e8) that
    allocation alone gets the process killed before the estimate can refuse it.
    """
    batch_size = len(next(iter(jax.tree.leaves(batch))))
    rng = jax.random.key(0)

    def residuals(params):
        carry = task.init_carry(batch_size)
        loss = lambda p: task.loss(p, carry, batch, rng, True)[0]
        return jax.vjp(loss, params)[1]  # a pytree whose leaves are the stored residuals

    return nbytes(jax.eval_shape(residuals, abstract_params))


def device_memory() -> tuple[int | None, str]:
    """(bytes, what) of the first device's memory: an accelerator's limit, else host RAM."""
    device = jax.local_devices()[0]
    stats = getattr(device, "memory_stats", lambda: None)()
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"]), f"{device.device_kind} memory"
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "host memory"
    except (ValueError, OSError):
        return None, "memory"


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def human_bytes(n: int) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def estimate(task, abstract_state, batch) -> dict[str, int]:
    """{'state', 'gradients', 'activations', 'total'} in bytes for one training step."""
    parts = {
        "state": nbytes(abstract_state),
        "gradients": nbytes(abstract_state.params),
        "activations": activation_bytes(task, abstract_state.params, batch),
    }
    parts["total"] = sum(parts.values())
    return parts


def check_memory(task, abstract_state, batch, num_devices: int = 1) -> dict[str, int]:
    """Raises ConfigError when the estimate exceeds the device's memory; returns the estimate.

    With several devices the batch (and so the activations) is split over them; the state is
    replicated on each.
    """
    parts = estimate(task, abstract_state, batch)
    per_device = parts["state"] + parts["gradients"] + parts["activations"] // max(num_devices, 1)
    limit, what = device_memory()
    if limit is not None and per_device > limit:
        m = task.config.model
        raise ConfigError(
            f"config.model.hidden_size={m.hidden_size} with num_layers={m.num_layers}: this "
            f"model needs about {_gib(per_device)} per device (parameters and optimizer "
            f"state {_gib(parts['state'])}, gradients {_gib(parts['gradients'])}, activations "
            f"kept for the backward pass {_gib(parts['activations'] // max(num_devices, 1))}) "
            f"but the {what} is {_gib(limit)}; lower config.model.hidden_size, num_layers, "
            "config.train.batch_size or the sequence length."
        )
    return parts
