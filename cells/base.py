"""The cell contract every recurrent cell follows, and the carry types.

A cell is a frozen (hashable) dataclass holding only hyper-parameters. Its parameters live
outside it, in a plain dict of arrays, so cells compose with any JAX code (jit, grad, vmap,
optax, Flax, Equinox). Every cell exposes the same small interface:

  params = cell.init(key, input_size)          # {'w_ih': [I, G*H], 'w_hh': [H, G*H], 'b': ...}
  carry = cell.initial_carry(batch_size)       # a NamedTuple of [B, H] arrays
  xp_BxTxG = cell.input_projection(params, xs) # the hoisted input GEMM for all time steps
  carry, h, gates = cell.fused_step(params, carry, xp_BxG)   # one recurrent GEMM + elementwise
  carry, h = cell.reference_step(params, carry, x_BxI)       # the plain specification
  carry, h = cell.step(params, carry, x_BxI)   # one validated step (autoregressive generation)

`fused_step` is what `cells.scan` runs inside `lax.scan`; `reference_step` is written gate by
gate straight from the paper's equations and is the specification the fused path is tested
against. G is the number of gate blocks (LSTM 4, GRU 3, Elman RNN 1). The output h has
`output_size` units (H, or the LSTM's projection size P); `carry_sizes` gives the width of each
carry field, and `recurrent_input_size` the rows of w_hh (the width of h fed back).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from cells import initializers, regularization

Array = jax.Array
Params = dict[str, Array]
"""A cell's parameters: a plain dict of arrays (`w_ih`, `w_hh`, `b`, and the cell's extras)."""
Initializer = Callable[..., Array]

_VALID_DTYPES = ("float32", "bfloat16", "float16", "float64")


class LSTMState(NamedTuple):
    """LSTM carry: hidden state h and memory cell c, each [B, H] (h first).

    flax.linen's LSTM carry is the plain tuple (c, h), c first: `LSTMState(*flax_carry)`
    swaps them. Convert with `cells.interop.carry_from_flax` / `carry_to_flax`;
    `cells.linen.RNNCell` takes and returns flax's layout."""

    h: Array
    c: Array


class RNNState(NamedTuple):
    """GRU / Elman RNN / MinGRU / MinLSTM carry: hidden state h [B, H]."""

    h: Array


class SLSTMState(NamedTuple):
    """sLSTM carry, each [B, H]: hidden state h, cell c, normaliser n, stabiliser m."""

    h: Array
    c: Array
    n: Array
    m: Array


class MLSTMState(NamedTuple):
    """mLSTM carry (`cells.MLSTM`, NH heads of D units, H = NH D), each field flattened per
    sequence: hidden state h [B, H], matrix memory c [B, NH D D] (head-major, then the key
    and the value axis), normaliser n [B, NH D], stabiliser m [B, NH]."""

    h: Array
    c: Array
    n: Array
    m: Array


# What a subclass may define without changing the function `cells.scan` computes, so it keeps
# its parent's hand-written backward (see Cell.backward_rule): its dataclass fields (which
# the backward reads from the cell itself), validation, examples, the parameters' initial
# values, the reference specification and what Python and dataclasses generate.
_FORWARD_NEUTRAL = frozenset(
    {
        "__post_init__", "example_options", "reference_step",
        "init", "_init", "_init_kernel", "_init_recurrent", "_recurrent_rule", "_init_bias",
        "_draw_bias", "_extra_params", "bias_terms", "_torch_bound",
        "__module__", "__qualname__", "__doc__", "__dict__", "__weakref__", "__annotations__",
        "__annotate__", "__firstlineno__", "__static_attributes__", "__orig_bases__",
        "__parameters__", "__slots__", "__classcell__", "__abstractmethods__", "_abc_impl",
        "__dataclass_fields__", "__dataclass_params__", "__match_args__", "__init__",
        "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__", "__getstate__",
        "__setstate__", "__replace__",
    }
)  # fmt: skip


