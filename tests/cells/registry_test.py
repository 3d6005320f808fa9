"""The cell registry (names, import paths) and how a cell declares its hand-written backward."""

import dataclasses
import re
import sys
import textwrap
import warnings

import cells_testing as ct
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cells
from cells import kernels, sequence
from cells.kernels import step_grads


def test_builtin_cells_are_registered_under_their_names():
    assert {"lstm", "gru", "rnn"} <= set(cells.names())
    assert cells.get("lstm") is cells.LSTM
    assert cells.get("gru") is cells.GRU
    assert cells.get("rnn") is cells.SimpleRNN
    assert [cells.name_of(cells.get(n)) for n in cells.names()] == list(cells.names())


def test_unknown_name_lists_the_registered_cells():
    listed = re.escape(", ".join(cells.names()))
    with pytest.raises(ValueError, match=rf"unknown cell 'lstmm'; registered cells: {listed} "):
        cells.get("lstmm")


@pytest.mark.parametrize(
    "path, message",
    [
        ("no_such_module_xyz:Cell", "cannot import module 'no_such_module_xyz'"),
        ("cells.lstm:Nope", "has no attribute 'Nope'"),
        ("cells.base:matmul", "not a cells.Cell subclass"),
        ("cells.lstm:", "must look like 'package.module:ClassName'"),
        ("", "registered name"),
    ],
)
def test_bad_import_paths_are_one_line_errors(path, message):
    with pytest.raises(ValueError, match=message) as info:
        cells.get(path)
    assert "\n" not in str(info.value)


def test_import_path_finds_a_cell_outside_the_package(tmp_path, monkeypatch):
    (tmp_path / "mylab_cells_mod.py").write_text(
        textwrap.dedent(
            """
            import dataclasses
            import cells

            @dataclasses.dataclass(frozen=True)
            class ScaledRNN(cells.SimpleRNN):
                scale: float = 0.5

                def fused_step(self, params, carry, xp):
                    carry, h, gates = super().fused_step(params, carry, xp)
                    return cells.RNNState(self.scale * h), self.scale * h, gates
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    cls = cells.get("mylab_cells_mod:ScaledRNN")
    assert cls.__name__ == "ScaledRNN" and issubclass(cls, cells.Cell)
    assert cells.name_of(cls) == "mylab_cells_mod:ScaledRNN"
    sys.modules.pop("mylab_cells_mod", None)


def test_register_refuses_bad_names_non_cells_and_taken_names():
    with pytest.raises(ValueError, match="lower_snake_case"):
        cells.register("My-Cell")
    with pytest.raises(ValueError, match="not a cells.Cell subclass"):
        cells.register("not_a_cell")(dict)

    @dataclasses.dataclass(frozen=True)
    class Other(cells.SimpleRNN):
        pass

    with pytest.raises(ValueError, match="taken by cells.lstm.LSTM"):
        cells.register("lstm")(Other)
    assert cells.get("lstm") is cells.LSTM


def test_each_builtin_cell_declares_its_backward():
    assert isinstance(cells.LSTM(4).backward_rule(), step_grads.LSTMGrad)
    assert isinstance(cells.GRU(4).backward_rule(), step_grads.GRUGrad)
    assert isinstance(cells.SimpleRNN(4).backward_rule(), step_grads.SimpleRNNGrad)


@dataclasses.dataclass(frozen=True)
class _NewDefaultLSTM(cells.LSTM):
    """Changes only an initial value: the forward (and so the backward) is the LSTM's."""

    forget_bias: float = 3.0


@dataclasses.dataclass(frozen=True)
class _ScaledLSTM(cells.LSTM):
    """Overrides the forward: the LSTM's hand-written backward no longer matches it."""

    def fused_step(self, params, carry, xp):
        carry, h, gates = super().fused_step(params, carry, xp)
        return cells.LSTMState(0.5 * carry.h, carry.c), 0.5 * h, gates


def test_subclass_inherits_the_backward_only_while_its_forward_is_unchanged():
    assert isinstance(_NewDefaultLSTM(4).backward_rule(), step_grads.LSTMGrad)
    assert _ScaledLSTM(4).backward_rule() is None
    assert not kernels.supports(_ScaledLSTM(4))


def test_fused_on_a_cell_without_backward_falls_back_to_autodiff_and_warns_once():
    cell = _ScaledLSTM(ct.H)
    params = ct.random_params(cell)
    xs = ct.random_inputs()
    sequence._WARNED_NO_FUSED_BACKWARD.discard(
        (_ScaledLSTM, ("overrides of _ScaledLSTM.fused_step",))
    )

    def grads(backward):
        def loss(p):
            return jnp.sum(jnp.sin(cells.scan(cell, p, xs, backward=backward)[0]))

        return jax.grad(loss)(params)

    with pytest.warns(
        UserWarning, match="_ScaledLSTM with overrides of _ScaledLSTM.fused_step has no"
    ):
        fused = grads("fused")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second call does not warn again
        fused_again = grads("fused")
    expected = grads("autodiff")
    for name in expected:
        np.testing.assert_array_equal(fused[name], expected[name])
        np.testing.assert_array_equal(fused_again[name], expected[name])


def test_grid_cells_can_be_left_out_of_vector_studies():
    assert "convlstm" in cells.names() and "convlstm" not in cells.names(grids=False)
    assert set(cells.names()) - set(cells.names(grids=False)) == {"convlstm"}
    assert cells.ConvLSTM.on_grids and not cells.LSTM.on_grids
