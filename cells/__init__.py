"""cells: fused Elman RNN, LSTM and GRU cells for JAX.

    import cells
    cell = cells.LSTM(hidden_size=256)
    params = cell.init(key, input_size=128)
    ys, carry = cells.scan(cell, params, xs)        # xs [B, T, I] -> ys [B, T, H]
"""

from cells.base import Cell, LSTMState, Params, RNNState
from cells.gru import GRU
from cells.layers import Bidirectional, Stack, dropout
from cells.lstm import LSTM
from cells.scan import reference_scan, scan
from cells.simple import SimpleRNN, identity_init

__all__ = [
    "Bidirectional",
    "Cell",
    "GRU",
    "LSTM",
    "LSTMState",
    "Params",
    "RNNState",
    "SimpleRNN",
    "Stack",
    "dropout",
    "identity_init",
    "reference_scan",
    "scan",
]