def forward_overrides(cls: type, ancestor: type) -> list[str]:
    """What the classes of cls's MRO before `ancestor` define that may change the forward:
    every attribute but their dataclass fields and `_FORWARD_NEUTRAL` (methods, properties,
    class variables such as num_gates), as 'Class.name'."""
    overrides = []
    for klass in cls.__mro__:
        if klass is ancestor:
            break
        fields = (
            {f.name for f in dataclasses.fields(klass)}
            if dataclasses.is_dataclass(klass)
            else set()
        )
        overrides += [
            f"{klass.__name__}.{name}"
            for name in vars(klass)
            if name not in fields and name not in _FORWARD_NEUTRAL
        ]
    return overrides


def defining_class(cls: type, attribute: str) -> type:
    """The class in cls's MRO whose own body defines `attribute`."""
    return next(c for c in cls.__mro__ if attribute in vars(c))


def _dtype_name(dtype: Any) -> str | None:
    if dtype is None:
        return None
    try:
        return jnp.dtype(dtype).name
    except TypeError:
        return str(dtype)


# The params key under which `cells.scan(..., recurrent_dropout=p)` passes the per-sequence
# mask [B, H_in] (already scaled by 1 / (1 - p)) to the cell's recurrent product.
RECURRENT_MASK = regularization.RECURRENT_MASK


def carry_dtype(params, *others) -> Any:
    """The dtype a carry runs in: float32, or wider where the params (w_ih) or any of `others`
    (inputs, given carries: arrays, dtypes or pytrees of arrays) are wider (float64 under x64).

    Carries never run narrower than float32 (bfloat16 params and inputs keep a float32 carry).
    """
    dtypes = [jnp.float32]
    if isinstance(params, dict) and "w_ih" in params:
        dtypes.append(jnp.result_type(params["w_ih"]))
    for other in others:
        leaves = [other] if isinstance(other, type | jnp.dtype) else jax.tree.leaves(other)
        dtypes.extend(jnp.result_type(leaf) for leaf in leaves)
    return jnp.result_type(*dtypes)


def recurrent_input(params, h: Array) -> Array:
    """h as it enters the recurrent product: times the variational-dropout mask when
    `cells.scan` passes one (Gal & Ghahramani 2016), else h itself."""
    mask = params.get(RECURRENT_MASK) if isinstance(params, dict) else None
    return h if mask is None else h * mask.astype(h.dtype)


def matmul(x: Array, w: Array, compute_dtype: Any) -> Array:
    """x @ w with inputs cast to `compute_dtype` and float32 (or wider) accumulation."""
    if compute_dtype is None:
        return jnp.matmul(x, w)
    acc = jnp.promote_types(jnp.float32, x.dtype)
    return jnp.matmul(x.astype(compute_dtype), w.astype(compute_dtype), preferred_element_type=acc)


LN_EPSILON = 1e-5  # the layer-norm variance floor (PyTorch's and flax's default)


def layer_norm(x: Array, scale: Array, bias: Array) -> Array:
    """LN(x) = (x - mean) / sqrt(var + 1e-5) * scale + bias over the last axis (float32 math)."""
    x32 = x.astype(jnp.promote_types(jnp.float32, x.dtype))
    mean = jnp.mean(x32, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x32 - mean), axis=-1, keepdims=True)
    y = (x32 - mean) * jax.lax.rsqrt(var + LN_EPSILON)
    return add_bias(y * scale.reshape((1,) * (y.ndim - 1) + scale.shape), bias)


def chrono_bias(key: Array, t_max: float, size: int, dtype: Any) -> Array:
    """log(U[1, t_max - 1]): chrono initialisation (Tallec & Ollivier 2018) of a gate bias.

    A forget (keep) gate with this bias starts with characteristic memory times spread over
    [1, t_max - 1] steps, the range of dependencies the data is expected to hold.
    """
    u = jax.random.uniform(key, (size,), jnp.float32, 1.0, float(t_max) - 1.0)
    return jnp.log(u).astype(dtype)


