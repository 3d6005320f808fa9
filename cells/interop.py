"""Weight conversion between `cells` and PyTorch (nn.LSTM / nn.GRU / nn.RNN) or flax.linen cells.

Every conversion is function-preserving: converted parameters give the other library's outputs
(up to float rounding), both directions, any number of layers, either direction of a
bidirectional layer. Layouts:

    cells      w_ih [I, G*H], w_hh [H, G*H], b [G*H] (+ b_hn [H], GRU reset_after=True and MGU;
               + w_hr [H, P] for the LSTM with proj_size=P, whose w_hh is then [P, 4H])
    PyTorch    weight_ih_l{k}[_reverse] [G*H, I], weight_hh_l{k} [G*H, H or P], bias_ih_l{k}
               [G*H], bias_hh_l{k} [G*H] (+ weight_hr_l{k} [P, H] with proj_size); the same gate
               order (LSTM i, f, g, o; GRU r, z, n)
    flax       LSTMCell / OptimizedLSTMCell {'ii','if','ig','io': {kernel}, 'hi','hf','hg','ho':
               {kernel, bias}}; GRUCell {'ir','iz','in': {kernel, bias}, 'hr','hz': {kernel},
               'hn': {kernel, bias}}; MGUCell {'if','in': {kernel, bias}, 'hf': {kernel},
               'hn': {kernel, bias}}; SimpleCell {'i': {kernel, bias}, 'h': {kernel}};
               ConvLSTMCell {'ih', 'hh': {kernel [*K, in, 4F], bias [4F]}}, gates i, g, f, o
               (`convlstm_from_flax` / `convlstm_to_flax`)
    xlstm      mLSTMCell {'igate', 'fgate': {weight [NH, 3H], bias}, 'outnorm': {weight}}
               (`mlstm_from_xlstm`: its input q, k, v concatenated)

PyTorch has two biases where a cell needs one. They are folded: LSTM and Elman b = b_ih + b_hh;
GRU b[r, z] = b_ih + b_hh, b[n] = b_ih[n] and b_hn = b_hh[n] (n's recurrent bias sits inside
the reset product). Going back, the folded bias goes to b_ih and the rest (zeros, or GRU's
b_hn) to b_hh. Cells the other library lacks raise ValueError: GRU(reset_after=False) (Cho
et al.'s original), the layer-normalised cells, the LSTM's peephole and coupled options, the
projected LSTM in flax, the MGU in PyTorch, the IndRNN in both.

Carries differ too. Ours is the cell's NamedTuple, h first: `LSTMState(h, c)`. flax's LSTM
carry is the plain tuple (c, h), c first, so `LSTMState(*flax_carry)` silently swaps the two:
translate with `carry_from_flax` / `carry_to_flax` (which refuse a carry already in the other
layout). PyTorch's initial/final states are [num_layers * num_directions, B, H] arrays:
`carry_from_torch` / `carry_to_torch`.

A PyTorch module built with bias=False has no bias entries in its state dict;
`from_torch_module` returns a `TorchStack` that remembers it, so `stack_to_torch` writes a state
dict that module loads (strict) without restating bias=False.

PyTorch is never imported by this module: state dicts may hold torch tensors or numpy arrays
(tensors are read with `np.asarray(t.detach().cpu())`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np

from cells import base, layers
from cells.gru import GRU
from cells.lstm import LSTM
from cells.mgu import MGU
from cells.simple import SimpleRNN

Params = base.Params


def to_numpy(array: Any) -> np.ndarray:
    """A torch tensor (any device, bfloat16 included), jax array or numpy array as numpy."""
    if hasattr(array, "detach"):  # a torch tensor, read without importing torch
        array = array.detach().cpu()
        if str(array.dtype) == "torch.bfloat16":
            array = array.float()
    return np.asarray(array)


def _check_cell(cell: Any, target: str) -> None:
    kinds = (LSTM, GRU, SimpleRNN) + ((MGU,) if target == "flax" else ())
    if not isinstance(cell, kinds):
        names = ", ".join(f"cells.{k.__name__}" for k in kinds)
        raise ValueError(f"cell must be one of {names} to convert to/from {target}, got {cell!r}.")
    if isinstance(cell, GRU) and not cell.reset_after:
        raise ValueError(
            f"GRU(reset_after=False) has no {target} equivalent: {target} applies the reset gate "
            "after the recurrent product; use cells.GRU(hidden_size, reset_after=True)."
        )
    options = ["layer_norm"] if getattr(cell, "layer_norm", False) else []
    if getattr(cell, "num_heads", 1) > 1:
        options.append(f"num_heads={cell.num_heads}")
    if isinstance(cell, LSTM):
        options += [name for name in ("peephole", "coupled") if getattr(cell, name)]
        if cell.proj_size and target == "flax":
            options.append("proj_size")
    if options:
        raise ValueError(
            f"{type(cell).__name__} with {', '.join(options)} has no {target} equivalent."
        )


def _as_params(cell: base.Cell, arrays: dict[str, np.ndarray]) -> Params:
    """float64 numpy arrays -> the cell's param dtype, checked against the cell's shapes."""
    params = {k: jnp.asarray(v, dtype=cell.param_dtype) for k, v in arrays.items()}
    cell.check_params(params)
    return params


def _check_shape(name: str, array: np.ndarray, shape: tuple[int, ...]) -> None:
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}.")


# -- PyTorch ---------------------------------------------------------------------------------


def _torch_suffix(layer: int, reverse: bool) -> str:
    return f"_l{layer}" + ("_reverse" if reverse else "")


def from_torch(
    cell: base.Cell,
    state_dict: Mapping[str, Any],
    *,
    layer: int = 0,
    reverse: bool = False,
    prefix: str = "",
) -> Params:
    """One layer (one direction) of a PyTorch nn.LSTM / nn.GRU / nn.RNN as `cell`'s params.

    Args:
      cell: the cell the weights are for (hidden size, kind and, for nn.RNN, activation must
        match the PyTorch module's; they are not stored in a state dict).
      state_dict: `module.state_dict()` (torch tensors or numpy arrays).
      layer: which layer k (keys `weight_ih_l{k}`, ...).
      reverse: the backward direction of a bidirectional module (keys `..._l{k}_reverse`).
      prefix: prepended to every key, e.g. 'encoder.rnn.' for a submodule's entries.

    Returns:
      The params dict; `cells.scan(cell, params, xs)` reproduces that layer's outputs.
    """
    _check_cell(cell, "PyTorch")
    suffix = _torch_suffix(layer, reverse)
    key = lambda name: f"{prefix}{name}{suffix}"
    proj = getattr(cell, "proj_size", 0)
    if (key("weight_hr") in state_dict) != bool(proj):
        raise ValueError(
            f"{key('weight_hr')} is {'present' if key('weight_hr') in state_dict else 'missing'} "
            f"but the cell has proj_size={proj}: use cells.LSTM(hidden_size, proj_size=P) for an "
            "nn.LSTM(proj_size=P) and proj_size=0 otherwise."
        )
    if key("weight_ih") not in state_dict:
        raise ValueError(
            f"state_dict has no {key('weight_ih')!r}: check layer={layer}, reverse={reverse} and "
            f"prefix={prefix!r}; keys are {sorted(state_dict)[:8]}..."
        )
    h, g = cell.hidden_size, cell.num_gates
    w_ih = to_numpy(state_dict[key("weight_ih")]).astype(np.float64)
    w_hh = to_numpy(state_dict[key("weight_hh")]).astype(np.float64)
    if w_ih.ndim != 2 or w_ih.shape[0] != g * h:
        raise ValueError(
            f"{key('weight_ih')} has shape {w_ih.shape} but {type(cell).__name__}(hidden_size={h}) "
            f"needs [{g * h}, input_size]: the cell kind or hidden_size does not match the module."
        )
    _check_shape(key("weight_hh"), w_hh, (g * h, cell.recurrent_input_size))
    zeros = np.zeros((g * h,))
    b_ih = to_numpy(state_dict.get(key("bias_ih"), zeros)).astype(np.float64)
    b_hh = to_numpy(state_dict.get(key("bias_hh"), zeros)).astype(np.float64)
    _check_shape(key("bias_ih"), b_ih, (g * h,))
    _check_shape(key("bias_hh"), b_hh, (g * h,))
    arrays = {"w_ih": w_ih.T, "w_hh": w_hh.T}
    if proj:
        w_hr = to_numpy(state_dict[key("weight_hr")]).astype(np.float64)
        _check_shape(key("weight_hr"), w_hr, (proj, h))
        arrays["w_hr"] = w_hr.T
    if isinstance(cell, GRU):
        arrays["b"] = np.concatenate([b_ih[: 2 * h] + b_hh[: 2 * h], b_ih[2 * h :]])
        arrays["b_hn"] = b_hh[2 * h :]
    else:
        arrays["b"] = b_ih + b_hh
    return _as_params(cell, arrays)


def to_torch(
    cell: base.Cell,
    params: Params,
    *,
    layer: int = 0,
    reverse: bool = False,
    prefix: str = "",
    bias: bool = True,
) -> dict[str, np.ndarray]:
    """`cell`'s params as the state-dict entries of PyTorch layer `layer` (numpy float32 arrays).

    The folded bias goes to bias_ih; bias_hh holds zeros (GRU: zeros for r, z and b_hn for n).
    `bias=False` is for a module built with bias=False: no bias entries, and the biases must
    be zero (ValueError otherwise: such a module cannot hold them).
    """
    _check_cell(cell, "PyTorch")
    cell.check_params(params)
    h = cell.hidden_size
    p = {k: np.array(v, dtype=np.float32) for k, v in params.items()}  # writable copies
    b_hh = np.zeros_like(p["b"])
    if isinstance(cell, GRU):
        b_hh[2 * h :] = p["b_hn"]
    suffix = _torch_suffix(layer, reverse)
    state = {
        f"{prefix}weight_ih{suffix}": np.ascontiguousarray(p["w_ih"].T),
        f"{prefix}weight_hh{suffix}": np.ascontiguousarray(p["w_hh"].T),
        f"{prefix}bias_ih{suffix}": p["b"],
        f"{prefix}bias_hh{suffix}": b_hh,
    }
    if "w_hr" in p:
        state[f"{prefix}weight_hr{suffix}"] = np.ascontiguousarray(p["w_hr"].T)
    if not bias:
        names = [n for n in ("b", "b_hn") if n in p and np.any(p[n])]
        if names:
            raise ValueError(
                f"bias=False: the params have nonzero {' and '.join(names)}, which a PyTorch "
                "module without biases cannot hold."
            )
        state = {k: v for k, v in state.items() if "bias_" not in k}
    return state


def _directions(layer: Any) -> list[tuple[base.Cell, bool, str | None]]:
    """(cell, reverse, key in the layer's params) for each direction of a Stack layer."""
    if isinstance(layer, layers.Bidirectional):
        return [(layer.forward, False, "forward"), (layer.backward, True, "backward")]
    return [(layer, False, None)]


def stack_from_torch(
    stack: layers.Stack, state_dict: Mapping[str, Any], *, prefix: str = ""
) -> tuple:
    """All layers of a PyTorch RNN module as `stack`'s params (a `cells.Stack` of the same
    depth; a bidirectional module needs `cells.Bidirectional` layers)."""
    params = []
    for k, layer in enumerate(stack.layers):
        per_direction = {
            name: from_torch(cell, state_dict, layer=k, reverse=rev, prefix=prefix)
            for cell, rev, name in _directions(layer)
        }
        params.append(per_direction[None] if None in per_direction else per_direction)
    return tuple(params)


@dataclasses.dataclass(frozen=True)
class TorchStack(layers.Stack):
    """A `cells.Stack` read from a PyTorch module (`from_torch_module`), remembering what its
    state dict cannot say: whether the module has biases.

    Attributes:
      bias: the module's `bias` flag. False: `stack_to_torch(stack, params)` writes no bias
        entries (what the module's strict `load_state_dict` wants) and refuses nonzero biases
        (such a module cannot hold them: keep b at zero while training, e.g. with an optax
        mask). The stack runs like any `cells.Stack`; its cells hold a zero b.
    """

    bias: bool = True


def stack_to_torch(
    stack: layers.Stack,
    params: tuple,
    *,
    prefix: str = "",
    tensors: bool = False,
    bias: bool | None = None,
) -> dict[str, Any]:
    """`stack`'s params as a PyTorch state dict; `tensors=True` returns torch tensors, ready for
    `module.load_state_dict(...)` (imports torch).

    bias: whether to write bias entries. None (default): as the module the stack was read from
    (`TorchStack.bias`: False for an `nn.LSTM(..., bias=False)`), True for any other stack.

        stack, params = cells.interop.from_torch_module(torch_lstm)   # bias=False or not
        torch_lstm.load_state_dict(cells.interop.stack_to_torch(stack, params, tensors=True))
    """
    if bias is None:
        bias = stack.bias if isinstance(stack, TorchStack) else True
    state = {}
    for k, (layer, p) in enumerate(zip(stack.layers, params, strict=True)):
        for cell, rev, name in _directions(layer):
            sub = p if name is None else p[name]
            state.update(to_torch(cell, sub, layer=k, reverse=rev, prefix=prefix, bias=bias))
    if tensors:
        import torch  # optional dependency: imported only when tensors are asked for

        state = {k: torch.from_numpy(v) for k, v in state.items()}
    return state


_TORCH_MODES = ("LSTM", "GRU", "RNN_TANH", "RNN_RELU")


def from_torch_module(module: Any) -> tuple[layers.Stack, tuple]:
    """A PyTorch nn.LSTM / nn.GRU / nn.RNN as (`cells.Stack`, its params).

    The stack (a `TorchStack`: a `cells.Stack` that also records the module's `bias` flag, so
    `stack_to_torch` round-trips a bias=False module) has the module's depth, direction(s) and
    inter-layer dropout. Inputs are always [B, T, I] here, whatever the module's `batch_first`.
    """
    mode = getattr(module, "mode", None)
    if mode not in _TORCH_MODES:
        raise ValueError(f"module must be a torch nn.LSTM, nn.GRU or nn.RNN, got {module!r}.")
    h = module.hidden_size
    if mode == "LSTM":
        cell = LSTM(h, proj_size=int(getattr(module, "proj_size", 0)))
    elif mode == "GRU":
        cell = GRU(h, reset_after=True)
    else:
        cell = SimpleRNN(h, activation="tanh" if mode == "RNN_TANH" else "relu")
    layer = layers.Bidirectional(cell, cell) if module.bidirectional else cell
    stack = TorchStack(
        (layer,) * module.num_layers, dropout=float(module.dropout), bias=bool(module.bias)
    )
    return stack, stack_from_torch(stack, module.state_dict())


def _torch_state_arrays(cell: base.Cell) -> int:
    return 2 if isinstance(cell, LSTM) else 1


def carry_from_torch(stack: layers.Stack, hx: Any) -> tuple:
    """PyTorch's initial state (h_0, or (h_0, c_0) for LSTM; each [L * D, B, H]) as `stack`'s
    per-layer carries."""
    cells_ = [cell for layer in stack.layers for cell, _, _ in _directions(layer)]
    arrays = hx if isinstance(hx, tuple | list) else (hx,)
    arrays = [to_numpy(a) for a in arrays]
    if len(arrays) != _torch_state_arrays(cells_[0]) or arrays[0].shape[0] != len(cells_):
        raise ValueError(
            f"hx must be {'(h_0, c_0)' if isinstance(cells_[0], LSTM) else 'h_0'} with a leading "
            f"dimension of num_layers * num_directions = {len(cells_)}, got "
            f"{[a.shape for a in arrays]}."
        )
    carries, i = [], 0
    for layer in stack.layers:
        per_direction = []
        for cell, _, _ in _directions(layer):
            per_direction.append(cell.carry_type(*(jnp.asarray(a[i]) for a in arrays)))
            i += 1
        carries.append(per_direction[0] if len(per_direction) == 1 else tuple(per_direction))
    return tuple(carries)


def carry_to_torch(stack: layers.Stack, carries: tuple) -> Any:
    """`stack`'s per-layer carries as PyTorch's final state: h_n, or (h_n, c_n) for LSTM."""
    flat = []
    for layer, carry in zip(stack.layers, carries, strict=True):
        flat.extend([carry] if not isinstance(layer, layers.Bidirectional) else list(carry))
    stacked = [np.stack([np.asarray(c[j]) for c in flat]) for j in range(len(flat[0]))]
    return tuple(stacked) if len(stacked) == 2 else stacked[0]


# -- flax.linen ------------------------------------------------------------------------------

_FLAX_LSTM_GATES = ("i", "f", "g", "o")
_FLAX_GRU_GATES = ("r", "z", "n")
_FLAX_MGU_GATES = ("f", "n")


def _flax_tree(variables: Mapping[str, Any]) -> Mapping[str, Any]:
    """Accepts `cell.init(...)`'s variables, their 'params', or nn.RNN's {'params': {'cell'}}."""
    tree = variables
    for wrapper in ("params", "cell"):
        if isinstance(tree, Mapping) and set(tree) == {wrapper}:
            tree = tree[wrapper]
    return tree


def _get(tree: Mapping[str, Any], name: str, leaf: str) -> np.ndarray:
    try:
        return to_numpy(tree[name][leaf]).astype(np.float64)
    except (KeyError, TypeError) as e:
        raise ValueError(
            f"flax params have no {name}/{leaf}: expected a flax.linen LSTMCell, "
            f"OptimizedLSTMCell, GRUCell, MGUCell or SimpleCell param tree, got keys "
            f"{sorted(tree)}."
        ) from e


def from_flax(cell: base.Cell, variables: Mapping[str, Any]) -> Params:
    """flax.linen LSTMCell / OptimizedLSTMCell (for LSTM), GRUCell (GRU), MGUCell (MGU) or
    SimpleCell (SimpleRNN) params as `cell`'s params."""
    _check_cell(cell, "flax")
    tree = _flax_tree(variables)
    if isinstance(cell, LSTM):
        arrays = {
            "w_ih": np.concatenate([_get(tree, f"i{g}", "kernel") for g in _FLAX_LSTM_GATES], 1),
            "w_hh": np.concatenate([_get(tree, f"h{g}", "kernel") for g in _FLAX_LSTM_GATES], 1),
            "b": np.concatenate([_get(tree, f"h{g}", "bias") for g in _FLAX_LSTM_GATES]),
        }
    elif isinstance(cell, GRU | MGU):  # input biases per gate, the recurrent one on n only
        gates = _FLAX_GRU_GATES if isinstance(cell, GRU) else _FLAX_MGU_GATES
        arrays = {
            "w_ih": np.concatenate([_get(tree, f"i{g}", "kernel") for g in gates], 1),
            "w_hh": np.concatenate([_get(tree, f"h{g}", "kernel") for g in gates], 1),
            "b": np.concatenate([_get(tree, f"i{g}", "bias") for g in gates]),
            "b_hn": _get(tree, "hn", "bias"),
        }
    else:
        arrays = {
            "w_ih": _get(tree, "i", "kernel"),
            "w_hh": _get(tree, "h", "kernel"),
            "b": _get(tree, "i", "bias"),
        }
    try:
        return _as_params(cell, arrays)
    except ValueError as e:
        raise ValueError(f"flax params do not fit {cell!r}: {e}") from e


def to_flax(cell: base.Cell, params: Params) -> dict[str, Any]:
    """`cell`'s params as flax.linen variables {'params': {...}} for LSTMCell /
    OptimizedLSTMCell, GRUCell, MGUCell or SimpleCell (`flax_cell.apply(variables, carry, x)`;
    wrap as {'params': {'cell': ...}} for nn.RNN)."""
    _check_cell(cell, "flax")
    cell.check_params(params)
    split = {name: cell.split_gates(params, name) for name in ("w_ih", "w_hh", "b")}
    if isinstance(cell, LSTM):
        tree = {}
        for k, g in enumerate(_FLAX_LSTM_GATES):
            tree[f"i{g}"] = {"kernel": split["w_ih"][k]}
            tree[f"h{g}"] = {"kernel": split["w_hh"][k], "bias": split["b"][k]}
    elif isinstance(cell, GRU | MGU):
        tree = {}
        for k, g in enumerate(_FLAX_GRU_GATES if isinstance(cell, GRU) else _FLAX_MGU_GATES):
            tree[f"i{g}"] = {"kernel": split["w_ih"][k], "bias": split["b"][k]}
            tree[f"h{g}"] = {"kernel": split["w_hh"][k]}
        tree["hn"]["bias"] = params["b_hn"]
    else:
        tree = {
            "i": {"kernel": params["w_ih"], "bias": params["b"]},
            "h": {"kernel": params["w_hh"]},
        }
    return {"params": tree}


def carry_from_flax(cell: base.Cell, carry: Any):
    """A flax cell's carry as `cell`'s: (c, h) -> LSTMState(h, c) for a cell with an LSTM
    carry, an array h -> RNNState(h) for a one-state cell (GRU, Elman, MGU, ...); other carry
    types (the sLSTM's (h, c, n, m)) have no flax form and pass as they are.

        carry = cells.interop.carry_from_flax(cells.LSTM(64), flax_carry)   # not LSTMState(*...)
    """
    kind = cell.carry_type
    if kind not in (base.LSTMState, base.RNNState):
        return carry
    if isinstance(carry, kind):
        raise ValueError(
            f"carry is already a cells {kind.__name__}; carry_from_flax takes flax's layout "
            f"({'the tuple (c, h)' if kind is base.LSTMState else 'the array h'})."
        )
    if kind is base.RNNState:
        return base.RNNState(jnp.asarray(carry))
    c, h = carry
    return base.LSTMState(jnp.asarray(h), jnp.asarray(c))


def carry_to_flax(cell: base.Cell, carry: Any):
    """`cell`'s carry as a flax cell's: LSTMState(h, c) -> the tuple (c, h), RNNState(h) -> h;
    other carry types pass as they are (see `carry_from_flax`)."""
    kind = cell.carry_type
    if kind is base.LSTMState:
        return (carry.c, carry.h)
    if kind is base.RNNState:
        return carry.h
    return carry


# -- recurrentgemma (RG-LRU) -------------------------------------------------------------------


def _block_diagonal_dense(w: np.ndarray) -> np.ndarray:
    """recurrentgemma's BlockDiagonalLinear weight [NB, D_in, D_out] as its dense [NB*D_in,
    NB*D_out] matrix (block k maps inputs k*D_in.. to outputs k*D_out..)."""
    blocks, d_in, d_out = w.shape
    dense = np.zeros((blocks * d_in, blocks * d_out), w.dtype)
    for k in range(blocks):
        dense[k * d_in : (k + 1) * d_in, k * d_out : (k + 1) * d_out] = w[k]
    return dense


def rglru_from_recurrentgemma(variables: Mapping[str, Any], **cell_options) -> tuple:
    """(cell, params) equal to a `recurrentgemma.jax.layers.RGLRU` layer's variables
    ({'params': {'a_param', 'input_gate': {w, b}, 'a_gate': {w, b}}} or the inner dict).

    The cell's input is the layer's input (I = H = width): its value projection is the identity,
    and the block-diagonal gates become dense ones with zeros off the blocks. The cell equals
    the layer when the layer runs with segment positions that start at 1 (see `cells.rglru`:
    at segment_pos == 0 the layer skips the sqrt(1 - a^2) scale). Only real-valued layers
    (only_real=True, recurrentgemma's default) convert.
    """
    from cells.rglru import RGLRU

    tree = _flax_tree(variables)
    if "a_imag_param" in tree:
        raise ValueError(
            "recurrentgemma RGLRU with only_real=False (complex a) has no cells equivalent."
        )
    if "a_param" not in tree:
        raise ValueError(f"variables must hold an RGLRU's 'a_param', got keys {sorted(tree)}.")
    a_param = to_numpy(tree["a_param"])
    width = a_param.shape[0]
    gates = {}
    for name in ("a_gate", "input_gate"):
        w, b = (_get(tree, name, leaf) for leaf in ("w", "b"))
        if w.ndim != 3 or w.shape[0] * w.shape[1] != width or b.shape != (w.shape[0], w.shape[2]):
            raise ValueError(
                f"{name}: expected w [num_heads, {width} / num_heads, {width} / num_heads] and b "
                f"[num_heads, {width} / num_heads], got {w.shape} and {b.shape}."
            )
        gates[name] = (_block_diagonal_dense(w), b.reshape(-1))
    cell = RGLRU(width, **cell_options)
    arrays = {
        "w_ih": np.concatenate([gates["a_gate"][0], gates["input_gate"][0], np.eye(width)], 1),
        "b": np.concatenate([gates["a_gate"][1], gates["input_gate"][1], np.zeros(width)]),
        "a_param": a_param.astype(np.float64),
    }
    return cell, _as_params(cell, arrays)


def mlstm_from_xlstm(state_dict: Mapping[str, Any], num_heads: int, **cell_options) -> tuple:
    """(cell, params) equal to the `xlstm` package's mLSTM cell (`xlstm.blocks.mlstm.cell.
    mLSTMCell`, NX-AI/xlstm) from its state dict: 'igate.weight' [NH, 3H], 'igate.bias' [NH],
    'fgate.weight', 'fgate.bias' (the same) and 'outnorm.weight' [H].

    That cell takes q, k and v [B, T, H] and computes its gates from their concatenation; it
    has no output gate (its block multiplies by another branch). So the returned `cells.MLSTM`
    takes x = concat(q, k, v) [B, T, 3H]: W_q, W_k, W_v select the three parts (the key scaled
    by 1 / sqrt(D) in the cell, as in the package's backends), w_i and w_f are the package's
    gate weights, norm_scale = 1 + outnorm.weight (the package's residual weight), and the
    output gate is held open: W_o = 0 and b_o = 30, sigmoid(30) = 1 in float32 (1 - 1e-13 in
    float64). Outputs then equal mLSTMCell.forward (its parallel form) and mLSTMCell.step (its
    recurrent form) to float32 rounding (tests/cells/mlstm_test.py).
    """
    from cells.mlstm import MLSTM

    def array(name):
        if name not in state_dict:
            raise ValueError(
                f"state_dict must hold an xlstm mLSTMCell's {name!r}, got keys "
                f"{sorted(state_dict)}."
            )
        return to_numpy(state_dict[name]).astype(np.float64)

    scale = array("outnorm.weight")
    width = scale.shape[0]
    cell = MLSTM(width, num_heads=num_heads, head_norm=True, **cell_options)
    gates = {}
    for name in ("igate", "fgate"):
        w, b = array(f"{name}.weight"), array(f"{name}.bias")
        _check_shape(f"{name}.weight", w, (num_heads, 3 * width))
        _check_shape(f"{name}.bias", b, (num_heads,))
        gates[name] = (w.T, b)
    eye, zeros = np.eye(3 * width), np.zeros((3 * width, width))
    arrays = {
        "w_ih": np.concatenate([eye, zeros, gates["igate"][0], gates["fgate"][0]], axis=1),
        "b": np.concatenate(
            [np.zeros(3 * width), np.full(width, 30.0), gates["igate"][1], gates["fgate"][1]]
        ),
        "norm_scale": 1.0 + scale,
    }
    return cell, _as_params(cell, arrays)


def rglru_to_recurrentgemma(cell: Any, params: Params, num_heads: int = 1) -> dict[str, Any]:
    """An `cells.RGLRU`'s params as a `recurrentgemma.jax.layers.RGLRU(width=H,
    num_heads=num_heads)` layer's {'params': ...}. Only a cell whose value projection is the
    identity (I = H, W_u = 1, b_u = 0) and whose gates are zero off `num_heads` diagonal blocks
    has one; anything else is refused (the layer has no value projection and block gates)."""
    from cells.rglru import RGLRU

    if not isinstance(cell, RGLRU):
        raise ValueError(f"cell must be a cells.RGLRU to convert to recurrentgemma, got {cell!r}.")
    if cell.c != 8.0:
        raise ValueError(f"recurrentgemma's RGLRU fixes c = 8; this cell has c={cell.c!r}.")
    cell.check_params(params)
    h = cell.hidden_size
    if cell.input_size(params) != h or h % num_heads:
        raise ValueError(
            f"recurrentgemma's RGLRU maps width to width with num_heads dividing it: this cell "
            f"maps {cell.input_size(params)} inputs to {h} units, num_heads={num_heads}."
        )
    w_a, w_x, w_u = (to_numpy(w).astype(np.float64) for w in cell.split_gates(params, "w_ih"))
    b_a, b_x, b_u = (to_numpy(b).astype(np.float64) for b in cell.split_gates(params, "b"))
    if not (np.array_equal(w_u, np.eye(h)) and not b_u.any()):
        raise ValueError(
            "recurrentgemma's RGLRU has no value projection: this cell's W_u is not the identity "
            "or b_u is not zero."
        )
    d, dtype = h // num_heads, to_numpy(params["w_ih"]).dtype
    out = {"a_param": to_numpy(params["a_param"])}
    for name, w, b in (("a_gate", w_a, b_a), ("input_gate", w_x, b_x)):
        blocks = np.stack([w[k * d : (k + 1) * d, k * d : (k + 1) * d] for k in range(num_heads)])
        if not np.array_equal(_block_diagonal_dense(blocks), w):
            raise ValueError(
                f"{name}: this cell's gate weights are not zero off {num_heads} diagonal blocks; "
                "give the num_heads they were built with (1 converts any)."
            )
        out[name] = {"w": blocks.astype(dtype), "b": b.reshape(num_heads, d).astype(dtype)}
    return {"params": out}


# -- flax.linen.ConvLSTMCell -------------------------------------------------------------------

# flax's ConvLSTMCell splits its gates i, g, f, o (this library: i, f, g, o): swapping the
# middle two blocks maps either order to the other.
_FLAX_CONVLSTM_ORDER = (0, 2, 1, 3)


def _swap_middle_gates(a: np.ndarray) -> np.ndarray:
    blocks = np.split(a, 4, axis=-1)
    return np.concatenate([blocks[k] for k in _FLAX_CONVLSTM_ORDER], axis=-1)


def convlstm_from_flax(
    variables: Mapping[str, Any], spatial_shape: tuple[int, ...], **cell_options
) -> tuple:
    """(cell, params) equal to a `flax.linen.ConvLSTMCell`'s variables ({'params': {'ih':
    {kernel, bias}, 'hh': {kernel, bias}}}, the inner dict, or nn.RNN's), for frames of
    `spatial_shape`. The two conv biases are summed and flax's forget-gate +1 (added in its
    forward) is folded into b_f; a cell built with use_bias=False has only that +1. The cell
    equals flax's for its default strides (1) and padding ('SAME'), the only ones that keep the
    state's shape; `cell_options` (dtypes, init_scheme) pass to `cells.ConvLSTM`."""
    from cells.convlstm import ConvLSTM

    tree = _flax_tree(variables)
    try:
        w_ih, w_hh = (to_numpy(tree[name]["kernel"]) for name in ("ih", "hh"))
    except (KeyError, TypeError) as e:
        raise ValueError(
            f"variables must be a flax.linen.ConvLSTMCell's, with ih/kernel and hh/kernel; got "
            f"keys {sorted(tree) if isinstance(tree, Mapping) else type(tree).__name__}."
        ) from e
    if w_ih.ndim != len(spatial_shape) + 2 or w_hh.shape[:-2] != w_ih.shape[:-2]:
        raise ValueError(
            f"ConvLSTMCell kernels {w_ih.shape} and {w_hh.shape} do not fit spatial_shape="
            f"{tuple(spatial_shape)} (expected [*kernel_size, in, 4 * features] for a "
            f"{len(spatial_shape)}-D grid)."
        )
    features = w_hh.shape[-2]
    b = np.zeros(4 * features)
    for name in ("ih", "hh"):
        if "bias" in tree[name]:
            b = b + to_numpy(tree[name]["bias"]).astype(np.float64)
    b = _swap_middle_gates(b)
    b[features : 2 * features] += 1.0  # sigmoid(f + 1) in flax's forward
    cell = ConvLSTM(
        features,
        spatial_shape=tuple(spatial_shape),
        kernel_size=tuple(w_ih.shape[:-2]),
        **cell_options,
    )
    arrays = {
        "w_ih": _swap_middle_gates(w_ih.astype(np.float64)),
        "w_hh": _swap_middle_gates(w_hh.astype(np.float64)),
        "b": b,
    }
    try:
        return cell, _as_params(cell, arrays)
    except ValueError as e:
        raise ValueError(f"flax ConvLSTMCell params do not fit {cell!r}: {e}") from e


def convlstm_to_flax(cell: Any, params: Params) -> dict[str, Any]:
    """A `cells.ConvLSTM`'s params as `flax.linen.ConvLSTMCell(features=F, kernel_size=K)`
    variables {'params': {'ih', 'hh'}} (use_bias=True, the default): the bias goes to ih (less
    flax's forget-gate +1), hh's bias is zero. Peepholes have no flax form and are refused."""
    from cells.convlstm import ConvLSTM

    if not isinstance(cell, ConvLSTM):
        raise ValueError(f"cell must be a cells.ConvLSTM to convert to ConvLSTMCell, got {cell!r}.")
    if cell.peephole:
        raise ValueError("flax.linen.ConvLSTMCell has no peepholes; this cell has peephole=True.")
    cell.check_params(params)
    features = cell.hidden_size
    b = to_numpy(params["b"]).copy()
    b[features : 2 * features] -= 1.0
    tree = {
        "ih": {
            "kernel": _swap_middle_gates(to_numpy(params["w_ih"])),
            "bias": _swap_middle_gates(b),
        },
        "hh": {
            "kernel": _swap_middle_gates(to_numpy(params["w_hh"])),
            "bias": np.zeros_like(b),
        },
    }
    return {"params": tree}
