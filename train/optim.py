"""The optimizer and learning-rate schedule built from `config.optim`.

Schedules map the update count t (0-based; equal to the train step) to a learning rate:

    constant:     lr
    cosine:       lr * (1 + cos(pi * min(1, (t - w) / (num_steps - w)))) / 2   after warm-up w
    epoch_decay:  lr * decay_factor ** max(0, epoch + 1 - decay_after_epochs),
                  epoch = t // steps_per_epoch                    (Zaremba et al. 2014)

With warmup_steps = w > 0 the rate is also scaled by min(1, (t + 1) / w) (cosine has its own
warm-up from 0). Gradient clipping is done by the train step (it also reports the norm), so
the optimizer state's structure depends only on the optimizer's name and momentum/weight decay.
"""

from __future__ import annotations

import jax.numpy as jnp
import ml_collections
import optax

from train.config_base import OPTIMIZERS, SCHEDULES  # noqa: F401 - re-exported


def make_schedule(
    optim: ml_collections.ConfigDict, num_steps: int, steps_per_epoch: int | None
) -> optax.Schedule:
    """The learning rate as a function of the 0-based update count."""
    lr, warmup = optim.learning_rate, optim.warmup_steps
    if optim.schedule == "cosine":
        return optax.warmup_cosine_decay_schedule(
            0.0, lr, warmup, max(num_steps, warmup + 1), end_value=0.0
        )
    if optim.schedule == "epoch_decay":
        if not steps_per_epoch:
            raise ValueError("optim.schedule='epoch_decay' needs a task with steps_per_epoch().")
        after, factor = optim.decay_after_epochs, optim.decay_factor

        def base(count):
            epoch = count // steps_per_epoch
            return lr * jnp.power(factor, jnp.maximum(0, epoch + 1 - after).astype(jnp.float32))
    else:

        def base(count):
            return jnp.asarray(lr, jnp.float32) + 0.0 * count

    if warmup <= 0:
        return base
    return lambda count: base(count) * jnp.minimum(1.0, (count + 1.0) / warmup)


def make_optimizer(
    optim: ml_collections.ConfigDict, num_steps: int, steps_per_epoch: int | None
) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """(optimizer, schedule) from config.optim (already validated)."""
    schedule = make_schedule(optim, num_steps, steps_per_epoch)
    name, wd = optim.optimizer, optim.weight_decay
    if name == "adamw":
        return optax.adamw(schedule, weight_decay=wd), schedule
    if name == "adam":
        tx = optax.adam(schedule)
    elif name == "sgd":
        tx = optax.sgd(schedule, momentum=optim.momentum or None)
    else:
        raise ValueError(f"optim.optimizer must be one of {OPTIMIZERS}, got {name!r}.")
    if wd > 0:
        tx = optax.chain(optax.add_decayed_weights(wd), tx)
    return tx, schedule