def check_chrono(cell, t_max) -> None:
    if (
        isinstance(t_max, bool)
        or not isinstance(t_max, int | float)
        or not (t_max == 0 or t_max > 2)
    ):
        raise ValueError(
            f"{type(cell).__name__}: chrono_t_max must be 0 (off) or a number > 2 (the longest "
            f"dependency expected, in steps), got {t_max!r}."
        )


def check_forget_bias(cell) -> None:
    """Raises ValueError unless cell.forget_bias is None (the init_scheme's) or finite."""
    b_f = cell.forget_bias
    if b_f is None:
        return
    if isinstance(b_f, bool) or not isinstance(b_f, int | float) or not math.isfinite(b_f):
        raise ValueError(
            f"{type(cell).__name__}: forget_bias must be a finite number or None (the "
            f"init_scheme's), got {b_f!r}."
        )


def add_bias(y: Array, b: Array) -> Array:
    """y [..., N] + b [N], broadcast explicitly (safe under jax_numpy_rank_promotion='raise')."""
    return y + b.reshape((1,) * (y.ndim - 1) + b.shape)


@dataclasses.dataclass(frozen=True)
class Cell:
    """Base class: hyper-parameters, validation and the parts shared by all cells.

    Attributes:
      hidden_size: H, the width of the hidden state (a positive int).
      param_dtype: dtype of the parameters `init` creates (default float32).
      compute_dtype: dtype of the matmul inputs (e.g. 'bfloat16' on GPU/TPU); None computes in
        the dtype of the inputs. Accumulation, the elementwise gate math and the carry stay in
        float32 whatever this is.
      kernel_init: initializer of the input weights w_ih [I, G*H] (drawn fused) and of the
        LSTM's projection w_hr; None (default): the init_scheme's. An explicit one wins.
      recurrent_init: initializer of each gate's block [H_in, H] of the recurrent weights
        w_hh (each head's [D, D] block, head-wise); None (default): the init_scheme's.
      init_scheme: how `init` draws the weights and biases the options above leave to it:
        'cells' (default: Glorot-uniform w_ih, orthogonal w_hh blocks, zero biases, LSTM
        forget bias 1; no other scheme did better on both tasks of a 3-seed benchmark,
        experiments/studies/init_schemes/), 'flax', 'torch' or 'keras' (those libraries'
        own recurrent layers' distributions). See `cells.initializers` for each scheme and
        what it means for cells the library lacks. Not named `init` (the method that draws
        the params) nor `initializer` (one function, like kernel_init): it names a set of
        rules, one per kind of parameter. E.g. `cells.LSTM(512, init_scheme='flax').init(key, 16)`.
    """

    hidden_size: int
    param_dtype: Any = jnp.float32
    compute_dtype: Any = None
    kernel_init: Initializer | None = None
    recurrent_init: Initializer | None = None
    init_scheme: str = initializers.DEFAULT_SCHEME

    num_gates: ClassVar[int] = 1
    gate_names: ClassVar[tuple[str, ...]] = ()
    carry_type: ClassVar[type] = RNNState
    # The hand-written backward of one step that matches this class's forward (a class from
    # cells/kernels/step_grads.py, built with the cell), or None: `cells.scan(...,
    # backward='fused')` then falls back to autodiff with a warning. See `backward_rule`.
    fused_backward: ClassVar[type | None] = None
    # Zoneout's masks (`cells.scan(..., zoneout=)`): groups[k] is the mask carry field k draws;
    # fields of one group keep or update together. None: every field its own.
    zoneout_groups: ClassVar[tuple[int, ...] | None] = None
    # True for cells whose inputs are flattened spatial grids (`cells.ConvLSTM`): studies of
    # vector sequences leave them out (`cells.names(grids=False)`).
    on_grids: ClassVar[bool] = False

    def __post_init__(self):
        h = self.hidden_size
        if isinstance(h, bool) or not isinstance(h, int) or h <= 0:
            raise ValueError(
                f"{type(self).__name__}: hidden_size must be a positive int, got {h!r}."
            )
        for name in ("param_dtype", "compute_dtype"):
            value = getattr(self, name)
            if name == "compute_dtype" and value is None:
                continue
            if _dtype_name(value) not in _VALID_DTYPES:
                raise ValueError(
                    f"{type(self).__name__}: {name} must be one of {_VALID_DTYPES}, got {value!r}."
                )
        initializers.check(self)

    # -- parameters -------------------------------------------------------------------------
    def init(self, key: Array, input_size: int) -> Params:
        """Creates the parameters for inputs of width `input_size`."""
        if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size <= 0:
            raise ValueError(
                f"{type(self).__name__}.init: input_size must be a positive int, "
                f"got {input_size!r}."
            )
        k_ih, k_hh = jax.random.split(key)
        gh = self.num_gates * self.hidden_size
        params = {
            "w_ih": self._init_kernel(k_ih, (input_size, gh)),
            "w_hh": self._init_recurrent(k_hh),
            "b": self._init_bias(jax.random.fold_in(key, 2)),  # a key only 'torch' draws from
        }
        params.update(self._extra_params(jax.random.fold_in(key, 3)))
        return params

    @property
    def bias_terms(self) -> tuple[int, ...]:
        """How many PyTorch biases fold into each gate block of b: 2 (b_ih + b_hh) per block
        by default; what init_scheme='torch' draws and sums per block."""
        return (2,) * self.num_gates

    @property
    def _torch_bound(self) -> float:
        """init_scheme='torch''s uniform bound, 1 / sqrt(H), as torch's recurrent layers."""
        return initializers.torch_bound(self.hidden_size)

    def _init_kernel(self, key: Array, shape: tuple[int, ...], torch_bound=None) -> Array:
        """An input-side kernel ([I, G*H] w_ih, or w_hr): kernel_init, else the scheme's."""
        init = self.kernel_init
        if init is None:
            bound = self._torch_bound if torch_bound is None else torch_bound
            init = initializers.kernel_init(self.init_scheme, bound)
        return self._init(init, key, shape)

    def _init(self, initializer: Initializer, key: Array, shape: tuple[int, ...]) -> Array:
        """`initializer` run in float32 (float64 for float64 params), cast to param_dtype.

        Initializers such as the orthogonal one (a QR decomposition) do not run in bfloat16.
        """
        wide = jnp.promote_types(jnp.float32, self.param_dtype)
        return initializer(key, shape, wide).astype(self.param_dtype)

    def _recurrent_rule(self) -> tuple[Initializer, bool]:
        """(initializer, per_block) for w_hh: recurrent_init per gate block when given, else
        the scheme's (`initializers.recurrent_init`)."""
        if self.recurrent_init is not None:
            return self.recurrent_init, True
        return initializers.recurrent_init(self.init_scheme, self._torch_bound)

    def _init_recurrent(self, key: Array) -> Array:
        """Recurrent weights [H_in, G*H]: gate block by gate block ([H_in, H] each), or at once
        where the scheme draws the fused matrix (Keras)."""
        init, per_block = self._recurrent_rule()
        rows, h, g = self.recurrent_input_size, self.hidden_size, self.num_gates
        if not per_block:
            return self._init(init, key, (rows, g * h))
        blocks = [self._init(init, k, (rows, h)) for k in jax.random.split(key, g)]
        return jnp.concatenate(blocks, axis=1)

    def _draw_bias(self, key: Array, terms: tuple[int, ...], torch_bound=None) -> Array:
        """The scheme's bias for blocks of width H, `terms` torch biases summed per block."""
        wide = jnp.promote_types(jnp.float32, self.param_dtype)
        bound = self._torch_bound if torch_bound is None else torch_bound
        b = initializers.draw_bias(self.init_scheme, key, terms, self.hidden_size, wide, bound)
        return b.astype(self.param_dtype)

    def _init_bias(self, key: Array) -> Array:
        """The bias b [G*H] as the scheme draws it (`bias_terms`); cells set their gate biases
        (forget bias, chrono) over it. `key` is used by the schemes that draw biases."""
        return self._draw_bias(key, self.bias_terms)

    def _extra_params(self, key: Array) -> Params:
        """Parameters beyond w_ih, w_hh and b (the GRU's b_hn, ...), from `key`."""
        del key
        return {}

    @property
    def output_size(self) -> int:
        """Width of the output h (H; the LSTM's projection size P when it projects)."""
        return self.hidden_size

    @property
    def recurrent_input_size(self) -> int:
        """Rows of w_hh: the width of the h fed back into the next step."""
        return self.output_size

    @property
    def carry_sizes(self) -> tuple[int, ...]:
        """The width of each carry field, in the carry NamedTuple's order (h first)."""
        return (self.output_size,) + (self.hidden_size,) * (len(self.carry_type._fields) - 1)

    def input_kernel_shape(self, params: Params) -> tuple[int, ...]:
        """The shape of params['w_ih']; ValueError when params is not a dict holding it."""
        if not isinstance(params, dict) or "w_ih" not in params:
            keys = sorted(params) if isinstance(params, dict) else type(params).__name__
            raise ValueError(
                f"{type(self).__name__}: params must be a dict with 'w_ih' (from cell.init), "
                f"got {keys}."
            )
        return tuple(jnp.shape(params["w_ih"]))

    def input_size(self, params: Params) -> int:
        shape = self.input_kernel_shape(params)
        if len(shape) != 2 or shape[0] == 0:
            raise ValueError(
                f"{type(self).__name__}: params['w_ih'] must be a 2-D array [input_size, "
                f"{self.num_gates} * hidden_size] (from cell.init), got shape {shape}."
            )
        return shape[0]

    def check_params(self, params: Params) -> None:
        """Raises ValueError when `params` does not fit this cell."""
        expected = self.param_shapes(self.input_size(params))
        if set(params) != set(expected):
            raise ValueError(
                f"{type(self).__name__}: params must have keys {sorted(expected)}, "
                f"got {sorted(params)}."
            )
        for name, shape in expected.items():
            if tuple(params[name].shape) != shape:
                raise ValueError(
                    f"{type(self).__name__}: params[{name!r}] must have shape {shape} for "
                    f"hidden_size={self.hidden_size}, got {tuple(params[name].shape)}."
                )

    def param_shapes(self, input_size: int) -> dict[str, tuple[int, ...]]:
        shapes = jax.eval_shape(lambda: self.init(jax.random.key(0), input_size))
        return {k: tuple(v.shape) for k, v in shapes.items()}

    # -- carry ------------------------------------------------------------------------------
    def initial_carry(self, batch_size: int, dtype: Any = None):
        """The all-zeros carry for `batch_size` sequences (one buffer per field, so a fresh
        carry can be donated). `batch_size` may be 0 (an empty batch, as `cells.scan` takes)
        or a symbolic dimension (`jax.export`). dtype: default float32, or float64 for a cell
        with float64 params (`carry_dtype`)."""
        symbolic = jax.export.is_symbolic_dim(batch_size)
        if not symbolic and (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, int | np.integer)
            or batch_size < 0
        ):
            raise ValueError(
                f"{type(self).__name__}.initial_carry: batch_size must be an int >= 0, "
                f"got {batch_size!r}."
            )
        dtype = carry_dtype(None, self.param_dtype) if dtype is None else dtype
        sizes = self.carry_sizes
        return self.carry_type(*(jnp.zeros((batch_size, n), dtype) for n in sizes))

    def check_carry(self, carry, batch_size, what: str = "carry") -> None:
        """Raises ValueError unless `carry` is this cell's carry type with [B, width] arrays."""
        expected = tuple((batch_size, n) for n in self.carry_sizes)
        ok = isinstance(carry, self.carry_type) and all(
            tuple(jnp.shape(a)) == e for a, e in zip(carry, expected, strict=True)
        )
        if not ok:
            shapes = jax.tree.map(jnp.shape, carry)
            raise ValueError(
                f"{what} must be a {self.carry_type.__name__} of arrays {expected} "
                f"(cell.initial_carry(batch_size={batch_size})), got {shapes}."
            )

    @classmethod
    def example_options(cls, hidden_size: int) -> dict[str, Any]:
        """Options this class cannot be built without, for a width of `hidden_size` (none by
        default): `cls(hidden_size, **cls.example_options(hidden_size))` is a valid cell, which
        generic code (tests over every registered cell, benchmarks) builds."""
        return {}

    def backward_rule(self):
        """The step-gradient object `cells.scan(..., backward='fused')` uses, or None.

        A class's `fused_backward` is only valid for the exact forward it was derived from, so
        it is safe by construction: a subclass inherits it only while it defines nothing that
        could change the forward, i.e. nothing but dataclass fields (new defaults: the backward
        reads the options from the cell), validation (`__post_init__`), `example_options`,
        initial values (`init` and its helpers) and `reference_step`. Overriding any other
        method, property or class variable (`fused_step`, `recurrent`, `_gate_math`,
        `effective_u`, `num_gates`, ...) gives None, i.e. autodiff, unless the subclass
        declares its own `fused_backward` (then it vouches for it). `forward_overrides` lists
        what a subclass overrides.
        """
        cls = type(self)
        declared_in = defining_class(cls, "fused_backward")
        if cls.fused_backward is None or forward_overrides(cls, declared_in):
            return None
        return cls.fused_backward(self)

    # -- the sequence path ------------------------------------------------------------------
    def input_projection(self, params: Params, xs: Array) -> Array:
        """x_t W_ih + b for every step at once: one GEMM over [..., I] -> [..., G*H]."""
        return add_bias(matmul(xs, params["w_ih"], self.compute_dtype), params["b"])

    def fused_step(self, params: Params, carry, xp: Array):
        """One step from the projected input xp [B, G*H]: returns (carry, h, gates)."""
        raise NotImplementedError

    def step(
        self,
        params: Params,
        carry,
        x: Array,
        *,
        recurrent_dropout: float = 0.0,
        zoneout: float | tuple[float, float] = 0.0,
        rng: Array | None = None,
        t: int | Array = 0,
    ):
        """One step from the raw input x [B, I]: returns (carry, h [B, output_size]).

        The step `cells.scan` runs, for autoregressive generation and custom loops; params, x
        and carry are validated like `cells.scan`'s, and the carry runs in `carry_dtype`.
        recurrent_dropout, zoneout and rng act as in `cells.scan` at its step t: without rng
        (evaluation) zoneout is its expectation and recurrent dropout is off, so a model
        evaluated with zoneout generates with the same function; with rng, stepping t = 0, 1,
        ... with the same key equals `cells.scan(..., rng=key)`.

            carry = cell.initial_carry(B)
            for t in range(T):
                carry, h = cell.step(params, carry, xs[:, t], zoneout=0.1)
        """
        self.check_params(params)
        if getattr(x, "ndim", None) != 2 or x.shape[-1] != self.input_size(params):
            raise ValueError(
                f"{type(self).__name__}.step: x must be [batch, {self.input_size(params)}], got "
                f"shape {getattr(x, 'shape', x)}."
            )
        self.check_carry(carry, x.shape[0], f"{type(self).__name__}.step: carry")
        dtype = carry_dtype(params, x, carry)
        carry = self.carry_type(*(jnp.asarray(a).astype(dtype) for a in carry))
        drop, rates = regularization.recurrent_rates(self, recurrent_dropout, zoneout)
        params = regularization.with_recurrent_mask(
            params, drop, rng, x.shape[0], self.recurrent_input_size, dtype
        )
        new, h, _ = self.fused_step(params, carry, self.input_projection(params, x))
        if max(rates) > 0:
            new = self.zone_carry(new, carry, self.zoneout_weights(rates, rng, t, carry))
            h = new[0]  # every cell's output is its carry's h
        return new, h

    def zoneout_weights(self, rates: tuple[float, float], rng, t, carry) -> tuple:
        """`regularization.zoneout_weights` with this cell's `zoneout_groups`."""
        return regularization.zoneout_weights(rates, rng, t, carry, self.zoneout_groups)

    def zone_carry(self, new, old, weights: tuple):
        """The carry after zoneout (Krueger et al. 2017): field by field where(mask, old, new),
        or p * old + (1 - p) * new without masks (`regularization.zoneout`). A cell whose
        carry fields are not independent states overrides it (the sLSTM's stabilised state)."""
        return regularization.zoneout(new, old, weights)

    def reference_step(self, params: Params, carry, x: Array):
        """One step written gate by gate from the equations: returns (carry, h)."""
        raise NotImplementedError

    def recurrent(self, params: Params, h: Array) -> Array:
        """h W_hh: the one recurrent GEMM of a step (all gates at once)."""
        return matmul(recurrent_input(params, h), params["w_hh"], self.compute_dtype)

    def recurrent_matrix(self, params: Params) -> Array:
        """The dense recurrent matrix W_hh [H_in, G*H] (a head-wise w_hh [NH, D, G*D]
        expanded to its block-diagonal form), for specifications and conversions."""
        w = params["w_hh"]
        return block_diagonal(w, self.num_gates) if w.ndim == 3 else w

    def split_gates(self, params: Params, name: str) -> list[Array]:
        """Splits a fused parameter (w_ih, w_hh or b) into its per-gate blocks (w_hh in its
        dense form, `recurrent_matrix`)."""
        w = self.recurrent_matrix(params) if name == "w_hh" else params[name]
        return jnp.split(w, self.num_gates, axis=-1)


