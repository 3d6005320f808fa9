"""The optimizer and learning-rate schedule built from `config.optim`.

Schedules map the update count t (0-based; equal to the train step) to a learning rate:

    constant:     lr
    cosine:       lr * (1 + cos(pi * min(1, (t - w) / (num_steps - w)))) / 2   after warm-up w
    epoch_decay:  lr * decay_factor ** max(0, epoch + 1 - decay_after_epochs),
                  epoch = t // steps_per_epoch                    (Zaremba et al. 2014)

    plateau:      lr, multiplied by decay_factor after every validation pass whose
                  plateau_metric improved on the previous pass by less than plateau_threshold
                  (Kim et al. 2016: perplexity, 1.0, 0.5). The rate lives in the optimizer state
                  (`optax.inject_hyperparams`), so checkpoints carry it and resume exactly;
                  `plateau_step` is the rule, called by the loop after each validation pass.

With warmup_steps = w > 0 the rate is also scaled by min(1, (t + 1) / w) (cosine has its own
warm-up from 0; plateau has none). Gradient clipping is done by the train step (it also
reports the norm), so the optimizer state's structure depends only on the optimizer's name,
momentum/weight decay and whether the rate is injected (plateau).
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
    """(optimizer, schedule) from config.optim (already validated).

    With schedule 'plateau' the learning rate is a hyper-parameter in the optimizer state and
    the returned schedule is None (`learning_rate(opt_state)` reads the current rate).
    """
    name, wd = optim.optimizer, optim.weight_decay
    if optim.schedule == "plateau":
        schedule, lr = None, optim.learning_rate
        make = {"adamw": optax.adamw, "adam": optax.adam, "sgd": optax.sgd}[name]
        kwargs = {"weight_decay": wd} if name == "adamw" else {}
        if name == "sgd":
            kwargs["momentum"] = optim.momentum or None
        tx = optax.inject_hyperparams(make)(learning_rate=lr, **kwargs)
    else:
        schedule = make_schedule(optim, num_steps, steps_per_epoch)
        if name == "adamw":
            return optax.adamw(schedule, weight_decay=wd), schedule
        if name == "adam":
            tx = optax.adam(schedule)
        elif name == "sgd":
            tx = optax.sgd(schedule, momentum=optim.momentum or None)
        else:
            raise ValueError(f"optim.optimizer must be one of {OPTIMIZERS}, got {name!r}.")
    if wd > 0 and name != "adamw":
        tx = optax.chain(optax.add_decayed_weights(wd), tx)
    return tx, schedule


def _injected(opt_state):
    """The `inject_hyperparams` state inside `opt_state` (alone or in a chain)."""
    states = (
        opt_state
        if isinstance(opt_state, tuple) and not hasattr(opt_state, "hyperparams")
        else (opt_state,)
    )
    for state in states:
        if hasattr(state, "hyperparams"):
            return state
    raise ValueError("the optimizer state has no injected learning rate (schedule != 'plateau').")


def learning_rate(opt_state) -> float:
    """The current learning rate of a 'plateau' optimizer state."""
    return float(_injected(opt_state).hyperparams["learning_rate"])


def plateau_step(optim: ml_collections.ConfigDict, opt_state, previous, current):
    """(opt_state, decayed): the rate times decay_factor when `current` (this validation pass's
    plateau_metric) improved on `previous` by less than plateau_threshold; unchanged on the
    first pass (previous None)."""
    if previous is None or previous - current >= optim.plateau_threshold:
        return opt_state, False
    injected = _injected(opt_state)
    lr = injected.hyperparams["learning_rate"]
    hyperparams = {**injected.hyperparams, "learning_rate": lr * optim.decay_factor}
    new = injected._replace(hyperparams=hyperparams)
    if injected is opt_state:
        return new, True
    return tuple(new if s is injected else s for s in opt_state), True
