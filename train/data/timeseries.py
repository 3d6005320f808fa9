"""Time-series data: a CSV / CSV.gz reader, the split rules, a train-only scaler, lazy windows.

    table = read_csv('data/ett/ETTh1.csv.gz', date_column='date')
    borders = informer_borders(len(table), input_len=96)      # {'train': (0, 8640), ...}
    scaler = StandardScaler.fit(table.values[slice(*borders['train'])])
    series_NxC = scaler.transform(table.values)
    windows = Windows(series_NxC, *borders['test'], input_len=96, horizon=24)
    x_BxLxC, y_BxHxC = windows.batch(np.arange(32))

Window i of a split [start, end) reads rows [start + i, start + i + L) as input and the next
H rows [start + i + L, start + i + L + H) as target, so a split holds (end - start) - L - H + 1
windows (Informer's `len(data_x) - seq_len - pred_len + 1`). Windows are gathered from the one
scaled [N, C] array on demand; no [num_windows, L, C] copy is ever made.

Errors in the data (missing column, non-numeric value or one beyond float32, rows out of time
order, too few rows) raise `ConfigError` with one line naming the file, the column / row and
what is valid.
"""

from __future__ import annotations

import csv
import dataclasses
import io

import numpy as np

from train.data import base
from train.errors import ConfigError

# Informer2020 data_loader.py, Dataset_ETT_hour: 12 months train, 4 val, 4 test (hours).
INFORMER_TRAIN_END = 12 * 30 * 24
INFORMER_VALID_END = INFORMER_TRAIN_END + 4 * 30 * 24
INFORMER_TEST_END = INFORMER_TRAIN_END + 8 * 30 * 24


@dataclasses.dataclass(frozen=True)
class Table:
    """A parsed CSV: the date strings [N], the numeric column names [C] and values [N, C]."""

    path: str
    dates: tuple[str, ...]
    columns: tuple[str, ...]
    values: np.ndarray  # float32 [N, C]

    def __len__(self) -> int:
        return self.values.shape[0]

    def column_index(self, name: str) -> int:
        if name not in self.columns:
            raise ConfigError(
                f"config.data.target={name!r} is not a numeric column of {self.path}; "
                f"valid: {', '.join(self.columns)}."
            )
        return self.columns.index(name)


def _open_text(path: str):
    """The file as text (`train.data.base.read_text`: gunzipped, checksum-verified, UTF-8)."""
    return io.StringIO(base.read_text(path), newline="")


def read_csv(path: str, date_column: str = "date", header: bool = True) -> Table:
    """Reads a CSV (or gzip-compressed CSV) with a header row and one date column, or, with
    header=False, a bare table of numbers (no header, no date column: LSTNet's exchange_rate
    file), whose columns are named '0', '1', ... and whose rows stand in for the dates.

    Args:
      path: the file; '.gz' files are decompressed on the fly; files bundled under
        data/ are checked against data/SHA256SUMS.
      date_column: the name of the date/time column; every other column must be numeric.
        An empty string means "the first column". Unused with header=False.
      header: whether the first row names the columns.

    Raises:
      ConfigError: missing file, missing date column, a non-numeric value, or no data rows.
    """
    with _open_text(path) as f:
        rows = list(csv.reader(f))
    rows = [r for r in rows if r and any(cell.strip() for cell in r)]
    if len(rows) < (2 if header else 1):
        raise ConfigError(
            f"config.data.path={path!r}: needs "
            + ("a header row and at least one data row." if header else "at least one row.")
        )
    if header:
        names = [name.strip() for name in rows[0]]
        data_rows, first = rows[1:], 2  # file line of the first data row
        date_name = date_column or names[0]
        if date_name not in names:
            raise ConfigError(
                f"config.data.date_column={date_name!r} is not a column of {path}; "
                f"columns: {', '.join(names)}."
            )
        d = names.index(date_name)
    else:
        names = [str(j) for j in range(len(rows[0]))]
        data_rows, first, d, date_name = rows, 1, None, ""
    keep = [j for j in range(len(names)) if j != d]
    values = np.empty((len(data_rows), len(keep)), np.float64)
    for n, row in enumerate(data_rows):
        if len(row) != len(names):
            raise ConfigError(
                f"{path}: row {n + first} has {len(row)} fields, "
                f"{'the header has' if header else 'the first row has'} {len(names)}."
            )
        for k, j in enumerate(keep):
            try:
                values[n, k] = float(row[j])
            except ValueError:
                raise ConfigError(
                    f"{path}: column {names[j]!r} row {n + first} has non-numeric value "
                    f"{row[j]!r}; every column except the date column must be numeric."
                ) from None
    if not np.isfinite(values).all():
        n, k = np.argwhere(~np.isfinite(values))[0]
        raise ConfigError(
            f"{path}: column {names[keep[k]]!r} row {n + first} is not finite ({values[n, k]})."
        )
    too_big = np.abs(values) > np.finfo(np.float32).max
    if too_big.any():
        n, k = np.argwhere(too_big)[0]
        raise ConfigError(
            f"{path}: column {names[keep[k]]!r} row {n + first} holds {values[n, k]:g}, beyond "
            "float32's range (3.4e38); rescale the column."
        )
    if d is None:
        dates = tuple(str(n) for n in range(len(data_rows)))
    else:
        dates = tuple(row[d] for row in data_rows)
        _check_time_order(path, date_name, dates)
    return Table(path, dates, tuple(names[j] for j in keep), values.astype(np.float32))


