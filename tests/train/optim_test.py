"""Learning-rate schedules against their formulas, and the optimizer choices."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from train import config_base, optim


def _optim(**kw) -> ml_collections.ConfigDict:
    o = config_base.base_config().optim
    o.update(kw)
    return o


def test_epoch_decay_is_zarembas_formula():
    """lr * factor ** max(0, epoch + 1 - after), epoch = step // steps_per_epoch (0-based)."""
    o = _optim(learning_rate=1.0, schedule="epoch_decay", decay_after_epochs=4, decay_factor=0.5)
    schedule = optim.make_schedule(o, num_steps=130, steps_per_epoch=10)
    for step in range(130):
        epoch = step // 10
        want = 1.0 * 0.5 ** max(0, epoch + 1 - 4)
        assert float(schedule(step)) == pytest.approx(want, rel=1e-6), step
    assert float(schedule(39)) == 1.0 and float(schedule(40)) == 0.5  # 4 epochs at full rate


def test_epoch_decay_needs_epochs():
    with pytest.raises(ValueError, match="steps_per_epoch"):
        optim.make_schedule(_optim(schedule="epoch_decay"), 10, None)


def test_constant_with_warmup():
    schedule = optim.make_schedule(_optim(learning_rate=0.2, warmup_steps=4), 100, None)
    got = [float(schedule(t)) for t in range(6)]
    np.testing.assert_allclose(got, [0.05, 0.1, 0.15, 0.2, 0.2, 0.2], rtol=1e-6)


def test_cosine():
    schedule = optim.make_schedule(_optim(learning_rate=0.1, schedule="cosine"), 100, None)
    for t in (0, 25, 50, 100):
        want = 0.1 * (1 + math.cos(math.pi * t / 100)) / 2
        assert float(schedule(t)) == pytest.approx(want, abs=1e-7)


@pytest.mark.parametrize("name", config_base.OPTIMIZERS)
def test_one_update(name):
    """sgd: p - lr g; adam/adamw first step: p - lr sign(g) (- lr wd p for adamw)."""
    o = _optim(optimizer=name, learning_rate=0.1, weight_decay=0.01 if name == "adamw" else 0.0)
    tx, _ = optim.make_optimizer(o, 10, None)
    params = {"w": jnp.array([1.0, -2.0, 3.0])}
    grads = {"w": jnp.array([0.5, 0.25, -1.0])}
    updates, _ = tx.update(grads, tx.init(params), params)
    p, g = np.asarray(params["w"]), np.asarray(grads["w"])
    if name == "sgd":
        want = -0.1 * g
    else:
        want = -0.1 * g / (np.abs(g) + 1e-8)
        if name == "adamw":
            want = want - 0.1 * 0.01 * p
    np.testing.assert_allclose(np.asarray(updates["w"]), want, rtol=1e-5)


def test_momentum_and_l2():
    o = _optim(optimizer="sgd", learning_rate=1.0, momentum=0.9, weight_decay=0.1)
    tx, _ = optim.make_optimizer(o, 10, None)
    params = {"w": jnp.array([2.0])}
    grads = {"w": jnp.array([1.0])}
    state = tx.init(params)
    u1, state = tx.update(grads, state, params)
    u2, _ = tx.update(grads, state, params)
    g = 1.0 + 0.1 * 2.0  # L2 added to the gradient
    assert float(u1["w"][0]) == pytest.approx(-g)
    assert float(u2["w"][0]) == pytest.approx(-(g + 0.9 * g))
    assert len(jax.tree.leaves(state)) > 0


@pytest.mark.parametrize("weight_decay", [0.0, 1e-4])
def test_plateau_decays_the_injected_rate_when_improvement_is_below_the_threshold(weight_decay):
    o = _optim(
        optimizer="sgd",
        learning_rate=1.0,
        schedule="plateau",
        decay_factor=0.5,
        plateau_metric="perplexity",
        plateau_threshold=1.0,
        weight_decay=weight_decay,
    )
    tx, schedule = optim.make_optimizer(o, num_steps=10, steps_per_epoch=5)
    assert schedule is None
    state = tx.init({"w": jnp.ones(3)})
    assert optim.learning_rate(state) == 1.0
    state, decayed = optim.plateau_step(o, state, None, 150.0)  # first pass: no previous
    assert not decayed and optim.learning_rate(state) == 1.0
    state, decayed = optim.plateau_step(o, state, 150.0, 140.0)  # improved by 10: keep
    assert not decayed and optim.learning_rate(state) == 1.0
    state, decayed = optim.plateau_step(o, state, 140.0, 139.5)  # by 0.5 < 1: halve
    assert decayed and optim.learning_rate(state) == 0.5
    state, _ = optim.plateau_step(o, state, 139.5, 141.0)  # worse: halve again
    assert optim.learning_rate(state) == 0.25
    # The update uses the current rate: w <- w - lr * (g + wd * w).
    updates, _ = tx.update({"w": jnp.ones(3)}, state, {"w": jnp.ones(3)})
    np.testing.assert_allclose(np.asarray(updates["w"]), -0.25 * (1.0 + weight_decay), rtol=1e-6)