class LayerNormOption:
    """Mixin for cells with a `layer_norm` field (LSTM, GRU): with it, the input projection is
    LN_x(x W_ih) + b and the recurrent product LN_h(h W_hh), each normalised over all gate
    blocks together (`layer_norm` above), and the hand-written backward does not apply
    (`backward='fused'` runs autodiff).

    With a one-feature input (I = 1) the input normalisation keeps only the input's sign:
    LN_x(x w) = sign(x) (w - mean w) / std(w) for any |x| >> epsilon, so a scalar signal's
    magnitude never reaches the cell (the LN cells stay at 20% on MNIST-1D, a 1-feature series);
    embed such inputs first (a Dense to a few features) or use the plain cell."""

    def recurrent(self, params: Params, h: Array) -> Array:
        hw = super().recurrent(params, h)
        if self.layer_norm:
            hw = layer_norm(hw, params["ln_h_scale"], params["ln_h_bias"])
        return hw

    def input_projection(self, params: Params, xs: Array) -> Array:
        if not self.layer_norm:
            return super().input_projection(params, xs)
        xw = matmul(xs, params["w_ih"], self.compute_dtype)
        return add_bias(layer_norm(xw, params["ln_x_scale"], params["ln_x_bias"]), params["b"])

    def backward_rule(self):
        return None if self.layer_norm else super().backward_rule()


