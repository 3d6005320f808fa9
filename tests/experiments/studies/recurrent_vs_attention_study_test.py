"""The recurrent-vs-attention study: its grid chooses by the like-for-like loss, steps past an
edge while its best sits on one (as far as the rate's reach), the 45-minute budget follows the
15-minute search, the final runs follow the choice and alone fill the table, and every config
validates."""

from __future__ import annotations

import json
import os

import pytest

from experiments.configs import shakespeare_budget
from experiments.studies.recurrent_vs_attention import grid, study
from train import validate


def _record(loss: float, carried: float | None = None, minutes: int = 1) -> dict:
    record = {
        "valid": {"loss": loss},
        "steps": 100,
        "params": 1000,
        "config": {"train": {"batch_size": 32, "seq_len": 128}},
        "time_budget": {"train_s": 60.0 * minutes},
    }
    if carried is not None:
        record["valid_carried"] = {"loss": carried}
    return record


def _write(results, name, record):
    with open(os.path.join(results, f"{name}.json"), "w") as f:
        json.dump(record, f)


@pytest.mark.parametrize("family", grid.FAMILIES)
def test_every_size_the_grid_or_its_extension_can_run_validates(family):
    for size in grid.ladder(family):
        args = f"family={family},minutes=1,{size.args()},learning_rate={grid.RATES[family][0]}"
        validate.validate(shakespeare_budget.get_config(args))


def _search(results, family, minutes, loss_of):
    """Seed-0 records of the grid at `minutes`, each loss loss_of(size index, rate index)."""
    for size, rate in grid.searched(family, minutes, grid_records(results)):
        i, j = grid.SIZES[family].index(size), grid.RATES[family].index(rate)
        _write(results, grid.name(family, minutes, size, rate, 0), _record(loss_of(i, j)))


def test_the_best_setting_is_chosen_by_the_window_loss_and_trained_again(tmp_path):
    results = str(tmp_path)
    family, sizes, rates = "gru", grid.SIZES["gru"], grid.RATES["gru"]
    assert study.GROUPS["final_1"](results) == []  # nothing searched yet
    for i, size in enumerate(sizes):
        for j, rate in enumerate(rates):
            loss = 2.0 - 0.1 * (i == 1) - 0.05 * j
            # The carried-state score never chooses: it favours another setting here.
            _write(results, grid.name(family, 1, size, rate, 0), _record(loss, carried=1.0 + i))
    # The larger rate is on the rate axis's edge: one step up is tried too, and loses.
    assert grid.extension(family, 1, grid_records(results)) == [(sizes[1], 0.0125)]
    _write(results, grid.name(family, 1, sizes[1], 0.0125, 0), _record(1.95, carried=0.5))
    assert grid.best(family, 1, grid_records(results)) == (sizes[1], rates[1])
    finals = [r.name for r in study.GROUPS["final_1"](results)]
    assert finals == [f"gru_1m_L2H256_lr0.005_final_s{s}" for s in (0, 1, 2)]
    # Until every final run is in, the table shows the search's seed 0 and no figure is drawn.
    assert "1.850 (search's seed 0; final runs pending)" in study.budget_table(results)
    assert study.figures(results, "", str(tmp_path / "figures")) == []
    for s, value in enumerate((1.9, 1.8, 1.7)):
        _write(results, finals[s], _record(value, carried=1.5))
    table = study.budget_table(results)
    assert "| 2 x 256, lr 0.005 |" in table and "1.800 ± 0.100 (n=3)" in table
    assert study.figures(results, "", str(tmp_path / "figures"))


def test_a_best_on_the_grid_s_edge_is_searched_one_step_past_it(tmp_path):
    results = str(tmp_path)
    family, sizes, rates = "gpt", grid.SIZES["gpt"], grid.RATES["gpt"]
    assert study.GROUPS["edge_1"](results) == []  # nothing to extend before the grid is done
    # The smallest size at the largest rate wins: the corner every family chose at 1 minute.
    _search(results, family, 1, lambda i, j: 2.5 + 0.1 * i - 0.05 * j)
    found = grid_records(results)
    half = grid.Size(2, 32)
    assert grid.extension(family, 1, found) == [(sizes[0], 0.009), (half, rates[1])]
    assert [r.name for r in study.GROUPS["edge_1"](results)] == [
        "gpt_1m_L2H64_lr0.009_s0", "gpt_1m_L2H32_lr0.003_s0"]  # fmt: skip
    # Until the extension is done nothing is rerun, and the table says the choice is not final.
    assert grid.best(family, 1, found) is None and study.GROUPS["final_1"](results) == []
    assert "2 x 64, lr 0.003 (grid's best; extension pending)" in study.budget_table(results)
    _write(results, "gpt_1m_L2H64_lr0.009_s0", _record(2.40))
    _write(results, "gpt_1m_L2H32_lr0.003_s0", _record(2.42))
    # The larger rate won, so it is on the edge again: one more step up, then another.
    assert grid.extension(family, 1, grid_records(results))[2:] == [(sizes[0], 0.027)]
    assert grid.best(family, 1, grid_records(results)) is None
    _write(results, "gpt_1m_L2H64_lr0.027_s0", _record(2.38))
    assert grid.extension(family, 1, grid_records(results))[3:] == [(sizes[0], 0.081)]
    _write(results, "gpt_1m_L2H64_lr0.081_s0", _record(2.37))
    # Three steps past the grid's 0.003 is as far as the rate goes; the table says it is an edge.
    assert len(grid.extension(family, 1, grid_records(results))) == 4
    assert grid.best(family, 1, grid_records(results)) == (sizes[0], 0.081)
    assert grid.edges(family, 1, grid_records(results)) == ["largest rate"]
    assert [r.name for r in study.GROUPS["final_1"](results)] == [
        f"gpt_1m_L2H64_lr0.081_final_s{s}" for s in (0, 1, 2)]  # fmt: skip
    table = study.budget_table(results)
    assert "2 x 64, lr 0.081 (on an edge of what was tried: largest rate)" in table


