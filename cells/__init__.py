"""cells: fused recurrent cells for JAX, from the Elman RNN to the gated LSTM and GRU families.

Usage:

    import cells
    cell = cells.LSTM(hidden_size=256)
    params = cell.init(key, input_size=128)
    ys, carry = cells.scan(cell, params, xs)        # xs [B, T, I] -> ys [B, T, H]

    cells.names()                     # the registered cells: ('gru', 'gru_ln', 'indrnn', ...)
    cells.scan(cells.MinGRU(256), p, xs, mode='parallel')  # gates at once, associative scan
    cells.get("gru")(hidden_size=64)  # a cell class by name, or by 'package.module:Class'
    cells.regularization.weight_drop(key, 0.5, params)   # the AWD-LSTM regularisers
"""

import importlib

from cells import regularization
from cells.base import Cell, LSTMState, MLSTMState, Params, RNNState, SLSTMState
from cells.blocks import ResidualStack
from cells.convlstm import ConvLSTM
from cells.gru import GRU, LayerNormGRU
from cells.hawk import HawkBlock, HawkState
from cells.indrnn import IndRNN
from cells.layers import Bidirectional, Stack, dropout
from cells.linear_scan import LinearRecurrentCell
from cells.lstm import CIFGLSTM, LSTM, LSTMP, LayerNormLSTM, PeepholeLSTM
from cells.mgu import MGU
from cells.minimal import MinGRU, MinLSTM
from cells.mlstm import MLSTM
from cells.registry import get, name_of, names, register
from cells.rglru import RGLRU
from cells.sequence import reference_scan, scan
from cells.simple import IRNN, SimpleRNN, identity_init
from cells.slstm import SLSTM

__all__ = [
    "Bidirectional",
    "CIFGLSTM",
    "Cell",
    "ConvLSTM",
    "GRU",
    "HawkBlock",
    "HawkState",
    "IRNN",
    "IndRNN",
    "LSTM",
    "LSTMP",
    "LayerNormGRU",
    "LayerNormLSTM",
    "LinearRecurrentCell",
    "MGU",
    "MLSTM",
    "MLSTMState",
    "MinGRU",
    "MinLSTM",
    "PeepholeLSTM",
    "RGLRU",
    "LSTMState",
    "Params",
    "RNNState",
    "ResidualStack",
    "SLSTM",
    "SLSTMState",
    "SimpleRNN",
    "Stack",
    "dropout",
    "get",
    "identity_init",
    "interop",
    "linen",
    "name_of",
    "names",
    "nnx",
    "reference_scan",
    "register",
    "regularization",
    "scan",
]

# Submodules imported on first use, so `import cells` stays light (no Flax module machinery,
# no conversion code): cells.nnx (Flax NNX modules), cells.linen (flax.linen modules),
# cells.interop (PyTorch / flax weight conversion).
_LAZY_SUBMODULES = ("interop", "linen", "nnx")


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"cells.{name}")
    raise AttributeError(f"module 'cells' has no attribute {name!r}")
