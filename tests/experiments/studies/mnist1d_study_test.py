"""The MNIST-1D study: its grid (the published models, then every cell) and its table (mean ±
std over seeds in percent, the final-model column, the best of each column in bold)."""

import json

import cells
from experiments.studies.mnist1d import study


def test_the_grid_runs_the_published_models_then_every_cell():
    runs = study.mnist1d_runs("unused")
    assert len(runs) == 3 + 9 + len(cells.names(grids=False)) * 3
    assert runs[0].config == "mnist1d.py:cell=gru,torch_init=True,seed=0"
    assert runs[12].name == "mnist1d_gru_s0"


def _write(directory, name, accuracy, params=10, wall=5.0):
    record = {"name": name, "test": {"accuracy": accuracy}, "params": params, "wall_time_s": wall}
    (directory / f"{name}.json").write_text(json.dumps(record))


def test_the_table_comes_from_the_records(tmp_path):
    for seed, (cnn, mlp) in enumerate([(0.9, 0.5), (0.8, 0.6), (0.7, 0.7)]):
        _write(tmp_path, f"mnist1d_cnn_s{seed}", cnn)
        _write(tmp_path, f"mnist1d_mlp_s{seed}", mlp)
    final = [{"name": f"mnist1d_cnn_s{s}", "final_test": {"accuracy": 0.5}} for s in range(3)]
    (tmp_path / "mnist1d_final_model.json").write_text(json.dumps({"rows": final}))
    table = study.results_table(str(tmp_path))
    assert "| 10 | **80.0 ± 10.0%** (90.0, 80.0, 70.0) | **50.0 ± 0.0%** (50.0, 50.0, 50.0) |" in (
        table
    )
    assert "| 60.0 ± 10.0% (50.0, 60.0, 70.0) | - | 68% | 5-5 s |" in table
    assert "GRU" not in table  # rows without records are left out
