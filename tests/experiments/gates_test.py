"""Tests for experiments/gates.py: saturation statistics on a hand-made trace."""

import numpy as np

from experiments import gates


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