def test_the_extension_stops_where_the_best_is_interior(tmp_path):
    results = str(tmp_path)
    family, sizes = "gru", grid.SIZES["gru"]
    _search(results, family, 1, lambda i, j: 2.0 + 0.1 * i - 0.05 * j)  # the corner again
    half = grid.Size(1, 128)
    assert grid.extension(family, 1, grid_records(results)) == [(sizes[0], 0.0125),
                                                                (half, 0.005)]  # fmt: skip
    _write(results, grid.name(family, 1, sizes[0], 0.0125, 0), _record(1.9))  # wins
    _write(results, grid.name(family, 1, half, 0.005, 0), _record(2.0))
    assert grid.extension(family, 1, grid_records(results))[2:] == [(sizes[0], 0.0312)]
    _write(results, grid.name(family, 1, sizes[0], 0.0312, 0), _record(2.1))  # loses
    found = grid_records(results)
    assert len(grid.extension(family, 1, found)) == 3
    assert grid.best(family, 1, found) == (sizes[0], 0.0125) and grid.edges(family, 1, found) == []
    assert "1 x 256, lr 0.0125 |" in study.budget_table(results)


def test_an_interior_best_is_not_extended_and_a_low_rate_steps_down(tmp_path):
    results = str(tmp_path)
    # The middle size at the smaller rate: only the rate axis is on an edge.
    _search(results, "lstm", 5, lambda i, j: 2.0 - 0.2 * (i == 1) + 0.1 * j)
    middle = grid.SIZES["lstm"][1]
    assert grid.extension("lstm", 5, grid_records(results)) == [(middle, 0.0008)]


def test_the_45_minute_search_takes_the_two_best_sizes_at_15_each_at_its_best_rate(tmp_path):
    results = str(tmp_path)
    family = "lstm"
    assert study.GROUPS["search_45"](results) == []
    medium, large = grid.SIZES[family][1:]
    # At 15 minutes the grid is the two larger sizes; the larger rate wins for both, the
    # medium size overall, so the extension runs it at 0.0125 and the smallest size at 0.005.
    _search(results, family, 15, lambda i, j: 2.0 + 0.1 * (i == 2) - 0.1 * j)
    assert grid.extension(family, 15, grid_records(results)) == [
        (medium, 0.0125), (grid.SIZES[family][0], 0.005)]  # fmt: skip
    assert study.GROUPS["search_45"](results) == []  # waits for the extension
    _write(results, grid.name(family, 15, medium, 0.0125, 0), _record(2.5))  # worse
    smallest, half = grid.SIZES[family][0], grid.ladder(family)[0]
    _write(results, grid.name(family, 15, smallest, 0.005, 0), _record(1.5))  # best
    # Now the smallest size leads, tried at one rate and at the edge of the sizes tried: one
    # step up and down in rate at its size, and one size smaller.
    assert grid.extension(family, 15, grid_records(results))[2:] == [
        (smallest, 0.0125), (smallest, 0.002), (half, 0.005)]  # fmt: skip
    assert study.GROUPS["search_45"](results) == []  # waits for the extension
    for rate, value in ((0.0125, 1.6), (0.002, 1.7)):
        _write(results, grid.name(family, 15, smallest, rate, 0), _record(value))
    _write(results, grid.name(family, 15, half, 0.005, 0), _record(1.95))  # behind the medium
    runs = [r.name for r in study.GROUPS["search_45"](results)]
    assert runs == [grid.name(family, 45, grid.SIZES[family][0], 0.005, 0),
                    grid.name(family, 45, medium, 0.005, 0)]  # fmt: skip
    assert "edge_45" not in study.GROUPS
    for name, value in zip(runs, (1.4, 1.6), strict=True):
        _write(results, name, _record(value, minutes=45))
    finals = [r.name for r in study.GROUPS["final_45"](results)]
    assert finals == [grid.final_name(family, 45, grid.SIZES[family][0], 0.005, 0)]  # one seed


def grid_records(results):
    return study._budget_records(results)


def test_nanogpt_data_is_written_as_their_prepare_script_prints_it(tmp_path):
    import numpy as np

    from experiments.lab import records
    from experiments.studies.recurrent_vs_attention import nanogpt_reference

    (tmp_path / "data" / "shakespeare_char").mkdir(parents=True)
    text = os.path.join(records.ROOT, "data", "tinyshakespeare", "input.txt.gz")
    nanogpt_reference.prepare(str(tmp_path), text)
    folder = tmp_path / "data" / "shakespeare_char"
    # Their prepare.py's closing comment: 1,003,854 / 111,540 tokens, 65 characters.
    assert len(np.fromfile(folder / "train.bin", np.uint16)) == 1_003_854
    assert len(np.fromfile(folder / "val.bin", np.uint16)) == 111_540
    assert int(np.fromfile(folder / "train.bin", np.uint16).max()) == 64
