"""reference_numpy.STEPS: one float64 step per registered cell, keyed by its registered name,
and a registered cell without one fails naming the cell and the file to edit."""

import cells_testing as ct
import numpy as np
import pytest
import reference_numpy

import cells


def test_every_registered_cell_has_a_reference_step_and_no_entry_is_stale():
    assert set(reference_numpy.STEPS) == set(cells.names())


@pytest.mark.parametrize("name", cells.names())
def test_the_step_is_the_entry_of_the_registered_name(name, monkeypatch):
    marker = object()
    monkeypatch.setitem(reference_numpy.STEPS, name, lambda cell: marker)
    assert reference_numpy.step_fn(ct.CELLS[name]) is marker


def test_a_registered_cell_without_an_entry_names_itself_and_the_file(monkeypatch):
    monkeypatch.delitem(reference_numpy.STEPS, "irnn")  # its parent SimpleRNN's is not taken
    with pytest.raises(ValueError, match=r"'irnn'.*tests/cells/reference_numpy\.py"):
        reference_numpy.step_fn(ct.CELLS["irnn"])


def test_an_unregistered_subclass_uses_its_nearest_registered_ancestor(monkeypatch):
    class Mine(cells.GRU):
        pass

    marker = object()
    monkeypatch.setitem(reference_numpy.STEPS, "gru", lambda cell: marker)
    assert reference_numpy.step_fn(Mine(ct.H)) is marker


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=() if n in cells.names() else pytest.mark.slow)
        for n in ct.CELL_IDS  # the option variants are checked per family too (lstm_test ...)
    ],
)
def test_every_cell_matches_its_float64_reference(name, x64):
    """`cells.scan` (fused) and `cells.reference_scan` against the NumPy step, in float64 with
    lengths, reverse and a random carry: the check a new registered cell's equations get by
    themselves (the per-family tests add float32, forward and more options)."""
    ct.check_against_numpy(
        ct.CELLS[name], lengths=ct.LENGTHS, reverse=True, dtype=np.float64, tol=1e-10
    )