def _check_time_order(path: str, column: str, dates: tuple[str, ...]) -> None:
    """Refuses rows out of time order (splits are taken by position: a newest-first file would
    train on the latest rows and test on the earliest). Dates that do not parse as ISO 8601
    (numpy datetime64) are not checked."""
    try:
        stamps = np.array([np.datetime64(x.strip()) for x in dates])
    except ValueError:
        return
    back = np.flatnonzero(stamps[1:] < stamps[:-1])
    if back.size:
        n = int(back[0])
        raise ConfigError(
            f"{path}: rows are not in time order ({column} {dates[n + 1]!r} on row {n + 3} comes "
            f"after {dates[n]!r}); sort the file oldest first (splits are taken by position)."
        )


# -- splits ---------------------------------------------------------------------------------
def informer_borders(num_rows: int, input_len: int) -> dict[str, tuple[int, int]]:
    """Informer's ETT-hour split: train [0, 8640), valid [8640 - L, 11520), test [11520 - L, 14400).

    The valid and test slices start L rows early so that their first target row is the first
    row after the previous split. Rows after 14400 are unused.
    """
    if num_rows < INFORMER_TEST_END:
        raise ConfigError(
            f"config.data.split='informer' needs at least {INFORMER_TEST_END} rows "
            f"(ETT hourly layout), the file has {num_rows}; use split='fraction'."
        )
    return {
        "train": (0, INFORMER_TRAIN_END),
        "valid": (INFORMER_TRAIN_END - input_len, INFORMER_VALID_END),
        "test": (INFORMER_VALID_END - input_len, INFORMER_TEST_END),
    }


def ltsf_borders(num_rows: int, input_len: int) -> dict[str, tuple[int, int]]:
    """DLinear's / SegRNN's split of non-ETT sets (their Dataset_Custom): n_train = int(0.7 N),
    n_test = int(0.2 N), valid the rows between; valid and test start L rows early.

    Differs from `fraction_borders(N, L, 0.7, 0.1)` in which split gets the rounding remainder
    (here valid; there test): Exchange-Rate's 7,588 rows give valid 760 / test 1,517 here.
    """
    n_train, n_test = int(num_rows * 0.7), int(num_rows * 0.2)
    n_valid = num_rows - n_train - n_test
    if min(n_train, n_valid, n_test) <= input_len:
        raise ConfigError(
            f"config.data.split='ltsf': {num_rows} rows give {n_train}/{n_valid}/{n_test} "
            f"train/valid/test rows, too few for input_len={input_len}."
        )
    return {
        "train": (0, n_train),
        "valid": (n_train - input_len, n_train + n_valid),
        "test": (num_rows - n_test - input_len, num_rows),
    }


