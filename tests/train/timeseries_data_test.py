"""Tests for train/data/timeseries.py: CSV reading, the split rules, the scaler, windows."""

import gzip
import os

import jax
import numpy as np
import pytest

from train.data import timeseries
from train.errors import ConfigError

jax.config.update("jax_numpy_rank_promotion", "raise")

ETT = os.path.join(os.path.dirname(__file__), "..", "..", "data", "ett", "ETTh1.csv.gz")


def write_csv(path, header, rows, compress=False):
    text = "\n".join([",".join(header)] + [",".join(map(str, r)) for r in rows]) + "\n"
    if compress:
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        with open(path, "w") as f:
            f.write(text)
    return str(path)


@pytest.fixture(scope="module")
def ett():
    return timeseries.read_csv(ETT, "date")


def test_reads_etth1(ett):
    assert ett.columns == ("HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT")
    assert ett.values.shape == (17420, 7)
    assert ett.dates[0] == "2016-07-01 00:00:00"
    np.testing.assert_allclose(ett.values[0, -1], 30.5310001373291, rtol=1e-6)


def test_gz_and_plain_read_the_same(tmp_path):
    rows = [[f"2020-01-{d:02d}", d, 2.5 * d] for d in range(1, 11)]
    plain = timeseries.read_csv(write_csv(tmp_path / "a.csv", ["t", "x", "y"], rows), "t")
    gz = timeseries.read_csv(write_csv(tmp_path / "a.csv.gz", ["t", "x", "y"], rows, True), "t")
    np.testing.assert_array_equal(plain.values, gz.values)
    assert plain.columns == gz.columns == ("x", "y")
    np.testing.assert_array_equal(plain.values[:, 1], 2.5 * np.arange(1, 11))


def test_informer_borders():
    assert timeseries.informer_borders(17420, 96) == {
        "train": (0, 8640),
        "valid": (8544, 11520),
        "test": (11424, 14400),
    }
    with pytest.raises(ConfigError, match="14400 rows"):
        timeseries.informer_borders(14399, 96)


def test_informer_window_counts(ett):
    # Informer's Dataset_ETT_hour.__len__ = len(data_x) - seq_len - pred_len + 1; its logs show
    # train 8521 / val 2857 / test 2857 for seq_len 96, pred_len 24.
    borders = timeseries.informer_borders(len(ett), 96)
    counts = {
        k: len(timeseries.Windows(ett.values, lo, hi, 96, 24)) for k, (lo, hi) in borders.items()
    }
    assert counts == {"train": 8521, "valid": 2857, "test": 2857}
    # The first test target is row 11520, right after the validation rows.
    w = timeseries.Windows(ett.values, *borders["test"], 96, 24)
    x, y = w.batch(np.array([0]))
    np.testing.assert_array_equal(y[0, 0], ett.values[11520])
    np.testing.assert_array_equal(x[0, -1], ett.values[11519])


def test_fraction_borders():
    b = timeseries.fraction_borders(100, 10, 0.7, 0.1)
    assert b == {"train": (0, 70), "valid": (60, 80), "test": (70, 100)}
    with pytest.raises(ConfigError, match="train_frac"):
        timeseries.fraction_borders(100, 10, 0.8, 0.3)