def block_diagonal(w_hh_NxDxGD: Array, num_gates: int) -> Array:
    """The dense [H, G*H] (gate-major) form of a head-wise recurrent matrix [NH, D, G*D].

    Head k maps its own units h[k*D:(k+1)*D] to its own D columns of each gate block: the
    entry w[k, a, g*D + b] lands at row k*D + a, column g*H + k*D + b; all else is zero.
    """
    heads, d, gd = w_hh_NxDxGD.shape
    w_NxDxGxD = w_hh_NxDxGD.reshape(heads, d, num_gates, gd // num_gates)
    eye_NxN = jnp.eye(heads, dtype=w_hh_NxDxGD.dtype)
    # dense[k, a, g, j, b] = w[k, a, g, b] if j == k: rows (k, a), columns (g, j, b).
    dense = jnp.einsum("kagb,kj->kagjb", w_NxDxGxD, eye_NxN)
    return dense.reshape(heads * d, num_gates * heads * d)


def headwise_matmul(h_BxH: Array, w_hh_NxDxGD: Array, num_gates: int, compute_dtype) -> Array:
    """h R for a block-diagonal R stored head-wise [NH, D, G*D]: one batched [NH] matmul
    ([B, NH, D] x [NH, D, G*D]) instead of a dense [B, H] x [H, G*H] one; the result is laid
    out gate-major [B, G*H] like a dense cell's product. Float32 (or wider) accumulation."""
    heads, d, gd = w_hh_NxDxGD.shape
    if heads == 1:  # one head is the dense matrix; a plain GEMM (XLA:CPU's batched one is slower)
        return matmul(h_BxH, w_hh_NxDxGD[0], compute_dtype)
    batch = h_BxH.shape[0]
    h_BxNxD = h_BxH.reshape(batch, heads, d)
    acc = jnp.promote_types(jnp.float32, h_BxH.dtype)
    if compute_dtype is not None:
        h_BxNxD, w_hh_NxDxGD = h_BxNxD.astype(compute_dtype), w_hh_NxDxGD.astype(compute_dtype)
    y_BxNxGD = jnp.einsum("bnd,nde->bne", h_BxNxD, w_hh_NxDxGD, preferred_element_type=acc)
    y_BxGxNxD = y_BxNxGD.reshape(batch, heads, num_gates, d).transpose(0, 2, 1, 3)
    return y_BxGxNxD.reshape(batch, num_gates * heads * d)


def check_num_heads(cell) -> None:
    """Raises ValueError unless cell.num_heads is a positive int dividing cell.hidden_size."""
    n, name = cell.num_heads, type(cell).__name__
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{name}: num_heads must be a positive int, got {n!r}.")
    if cell.hidden_size % n:
        raise ValueError(
            f"{name}: num_heads={n} must divide hidden_size={cell.hidden_size} "
            "(each head has hidden_size / num_heads units)."
        )


class HeadwiseOption:
    """Mixin for cells with a `num_heads` field (LSTM, GRU; FlashRNN's multi-head cells and the
    sLSTM's head-wise memory mixing, Beck et al. 2024): the recurrent matrix is block-diagonal
    over NH heads of D = H / NH units, stored as w_hh [NH, D, G*D] (head k maps its own D units
    to its own D columns of each of the G gate blocks, in the cell's gate order), and a step
    does one batched [NH] matmul. num_heads=1 keeps the dense [H, G*H] layout (a class that sets
    `always_headwise` stores [1, H, G*H] instead). Head-wise cells run autodiff for
    backward='fused' (the hand-written backward covers dense w_hh only).
    """

    always_headwise: ClassVar[bool] = False

    @property
    def headwise(self) -> bool:
        return self.always_headwise or self.num_heads > 1

    def check_heads(self) -> None:
        check_num_heads(self)

    def _init_recurrent(self, key):
        """Head-wise: each head's [D, G*D] drawn as a dense cell's w_hh of width D (gate block
        by gate block, or fused where the scheme draws it so)."""
        if not self.headwise:
            return super()._init_recurrent(key)
        heads, g = self.num_heads, self.num_gates
        d = self.hidden_size // heads
        init, per_block = self._recurrent_rule()
        if not per_block:
            keys = jax.random.split(key, heads)
            return jnp.stack([self._init(init, k, (d, g * d)) for k in keys])
        keys = jax.random.split(key, heads * g)
        blocks = [self._init(init, k, (d, d)) for k in keys]
        return jnp.stack(
            [jnp.concatenate(blocks[k * g : (k + 1) * g], axis=1) for k in range(heads)]
        )

    def recurrent(self, params, h):
        if not self.headwise:
            return super().recurrent(params, h)
        h = recurrent_input(params, h)
        return headwise_matmul(h, params["w_hh"], self.num_gates, self.compute_dtype)

    def backward_rule(self):
        return None if self.headwise else super().backward_rule()
