"""Pre-norm residual blocks of recurrent cells: the block the minGRU (Feng et al. 2024) and
xLSTM (Beck et al. 2024) papers stack, usable with any cell.

Block k of width D (the cells' output size), on inputs x [B, T, D]:

    u = x + dropout(Cell_k(Norm(x)))                 the recurrent branch (a cell, or Hawk's
                                                     recurrent block `cells.HawkBlock`)
    y = u + dropout(FFN(Norm(u)))                    the optional gated feed-forward branch
    FFN(v) = (GELU(v W_gate) * (v W_up)) W_down      GeGLU (Shazeer 2020), inner width round(f D)

and after the last block a final Norm (as pre-norm transformers and the xLSTM stack do).
Norm is RMSNorm (Zhang & Sennrich 2019), v / sqrt(mean(v^2) + 1e-5) * s, or LayerNorm
(Ba et al. 2016; `cells.base.layer_norm`), scales 1 and biases 0 at init. When the input width
I differs from D, a linear map w_in [I, D] (+ b_in) projects the inputs first.

The interface is `cells.Stack`'s (init, initial_carry, __call__ with carry / lengths / resets /
rng / scan options, step), so a task can use either:

    stack = cells.ResidualStack((cells.MinGRU(256),) * 4, ffn_factor=4 / 3)
    params = stack.init(key, input_size=256)
    ys, carries = stack(params, xs, lengths=lengths, rng=key)   # rng=None: no dropout

Outputs are zero at padded steps (t >= lengths[b]), and padded inputs are zeroed first (NaN
there reaches neither values nor gradients), as in `cells.scan`.
"""

from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp

from cells import base, hawk, regularization
from cells import layers as layers_lib
from cells import sequence as sequence_lib

NORMS = ("rms", "layer")
RMS_EPSILON = 1e-5


def rms_norm(x, scale):
    """x / sqrt(mean(x^2) + 1e-5) * scale over the last axis (float32 math)."""
    x32 = x.astype(jnp.promote_types(jnp.float32, x.dtype))
    y = x32 * jax.lax.rsqrt(jnp.mean(jnp.square(x32), axis=-1, keepdims=True) + RMS_EPSILON)
    return y * scale.reshape((1,) * (y.ndim - 1) + scale.shape)


def _linear_init(key, fan_in: int, fan_out: int):
    """LeCun-uniform weights [fan_in, fan_out] (U[-sqrt(3/fan_in), +])."""
    limit = (3.0 / fan_in) ** 0.5
    return jax.random.uniform(key, (fan_in, fan_out), jnp.float32, -limit, limit)