def fraction_borders(
    num_rows: int, input_len: int, train_frac: float, valid_frac: float
) -> dict[str, tuple[int, int]]:
    """Chronological split by fractions (Informer's Dataset_Custom rule).

    train = [0, n_train), valid = [n_train - L, n_train + n_valid), test = [n_train + n_valid
    - L, N), with n_train = int(N * train_frac), n_valid = int(N * valid_frac); the test split
    gets the remainder.
    """
    if not (0 < train_frac < 1 and 0 < valid_frac < 1 and train_frac + valid_frac < 1):
        raise ConfigError(
            f"config.data.train_frac={train_frac} and valid_frac={valid_frac} must be in (0, 1) "
            "with a sum below 1 (the test split gets the rest)."
        )
    n_train = int(num_rows * train_frac)
    n_valid = int(num_rows * valid_frac)
    return {
        "train": (0, n_train),
        "valid": (max(0, n_train - input_len), n_train + n_valid),
        "test": (max(0, n_train + n_valid - input_len), num_rows),
    }


# -- scaling --------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class StandardScaler:
    """Per-column (x - mean) / std, with the population std (sklearn's StandardScaler)."""

    mean_C: np.ndarray
    std_C: np.ndarray

    @classmethod
    def fit(cls, values_NxC: np.ndarray) -> StandardScaler:
        values = np.asarray(values_NxC, np.float64)
        std = values.std(axis=0)
        std = np.where(std > 0, std, 1.0)  # a constant column stays centred, not divided by 0
        return cls(values.mean(axis=0), std)

    def transform(self, values_NxC: np.ndarray) -> np.ndarray:
        return ((np.asarray(values_NxC, np.float64) - self.mean_C) / self.std_C).astype(np.float32)

    def inverse_transform(self, values_NxC: np.ndarray) -> np.ndarray:
        return (np.asarray(values_NxC, np.float64) * self.std_C + self.mean_C).astype(np.float32)


# -- windows --------------------------------------------------------------------------------
class Windows:
    """The sliding (input, target) windows of one split, gathered lazily from [N, C] rows.

    Attributes:
      start, end: the split's rows [start, end) in the full series.
      input_len: L, the number of input rows; horizon: H, the number of target rows.
      in_cols, out_cols: column indices of the input and target channels.
    """

    def __init__(
        self,
        series_NxC: np.ndarray,
        start: int,
        end: int,
        input_len: int,
        horizon: int,
        in_cols=None,
        out_cols=None,
        split: str = "",
    ):
        self.series_NxC = series_NxC
        self.start, self.end = start, end
        self.input_len, self.horizon = input_len, horizon
        num_cols = series_NxC.shape[1]
        self.in_cols = np.arange(num_cols) if in_cols is None else np.asarray(in_cols)
        self.out_cols = np.arange(num_cols) if out_cols is None else np.asarray(out_cols)
        self.num_windows = (end - start) - input_len - horizon + 1
        if self.num_windows < 1:
            raise ConfigError(
                f"the {split or 'data'} split has {end - start} rows, too few for one window of "
                f"config.data.input_len={input_len} + config.data.horizon={horizon} rows."
            )

    def __len__(self) -> int:
        return self.num_windows

    def batch(self, idx_B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Windows idx_B -> (inputs [B, L, C_in], targets [B, H, C_out])."""
        first_B = self.start + np.asarray(idx_B)
        rows_BxL = first_B[:, None] + np.arange(self.input_len)[None, :]
        rows_BxH = first_B[:, None] + self.input_len + np.arange(self.horizon)[None, :]
        x = self.series_NxC[rows_BxL[:, :, None], self.in_cols[None, None, :]]
        y = self.series_NxC[rows_BxH[:, :, None], self.out_cols[None, None, :]]
        return x, y
