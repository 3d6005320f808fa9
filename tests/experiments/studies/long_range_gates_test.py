"""Tests for experiments/studies/long_range/gates.py: saturation statistics on a hand-made trace."""

import numpy as np

from experiments.studies.long_range import gates


def test_gate_statistics_by_hand():
    trace = {
        "f": np.array([[[0.01, 0.5], [0.99, 0.96]]]),  # 3 of 4 saturated
        "g": np.array([[[-0.99, 0.0], [0.5, 0.97]]]),  # 2 of 4
        "c": np.array([[[5.0, 5.0], [5.0, 5.0]]]),  # not a gate: skipped
        "a": np.array([[[0.0, 3.0], [-3.0, 0.1]]]),  # tanh: 2 of 4 beyond 0.95
    }
    stats = gates.gate_statistics(trace)
    assert set(stats) == {"f", "g", "tanh(a)"}
    assert stats["f"]["saturated"] == 0.75
    assert abs(stats["f"]["mean"] - np.mean([0.01, 0.5, 0.99, 0.96])) < 1e-12
    assert stats["g"]["saturated"] == 0.5
    assert stats["tanh(a)"]["saturated"] == 0.5
    assert abs(stats["tanh(a)"]["mean"] - np.mean(np.tanh([0.0, 3.0, -3.0, 0.1]))) < 1e-12


def test_heatmap_png(tmp_path):
    x = np.zeros((20, 2))
    x[[3, 15], 1] = 1.0
    heat = {"lstm": ("f", np.random.default_rng(0).uniform(size=(20, 4)), x)}
    path = tmp_path / "g.png"
    gates.plot_heatmaps(heat, 20, str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_held_gate_of_every_family():
    import cells

    expected = {"lstm": "f", "lstm_cifg": "f", "mgu": "f", "slstm": "f", "minlstm": "f",
                "gru": "z", "gru_ln": "z", "mingru": "z", "rnn": "tanh(a)", "irnn": None,
                "indrnn": None}  # fmt: skip
    for name, gate in expected.items():
        cls = cells.get(name)
        assert gates.held_gate(cls(8, **cls.example_options(8))) == gate, name


def test_gate_kinds_read_each_cells_names():
    import cells

    relu = gates.gate_statistics(
        {"a": np.array([[[-1.0, 2.0], [0.5, -3.0]]])}, kinds=gates.gate_kinds(cells.IRNN(2))
    )
    assert relu == {"relu(a)": {"mean": 0.625, "saturated": 0.5}}  # two units inactive
    kinds = gates.gate_kinds(cells.SLSTM(4))
    assert kinds["z"] == "tanh" and kinds["n"] is None and kinds["i"] == "sigmoid"
    assert gates.gate_kinds(cells.GRU(4))["z"] == "sigmoid"
