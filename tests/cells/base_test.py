"""The hand-written backward is safe by construction (`cells.Cell.backward_rule`): a subclass
keeps its parent's only while it overrides nothing the forward could call."""

import dataclasses
import inspect

import cells_testing as ct
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cells
from cells import base

# Every registered class with a hand-written backward (the variants that only change defaults
# keep it; test_each_builtin_cell_declares_its_backward in registry_test.py).
WITH_BACKWARD = [n for n in cells.names() if ct.CELLS[n].backward_rule() is not None]


def _overridable(cls) -> list[str]:
    """Every method, property and class variable a subclass of `cls` could override that is not
    a dataclass field or forward-neutral (what `backward_rule` must treat as the forward)."""
    fields = {f.name for f in dataclasses.fields(cls)}
    names = set()
    for klass in cls.__mro__[:-1]:  # not object
        names |= {n for n in vars(klass) if n not in fields and n not in base._FORWARD_NEUTRAL}
    return sorted(names - {"fused_backward"})


def _passthrough_subclass(cls, name):
    """A subclass of `cls` that overrides `name` by an attribute computing the same thing: even
    an override that changes nothing drops the parent's backward (it cannot be told apart)."""
    attribute = inspect.getattr_static(cls, name)
    return dataclasses.dataclass(frozen=True)(type(f"Over_{name}", (cls,), {name: attribute}))


@pytest.mark.parametrize("name", WITH_BACKWARD)
def test_overriding_anything_the_forward_calls_drops_the_hand_written_backward(name):
    cls = cells.get(name)
    options = cls.example_options(ct.H)
    overridable = _overridable(cls)
    assert {"fused_step", "recurrent", "input_projection"} <= set(overridable)
    for attribute in overridable:
        sub = _passthrough_subclass(cls, attribute)
        assert sub(ct.H, **options).backward_rule() is None, attribute
        assert base.forward_overrides(sub, cls) == [f"Over_{attribute}.{attribute}"]


@pytest.mark.parametrize("name", WITH_BACKWARD)
def test_new_defaults_validation_and_initial_values_keep_it(name):
    cls = cells.get(name)

    def init(self, key, input_size):
        return jax.tree.map(lambda a: 2.0 * a, super(sub, self).init(key, input_size))

    def post_init(self):
        super(sub, self).__post_init__()

    namespace = {"init": init, "__post_init__": post_init, "__annotations__": {"extra": int}}
    namespace["extra"] = 3  # a new dataclass field
    sub = dataclasses.dataclass(frozen=True)(type("Neutral", (cls,), namespace))
    rule = sub(ct.H, **cls.example_options(ct.H)).backward_rule()
    assert type(rule) is type(ct.CELLS[name].backward_rule())


@dataclasses.dataclass(frozen=True)
class _TanhIndRNN(cells.IndRNN):
    """u enters as tanh(u) (the issue's example: the fused du was wrong by up to 14%)."""

    def effective_u(self, params):
        return jnp.tanh(params["u"])


@dataclasses.dataclass(frozen=True)
class _NoInputGateLSTM(cells.LSTM):
    """Changes the elementwise gate math only (error 4.0 in the fused gradient before)."""

    def _gate_math(self, params, c_prev, pre):
        return super()._gate_math(params, c_prev, {**pre, "i": pre["i"] + 2.0 * pre["g"]})


@dataclasses.dataclass(frozen=True)
class _SquashedProjectionLSTM(cells.LSTM):
    """Changes the projection only (error 0.3 in the fused gradient before)."""

    proj_size: int = 3

    def _project(self, params, m_BxH):
        return jnp.tanh(super()._project(params, m_BxH))


@pytest.mark.parametrize("cell_cls", [_TanhIndRNN, _NoInputGateLSTM, _SquashedProjectionLSTM])
def test_a_changed_forward_gets_autodiff_gradients_from_backward_fused(cell_cls):
    cell = cell_cls(ct.H)
    params = ct.random_params(cell)
    xs = ct.random_inputs()

    def grads(backward):
        def loss(p):
            ys, carry = cells.scan(cell, p, xs, backward=backward)
            return jnp.sum(jnp.sin(ys)) + jnp.sum(carry.h**2)

        return jax.grad(loss)(params)

    with pytest.warns(UserWarning, match="overrides of"):
        fused = grads("fused")
    expected = grads("autodiff")
    for name in expected:
        np.testing.assert_allclose(fused[name], expected[name], rtol=1e-6, atol=1e-6)