@dataclasses.dataclass(frozen=True)
class ResidualStack:
    """Pre-norm residual blocks, one cell each. See the module docstring.

    Attributes:
      layers: a tuple of cells (or `cells.HawkBlock`s: Griffin's Hawk is
        `ResidualStack.uniform(cells.HawkBlock(D), L, ffn_factor=3)`), bottom first, all with
        the same output size D, each taking D-wide inputs.
      norm: 'rms' (RMSNorm) or 'layer' (LayerNorm).
      ffn_factor: f > 0 adds the gated feed-forward branch of inner width round(f * D) to every
        block; 0 = none.
      dropout: rate of the dropout on each branch's output before it is added, in [0, 1).
      locked_dropout: draw each branch's dropout mask once per sequence and feature, the same
        at every step (variational dropout, Gal & Ghahramani 2016;
        `cells.regularization.locked_dropout`) instead of per element and step.
    """

    layers: tuple
    norm: str = "rms"
    ffn_factor: float = 0.0
    dropout: float = 0.0
    locked_dropout: bool = False

    def __post_init__(self):
        if not isinstance(self.layers, tuple) or not self.layers:
            raise ValueError(
                f"ResidualStack: layers must be a non-empty tuple of cells, got {self.layers!r}."
            )
        for layer in self.layers:
            if not isinstance(layer, base.Cell | hawk.HawkBlock):
                raise ValueError(
                    f"ResidualStack: every layer must be a cell or a cells.HawkBlock, got "
                    f"{layer!r}."
                )
        widths = {layer.output_size for layer in self.layers}
        if len(widths) != 1:
            raise ValueError(
                f"ResidualStack: every cell needs the same output size, got {sorted(widths)}."
            )
        if self.norm not in NORMS:
            raise ValueError(f"ResidualStack: norm must be one of {NORMS}, got {self.norm!r}.")
        f = self.ffn_factor
        if isinstance(f, bool) or not isinstance(f, int | float) or not f >= 0:
            raise ValueError(f"ResidualStack: ffn_factor must be a number >= 0, got {f!r}.")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"ResidualStack: dropout must lie in [0, 1), got {self.dropout!r}.")
        if not isinstance(self.locked_dropout, bool):
            raise ValueError(
                f"ResidualStack: locked_dropout must be True or False, got {self.locked_dropout!r}."
            )

    @classmethod
    def uniform(cls, cell: base.Cell, num_layers: int, **kwargs) -> ResidualStack:
        """`num_layers` blocks of `cell`."""
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(
                f"ResidualStack: num_layers must be a positive int, got {num_layers!r}."
            )
        return cls((cell,) * num_layers, **kwargs)

    @property
    def width(self) -> int:
        """D, the residual stream's width (every cell's output size)."""
        return self.layers[0].output_size

    @property
    def output_size(self) -> int:
        return self.width

    @property
    def ffn_size(self) -> int:
        return round(self.ffn_factor * self.width)

    # -- parameters ------------------------------------------------------------------------
    def _norm_init(self):
        d = self.width
        params = {"scale": jnp.ones((d,), jnp.float32)}
        if self.norm == "layer":
            params["bias"] = jnp.zeros((d,), jnp.float32)
        return params

    def init(self, key, input_size: int) -> dict:
        if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size <= 0:
            raise ValueError(
                f"ResidualStack.init: input_size must be a positive int, got {input_size!r}."
            )
        k_in, *keys = jax.random.split(key, len(self.layers) + 1)
        width = self.width
        params = {"blocks": [], "final_norm": self._norm_init()}
        if input_size != width:
            params["w_in"] = _linear_init(k_in, input_size, width)
            params["b_in"] = jnp.zeros((width,), jnp.float32)
        for cell, k in zip(self.layers, keys, strict=True):
            k_cell, k_gate, k_up, k_down = jax.random.split(k, 4)
            block = {"norm": self._norm_init(), "cell": cell.init(k_cell, width)}
            if self.ffn_size:
                block["ffn_norm"] = self._norm_init()
                block["w_gate"] = _linear_init(k_gate, width, self.ffn_size)
                block["w_up"] = _linear_init(k_up, width, self.ffn_size)
                block["w_down"] = _linear_init(k_down, self.ffn_size, width)
            params["blocks"].append(block)
        params["blocks"] = tuple(params["blocks"])
        return params

    def initial_carry(self, batch_size: int) -> tuple:
        return tuple(layer.initial_carry(batch_size) for layer in self.layers)

    # -- the computation -------------------------------------------------------------------
    def _normalise(self, p, x):
        if self.norm == "rms":
            return rms_norm(x, p["scale"])
        return base.layer_norm(x, p["scale"], p["bias"])

    def _matmul(self, x, w):
        return base.matmul(x, w, self.layers[0].compute_dtype).astype(jnp.float32)

    def _ffn(self, block, u):
        v = self._normalise(block["ffn_norm"], u)
        hidden = jax.nn.gelu(self._matmul(v, block["w_gate"])) * self._matmul(v, block["w_up"])
        return self._matmul(hidden, block["w_down"])

    def _project_inputs(self, params, x):
        if "w_in" not in params:
            return x.astype(jnp.promote_types(jnp.float32, x.dtype))
        return base.add_bias(self._matmul(x, params["w_in"]), params["b_in"])

    def _check(self, params, carry, what: str = "carry") -> None:
        if not isinstance(params, dict) or len(params.get("blocks", ())) != len(self.layers):
            raise ValueError(
                f"ResidualStack: params must be ResidualStack.init's dict with {len(self.layers)} "
                "blocks."
            )
        if carry is not None and (
            not isinstance(carry, tuple | list) or len(carry) != len(self.layers)
        ):
            raise ValueError(
                f"ResidualStack: {what} must be a tuple of {len(self.layers)} per-layer "
                "carries (stack.initial_carry(batch_size))."
            )

    def __call__(
        self,
        params,
        xs,
        *,
        carry=None,
        initial_carry=None,
        lengths=None,
        resets=None,
        rng=None,
        **scan_kwargs,
    ):
        """Runs every block. Returns (ys [B, T, D] after the final norm, tuple of carries).

        Arguments as `cells.Stack.__call__` (carry and initial_carry: tuples of per-block
        carries; recurrent_dropout / zoneout in scan_kwargs get a key per block from rng);
        rng=None means no dropout (evaluation).
        """
        self._check(params, carry)
        self._check(params, initial_carry, "initial_carry")
        if lengths is not None:
            lengths = jnp.asarray(lengths)
            xs = sequence_lib._zero_padding(xs, lengths)
        x = self._project_inputs(params, xs)
        carries = (None,) * len(self.layers) if carry is None else carry
        inits = (None,) * len(self.layers) if initial_carry is None else initial_carry
        new_carries = []
        for k, (cell, block, c, init) in enumerate(
            zip(self.layers, params["blocks"], carries, inits, strict=True)
        ):
            kwargs = layers_lib.layer_scan_kwargs(scan_kwargs, rng, k)
            hawk_block = isinstance(cell, hawk.HawkBlock)
            run = cell.scan if hawk_block else partial(sequence_lib.scan, cell)
            ys, c = run(
                block["cell"],
                self._normalise(block["norm"], x),
                carry=c,
                initial_carry=init,
                lengths=lengths,
                resets=resets,
                **kwargs,
            )
            x = x + self._dropout(rng, 2 * k, ys.astype(x.dtype))
            if self.ffn_size:
                x = x + self._dropout(rng, 2 * k + 1, self._ffn(block, x))
            new_carries.append(c)
        ys = self._normalise(params["final_norm"], x)
        if lengths is not None:
            valid = jnp.arange(ys.shape[1])[None, :, None] < lengths[:, None, None]
            ys = jnp.where(valid, ys, 0.0)
        return ys, tuple(new_carries)

    def step(self, params, carry, x, *, rng=None, recurrent_dropout=0.0, zoneout=0.0, t=0):
        """One time step of every block: x [B, I] -> (tuple of carries, output [B, D]).

        Arguments as `cells.Stack.step`: recurrent_dropout and zoneout as `cells.scan` applies
        them at its step t (without rng, zoneout's expectation: what evaluation computes).
        """
        self._check(params, carry)
        if carry is None:
            raise ValueError(
                "ResidualStack.step: carry is required (stack.initial_carry(batch_size))."
            )
        x = self._project_inputs(params, x)
        recurrent = {"recurrent_dropout": recurrent_dropout, "zoneout": zoneout}
        new_carries = []
        for k, (cell, block, c) in enumerate(
            zip(self.layers, params["blocks"], carry, strict=True)
        ):
            kwargs = layers_lib.layer_scan_kwargs(recurrent, rng, k)
            c, h = cell.step(block["cell"], c, self._normalise(block["norm"], x), t=t, **kwargs)
            x = x + self._dropout(rng, 2 * k, h.astype(x.dtype))
            if self.ffn_size:
                x = x + self._dropout(rng, 2 * k + 1, self._ffn(block, x))
            new_carries.append(c)
        return tuple(new_carries), self._normalise(params["final_norm"], x)

    def _dropout(self, rng, index: int, x):
        """Branch `index`'s dropout on x [B, T, D] (or one step's [B, D]): locked, one mask
        per sequence and feature that every step of the sequence shares (the same key gives a
        step the mask its sequence has); else fresh per element."""
        key = None if rng is None else jax.random.fold_in(rng, index)
        if self.locked_dropout and x.ndim == 3:
            return regularization.locked_dropout(key, self.dropout, x)
        if self.locked_dropout:
            return regularization.locked_dropout(key, self.dropout, x[:, None])[:, 0]
        return layers_lib.dropout(key, self.dropout, x)