def test_scaler_fitted_on_train_only(ett):
    borders = timeseries.informer_borders(len(ett), 96)
    train = ett.values[: borders["train"][1]].astype(np.float64)
    scaler = timeseries.StandardScaler.fit(ett.values[:8640])
    np.testing.assert_allclose(scaler.mean_C, train.mean(0), rtol=1e-10)
    np.testing.assert_allclose(scaler.std_C, train.std(0), rtol=1e-10)  # population std
    scaled = scaler.transform(ett.values)
    np.testing.assert_allclose(scaled[:8640].mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(scaled[:8640].std(0), 1.0, atol=1e-4)
    # The later rows differ in distribution, so a whole-series fit would not centre train.
    assert np.abs(scaled[8640:14400].mean(0)).max() > 0.1
    # Changing rows outside train leaves the fit unchanged.
    changed = ett.values.copy()
    changed[8640:] *= 100.0
    np.testing.assert_array_equal(
        timeseries.StandardScaler.fit(changed[:8640]).mean_C, scaler.mean_C
    )
    np.testing.assert_allclose(scaler.inverse_transform(scaled), ett.values, rtol=1e-5, atol=1e-4)


def test_windows_content_and_lazy():
    series = np.arange(40, dtype=np.float32).reshape(20, 2)
    w = timeseries.Windows(series, 5, 20, 4, 3, in_cols=[0, 1], out_cols=[1])
    assert len(w) == 15 - 4 - 3 + 1
    x, y = w.batch(np.array([0, 8]))
    assert x.shape == (2, 4, 2) and y.shape == (2, 3, 1)
    np.testing.assert_array_equal(x[1], series[13:17])
    np.testing.assert_array_equal(y[1, :, 0], series[17:20, 1])
    assert w.series_NxC is series  # no per-window copy is stored


def test_too_short_for_a_window():
    with pytest.raises(ConfigError, match="too few for one window"):
        timeseries.Windows(np.zeros((10, 1), np.float32), 0, 10, 8, 3, split="test")


def test_missing_date_column(tmp_path):
    path = write_csv(tmp_path / "a.csv", ["time", "x"], [["t0", 1], ["t1", 2]])
    with pytest.raises(ConfigError, match="date_column='date'.*columns: time, x") as e:
        timeseries.read_csv(path, "date")
    assert "\n" not in str(e.value)


def test_missing_target_column(tmp_path):
    table = timeseries.read_csv(
        write_csv(tmp_path / "a.csv", ["t", "x"], [["a", 1], ["b", 2]]), "t"
    )
    with pytest.raises(ConfigError, match="target='OT'.*valid: x"):
        table.column_index("OT")


def test_non_numeric_value(tmp_path):
    path = write_csv(tmp_path / "a.csv", ["t", "x", "y"], [["a", 1, 2], ["b", 3, "n/a"]])
    with pytest.raises(ConfigError, match="column 'y' row 3 has non-numeric value 'n/a'"):
        timeseries.read_csv(path, "t")


def test_missing_file():
    with pytest.raises(ConfigError, match="no such file"):
        timeseries.read_csv("/nonexistent/x.csv")


def test_first_column_is_the_default_date(tmp_path):
    path = write_csv(tmp_path / "a.csv", ["Month", "P"], [["1949-01", 112], ["1949-02", 118]])
    table = timeseries.read_csv(path, "")
    assert table.columns == ("P",) and table.dates == ("1949-01", "1949-02")


def test_bare_table_without_header_or_dates(tmp_path):
    path = tmp_path / "bare.txt"
    path.write_text("1.0,2.0,3.0\n4.0,5.0,6.0\n")
    table = timeseries.read_csv(str(path), header=False)
    assert table.columns == ("0", "1", "2")
    np.testing.assert_array_equal(table.values, [[1, 2, 3], [4, 5, 6]])
    path.write_text("1.0,2.0,3.0\n4.0,x,6.0\n")
    with pytest.raises(ConfigError, match="column '1' row 2 has non-numeric value 'x'"):
        timeseries.read_csv(str(path), header=False)


def test_bundled_exchange_rate_and_dlinears_split():
    table = timeseries.read_csv("data/exchange_rate/exchange_rate.txt.gz", header=False)
    assert table.values.shape == (7588, 8)
    borders = timeseries.ltsf_borders(7588, 336)
    # DLinear's Dataset_Custom: 5311 train rows, 1517 test, 760 valid; later splits L early.
    assert borders == {"train": (0, 5311), "valid": (4975, 6071), "test": (5735, 7588)}
    with pytest.raises(ConfigError, match="too few for input_len=5000"):
        timeseries.ltsf_borders(7588, 5000)


def _window_counts(values, borders, input_len, horizon):
    return {
        split: len(timeseries.Windows(values, lo, hi, input_len, horizon))
        for split, (lo, hi) in borders.items()
    }


@pytest.mark.parametrize("input_len", [336, 720])
def test_ltsf_window_counts_per_horizon(ett, input_len):
    """DLinear's and SegRNN's loaders (len = rows - L - H + 1 per split): the valid and test
    counts do not depend on L (their splits start L rows early), train's does."""
    exchange = timeseries.read_csv("data/exchange_rate/exchange_rate.txt.gz", header=False).values
    for horizon, ett_test, ex_valid, ex_test in [
        (96, 2785, 665, 1422),
        (192, 2689, 569, 1326),
        (336, 2545, 425, 1182),
        (720, 2161, 41, 798),
    ]:
        borders = timeseries.informer_borders(len(ett), input_len)
        assert _window_counts(ett.values, borders, input_len, horizon) == {
            "train": 8640 - input_len - horizon + 1,
            "valid": ett_test,  # 2880 rows, as the test split
            "test": ett_test,
        }
        borders = timeseries.ltsf_borders(len(exchange), input_len)
        assert _window_counts(exchange, borders, input_len, horizon) == {
            "train": 5311 - input_len - horizon + 1,
            "valid": ex_valid,
            "test": ex_test,
        }


def test_a_path_under_the_former_data_directory_resolves_to_data():
    # Configs recorded before the data moved to data/ (result files, old workdirs) name it so.
    from train.data import base

    resolved = base.check_data_path("experiments/data/ett/ETTh1.csv.gz")
    assert resolved == base.DATA_DIR / "ett" / "ETTh1.csv.gz"
