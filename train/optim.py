"""The optimizer and learning-rate schedule built from `config.optim`.

Schedules map the update count t (0-based; equal to the train step) to a learning rate:

    constant:     lr
    cosine:       m + (lr - m) (1 + cos(pi * min(1, (t - w) / (num_steps - w)))) / 2   after
                  warm-up w, m = min_learning_rate (0 by default; nanoGPT's min_lr)
    epoch_decay:  lr * decay_factor ** max(0, epoch + 1 - decay_after_epochs),
                  epoch = t // steps_per_epoch                    (Zaremba et al. 2014)

    plateau:      lr, multiplied by decay_factor after every validation pass whose
                  plateau_metric improved on the previous pass by less than plateau_threshold
                  (Kim et al. 2016: perplexity, 1.0, 0.5). The rate lives in the optimizer state
                  (`optax.inject_hyperparams`), so checkpoints carry it and resume exactly;
                  `plateau_step` is the rule, called by the loop after each validation pass.

With nt_asgd_patience = n > 0 (NT-ASGD, Merity et al. 2018; sgd only) the optimizer also keeps
the running mean of its iterates once the loop has seen validation stall (`nt_asgd_triggered`:
worse than the best before the last n passes; `start_averaging`); from then on the average is
what is evaluated and checkpointed as the model (`eval_params`), while SGD goes on updating
the iterate. The average lives in the optimizer state, so resuming is exact.

With warmup_steps = w > 0 the rate is also scaled by min(1, (t + 1) / w) (cosine has its own
warm-up from 0; plateau has none). Gradient clipping is done by the train step (it also
reports the norm), so the optimizer state's structure depends only on the optimizer's name,
momentum/weight decay and whether the rate is injected (plateau).

Adam and AdamW use beta1 / beta2 (PyTorch's and optax's 0.9 / 0.999 by default). With
decay_matrices_only the weight decay skips every tensor of fewer than two dimensions (biases,
norm scales): nanoGPT's two AdamW parameter groups.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax

from train.config_base import OPTIMIZERS, SCHEDULES  # noqa: F401 - re-exported

_BETAS = {"b1": 0.9, "b2": 0.999}  # optax's (and PyTorch's) Adam defaults


def make_schedule(
    optim: ml_collections.ConfigDict, num_steps: int, steps_per_epoch: int | None
) -> optax.Schedule:
    """The learning rate as a function of the 0-based update count."""
    lr, warmup = optim.learning_rate, optim.warmup_steps
    if optim.schedule == "cosine":
        return optax.warmup_cosine_decay_schedule(
            0.0, lr, warmup, max(num_steps, warmup + 1), end_value=optim.min_learning_rate
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
    if name not in OPTIMIZERS:
        raise ValueError(f"optim.optimizer must be one of {OPTIMIZERS}, got {name!r}.")
    mask = decay_mask if optim.decay_matrices_only else None
    # Only what differs from optax's defaults is passed: a plateau optimizer injects every
    # numeric argument into its state, whose structure checkpoints are checked against.
    kwargs = {"weight_decay": wd} if name == "adamw" else {}
    if name == "adamw" and mask is not None:
        kwargs["mask"] = mask
    if name in ("adam", "adamw"):
        kwargs.update(
            {k: v for k, v in (("b1", optim.beta1), ("b2", optim.beta2)) if v != _BETAS[k]}
        )
    if name == "sgd":
        kwargs["momentum"] = optim.momentum or None
    make = {"adamw": optax.adamw, "adam": optax.adam, "sgd": optax.sgd}[name]
    if optim.schedule == "plateau":
        schedule = None
        inject = optax.inject_hyperparams(make, static_args=("mask",) if "mask" in kwargs else ())
        tx = inject(learning_rate=optim.learning_rate, **kwargs)
    else:
        schedule = make_schedule(optim, num_steps, steps_per_epoch)
        tx = make(schedule, **kwargs)
    if wd > 0 and name != "adamw":
        tx = optax.chain(optax.add_decayed_weights(wd, mask), tx)
    if optim.nt_asgd_patience > 0:
        tx = averaged(tx)
    return tx, schedule


def decay_mask(params):
    """True for the tensors weight decay acts on under decay_matrices_only: ndim >= 2."""
    return jax.tree.map(lambda p: jnp.ndim(p) >= 2, params)


class AveragingState(NamedTuple):
    """State of `averaged`: the inner optimizer's, the running mean of the iterates since the
    switch, and how many iterates it holds (0 = averaging not started)."""

    inner: Any
    average: Any
    count: jax.Array


def averaged(inner: optax.GradientTransformation) -> optax.GradientTransformation:
    """Iterate averaging on top of `inner` (ASGD; Polyak & Juditsky 1992): once started
    (`start_averaging`), every update also folds the new parameters into their running mean,
    avg_k = avg_{k-1} + (p_k - avg_{k-1}) / k. The updates themselves are `inner`'s."""

    def init(params):
        zeros = jax.tree.map(jnp.zeros_like, params)
        return AveragingState(inner.init(params), zeros, jnp.zeros((), jnp.int32))

    def update(updates, state, params=None):
        updates, inner_state = inner.update(updates, state.inner, params)
        active = state.count > 0
        count = state.count + active.astype(jnp.int32)
        new_params = optax.apply_updates(params, updates)
        k = jnp.maximum(count, 1).astype(jnp.float32)
        average = jax.tree.map(
            lambda a, p: jnp.where(active, a + (p - a) / k.astype(a.dtype), a),
            state.average,
            new_params,
        )
        return updates, AveragingState(inner_state, average, count)

    return optax.GradientTransformation(init, update)