@pytest.mark.slow  # the NT-ASGD test below resumes an optimizer-state schedule by default
def test_plateau_resumes_exactly_and_logs_the_rate(tmp_path):
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    import train_testing as tt

    from train import metrics, trainer

    plateau = {
        "optim.optimizer": "sgd",
        "optim.learning_rate": 0.5,
        "optim.schedule": "plateau",
        "optim.decay_factor": 0.5,
        "optim.plateau_threshold": 10.0,  # never met: the rate halves at every pass but the first
        "train.eval_every": 4,
        "train.checkpoint_every": 4,
    }
    whole = str(tmp_path / "whole")
    trainer.train_and_evaluate(tt.tiny_config(**plateau, **{"train.num_steps": 16}), whole)
    lrs = [e["lr"] for e in metrics.read_events(whole) if e["split"] == "train"]
    assert lrs == [0.5, 0.5, 0.25, 0.125]  # logged at steps 4, 8, 12, 16 (after the pass at 4)
    split = str(tmp_path / "split")
    trainer.train_and_evaluate(tt.tiny_config(**plateau, **{"train.num_steps": 8}), split)
    trainer.train_and_evaluate(tt.tiny_config(**plateau, **{"train.num_steps": 16}), split)
    tt.assert_trees_equal(tt.params_of(whole), tt.params_of(split))


def test_plateau_options_are_validated():
    from train import errors, validate

    sys_path_config = config_base.base_config()
    sys_path_config.optim.plateau_threshold = 1.0
    with pytest.raises(errors.ConfigError, match="applies to schedule 'plateau' only"):
        validate._check_values(sys_path_config, config_base.base_config())
    c = config_base.base_config()
    c.optim.schedule = "plateau"
    with pytest.raises(errors.ConfigError, match="1.0 \\(no decay\\)"):
        validate._check_values(c, config_base.base_config())
    c.optim.decay_factor = 0.5
    c.optim.warmup_steps = 10
    with pytest.raises(errors.ConfigError, match="warmup_steps applies to"):
        validate._check_values(c, config_base.base_config())


def test_averaged_keeps_the_mean_of_the_iterates_from_the_switch_on():
    tx = optim.averaged(optax.sgd(0.1))
    params = {"w": jnp.asarray([1.0, -2.0])}
    state = tx.init(params)
    iterates = []
    for k in range(6):
        if k == 2:
            state = optim.start_averaging(state, params)
            iterates.append(params["w"])
        grads = {"w": 2.0 * params["w"] + k}  # any gradients
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        if k >= 2:
            iterates.append(params["w"])
    np.testing.assert_allclose(
        np.asarray(state.average["w"]), np.mean(np.stack(iterates), axis=0), rtol=1e-6
    )
    assert int(state.count) == len(iterates)


def test_nt_asgd_trigger_is_merity_non_monotone_rule():
    assert not optim.nt_asgd_triggered([], 5.0, 2)
    assert not optim.nt_asgd_triggered([5.0, 4.0], 6.0, 2)  # nothing before the last 2
    assert optim.nt_asgd_triggered([5.0, 4.0, 3.0], 5.5, 2)  # worse than 5.0, the best before
    assert not optim.nt_asgd_triggered([5.0, 4.0, 3.0], 4.5, 2)


def test_nt_asgd_evaluates_the_average_and_resumes_exactly(tmp_path, monkeypatch):
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    import train_testing as tt

    from train import checkpoint, evaluate, trainer

    # Trigger at the second validation pass, whatever the values.
    monkeypatch.setattr(optim, "nt_asgd_triggered", lambda history, value, n: len(history) == 1)
    asgd = {
        "optim.optimizer": "sgd",
        "optim.learning_rate": 0.3,
        "optim.nt_asgd_patience": 1,
        "train.eval_every": 4,
        "train.checkpoint_every": 4,
    }
    whole = str(tmp_path / "whole")
    result = trainer.train_and_evaluate(tt.tiny_config(**asgd, **{"train.num_steps": 16}), whole)
    trained = checkpoint.load_trained(whole, "latest")
    ckpts = checkpoint.Checkpoints(whole)
    state, meta = ckpts.restore(16, _abstract(whole))
    ckpts.close()
    assert meta["nt_asgd_step"] == 8 and int(state.opt_state.count) == 9  # steps 8..16
    tt.assert_trees_equal(trained.params, state.opt_state.average)  # "the model" is the average
    assert not np.allclose(
        np.asarray(jax.tree.leaves(state.params)[0]), np.asarray(jax.tree.leaves(trained.params)[0])
    )
    got = evaluate.evaluate_workdir(whole, "test")
    assert {k: got[k] for k in result["test"]} == result["test"]  # the average, evaluated again
    split = str(tmp_path / "split")
    trainer.train_and_evaluate(tt.tiny_config(**asgd, **{"train.num_steps": 12}), split)
    trainer.train_and_evaluate(tt.tiny_config(**asgd, **{"train.num_steps": 16}), split)
    tt.assert_trees_equal(tt.params_of(whole), tt.params_of(split))


def _abstract(workdir):
    from train import state as state_lib
    from train import workdir as workdir_lib
    from train.tasks import registry

    config = workdir_lib.load_config(workdir)
    return state_lib.abstract(config, registry.get_task(config))


def test_nt_asgd_needs_sgd():
    from train import errors, validate

    c = config_base.base_config()
    c.optim.nt_asgd_patience = 3
    with pytest.raises(errors.ConfigError, match="averages SGD iterates"):
        validate._check_values(c, config_base.base_config())