def start_averaging(opt_state: AveragingState, params) -> AveragingState:
    """Starts the average at the current iterate (count 1). A copy: the train step donates
    its state, and one buffer cannot be donated twice."""
    average = jax.tree.map(jnp.copy, params)
    return opt_state._replace(average=average, count=jnp.ones((), jnp.int32))


def eval_params(state):
    """The parameters to evaluate and checkpoint as "the model": the iterate average once
    NT-ASGD has switched, else the parameters themselves."""
    opt_state = state.opt_state
    if isinstance(opt_state, AveragingState) and int(opt_state.count) > 0:
        return opt_state.average
    return state.params


def nt_asgd_triggered(history: list[float], value: float, patience: int) -> bool:
    """Merity et al. 2018's non-monotone trigger: `value` (this validation pass) is worse than
    the best of the passes before the last `patience` ones (`history`, oldest first)."""
    return len(history) > patience and value > min(history[:-patience])


def _find_injected(opt_state):
    """The `inject_hyperparams` state inside `opt_state` (alone, averaged or in a chain)."""
    if hasattr(opt_state, "hyperparams"):
        return opt_state
    if isinstance(opt_state, AveragingState):
        return _find_injected(opt_state.inner)
    if isinstance(opt_state, tuple):
        for state in opt_state:
            found = _find_injected(state)
            if found is not None:
                return found
    return None


def _replace_injected(opt_state, new):
    """`opt_state` with its `inject_hyperparams` state replaced by `new`."""
    if hasattr(opt_state, "hyperparams"):
        return new
    if isinstance(opt_state, AveragingState):
        return opt_state._replace(inner=_replace_injected(opt_state.inner, new))
    if isinstance(opt_state, tuple):
        items = [_replace_injected(s, new) for s in opt_state]
        return type(opt_state)(*items) if hasattr(opt_state, "_fields") else tuple(items)
    return opt_state


def _injected(opt_state):
    found = _find_injected(opt_state)
    if found is None:
        raise ValueError(
            "the optimizer state has no injected learning rate (schedule != 'plateau')."
        )
    return found


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
    return _replace_injected(opt_state, injected._replace(hyperparams=hyperparams)), True
