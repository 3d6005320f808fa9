"""Language modelling (word or character level): the task behind ptb_* and shakespeare_* configs.

Model (Zaremba et al. 2014, "Recurrent Neural Network Regularization"):

    x_t      = dropout(E[w_t])                       embedding E [V, D]
    h^l_t    = cell_l(dropout(h^{l-1}_t), h^l_{t-1})   a cells.Stack (dropout between layers)
    logits_t = dropout(h^L_t) W + b                  W [H, V] (or P E^T when tied; P [H, D]
                                                     only when D != H)
    p(w_{t+1} | w_<=t) = softmax(logits_t)

Dropout is on the non-recurrent connections only. With init_scale s > 0 every parameter
(embedding, cell weights and biases, softmax) starts uniform in [-s, s], as in Zaremba's code
(biases included: the LSTM forget-gate bias starts in [-s, s] too, as in Zaremba's and TF's
code); init_scale 0 keeps the cells' own initialisers (e.g. `cell_options.forget_bias`).

Regularisation beyond Zaremba's (`REGULARIZATION` below, all off by default; the AWD-LSTM
toolbox of Merity et al. 2018 from `cells.regularization`): dropout_input / dropout_output set
the embedding-output and top-output rates apart from model.dropout (which stays the
between-layer rate), locked_dropout makes all three variational (one mask per sequence,
Gal & Ghahramani 2016), embed_dropout drops whole word types, weight_drop is DropConnect on
every layer's w_hh (one mask per batch), recurrent_dropout drops h in every layer's recurrent
product with one mask per sequence, zoneout keeps units of h and c (the expectation in
evaluation), ar_alpha / tar_beta add AR on the dropped top output
and TAR on the raw one to the objective (training only). tie_embeddings with embed_size !=
the top output size inserts a linear map [H, D] before the tied softmax E^T (Inan et al. 2017).

With model.block='residual' (or 'hawk': Hawk's recurrent block, `cells.HawkBlock`, for the
cell 'rglru') the stack is a `cells.ResidualStack` (pre-norm residual blocks,
optional gated FFN, a final norm; the minGRU/xLSTM papers' block): h^l = h^{l-1} +
dropout(cell_l(Norm(h^{l-1}))) (+ the FFN branch), dropout on every branch; its norms keep
their scale 1 / bias 0 under init_scale.

Objective (what is differentiated and clipped), config.model.objective:
  'window_sum':  sum_{b,t} nll_{b,t} / B    cross-entropy summed over the window, averaged over
                 the batch: Zaremba's and TF's `cost`, which their lr 1.0 and clip 5 assume.
  'token_mean':  sum_{b,t} nll_{b,t} / (B T)  the per-token mean (for Adam and the like).
Reported: loss = nll per token (nats), perplexity = exp(loss), and at char level
bits_per_char = loss / ln 2.

The carry passes from one window to the next (truncated BPTT); the loop's steps restart it from
`init_carry` (zeros) where the batch's 'reset' is True, i.e. on each epoch's first window.
Evaluation carries it over the whole split, window after window.

Model kinds (config.model.kind): 'rnn' (the stack above) or 'gpt', a decoder-only Transformer
as nanoGPT writes it (`train/tasks/lm_gpt.py`): config.model.num_layers blocks of width
hidden_size with model.num_heads heads, model.block_size learned positions (0: train.seq_len),
model.bias, model.dropout; its embedding is always tied. A GPT carries nothing between windows.

Training windows (config.data.train_windows): 'streams', the truncated-BPTT layout above, or
'random', nanoGPT's `get_batch`: each row a window of seq_len + 1 tokens at an offset drawn
uniformly from the training split (batch k's offsets from the seed and k, so a resumed run draws
the same ones), the carry restarting at every window.

Evaluation (config.data.eval_window): 0 carries the state over the whole split (above); N > 0
scores every non-overlapping window of N targets, each predicted from the context inside its
window only (`text.fixed_windows`): the like-for-like number for models that cannot carry state
(a GPT). A recurrent model scored this way also reports its carried-state score, as the extra
splits 'valid_carried' and 'test_carried'.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import ml_collections

import cells
from cells import base as cells_base
from cells import regularization
from train import models
from train.data import text
from train.errors import ConfigError
from train.tasks import base, lm_gpt

_OBJECTIVES = ("window_sum", "token_mean")
KINDS = ("rnn", "gpt")
TRAIN_WINDOWS = ("streams", "random")
CARRIED = "_carried"  # the suffix of the carried-state splits beside windowed evaluation

# The GPT's config.model fields, with the defaults a recurrent model leaves them at.
GPT_FIELDS = {
    "kind": "rnn",  # 'rnn' (model.cell in a stack) | 'gpt' (lm_gpt.py)
    "num_heads": 1,  # gpt: attention heads (hidden_size must be a multiple)
    "block_size": 0,  # gpt: the longest context (learned positions); 0 = train.seq_len
    "bias": False,  # gpt: biases in the linear maps and LayerNorms (nanoGPT's switch)
}
# config.data fields added since configs were first saved, with their old meaning.
DATA_FIELDS = {
    "train_windows": "streams",  # 'streams' (truncated BPTT, carry kept) | 'random' (nanoGPT)
    "eval_window": 0,  # 0: carry the state over the split; N > 0: every window of N targets
}
# config.model fields that describe only the recurrent model (refused for the GPT).
_RNN_ONLY = {
    "cell": "lstm",  # the schema's default
    "cell_options": {},
    "block": "stack",
    "init_scale": 0.0,
    "embed_size": 0,
}

# The AWD-LSTM toolbox (Merity et al. 2018; `cells.regularization`): config.model fields and
# their defaults (all off). A config adds them with `config.model.update(lm.REGULARIZATION)`
# so they can be overridden from the command line.
REGULARIZATION = {
    "dropout_input": -1.0,  # dropout on the embedding output; -1 = model.dropout
    "dropout_output": -1.0,  # dropout on the top layer's output; -1 = model.dropout
    "locked_dropout": False,  # one mask per sequence (variational) for all three dropouts
    "embed_dropout": 0.0,  # drop whole word types of the embedding (Gal & Ghahramani 2016)
    "weight_drop": 0.0,  # DropConnect on every layer's w_hh, one mask per batch (Wan 2013)
    "recurrent_dropout": 0.0,  # variational dropout of h in h W_hh, one mask per sequence
    "zoneout": 0.0,  # zoneout of h and c (Krueger et al. 2017); evaluation uses its expectation
    "ar_alpha": 0.0,  # activation regularisation: alpha * mean(dropped top output^2)
    "tar_beta": 0.0,  # temporal AR: beta * mean((h_t - h_{t-1})^2) of the raw top output
}


def _is_norm(path) -> bool:
    """Whether a parameter belongs to a residual block's norm (kept at scale 1, bias 0)."""
    return any(getattr(k, "key", None) in ("norm", "ffn_norm", "final_norm") for k in path)


class LMTask(base.Task):
    """Next-token prediction over a text corpus with an embedding -> RNN stack -> softmax model."""

    name = "lm"
    model_fields = (
        "embed_size",
        "tie_embeddings",
        "init_scale",
        "objective",
        *REGULARIZATION,
        *GPT_FIELDS,
    )
    model_defaults = {**REGULARIZATION, **GPT_FIELDS}
    data_fields = ("level", "valid_fraction", "test_fraction", *DATA_FIELDS)
    data_defaults = DATA_FIELDS
    dropout_between_layers_only = False  # also on the embedding output and the top output

    def __init__(self, config: ml_collections.ConfigDict):
        super().__init__(config)
        data = config.data
        self.corpus = text.load_corpus(
            data.path,
            data.get("level", "word"),
            float(data.get("valid_fraction", 0.1)),
            float(data.get("test_fraction", 0.0)),
        )
        self.vocab_size = len(self.corpus.vocab)
        m = config.model
        self.train_windows = data.get("train_windows", "streams")
        self.eval_window = int(data.get("eval_window", 0))
        self.objective = m.get("objective", "window_sum")
        self.gpt = None
        if m.get("kind", "rnn") == "gpt":
            self.gpt = lm_gpt.GPTConfig(
                vocab_size=self.vocab_size,
                block_size=int(m.get("block_size", 0)) or int(config.train.seq_len),
                num_layers=int(m.num_layers),
                width=int(m.hidden_size),
                num_heads=int(m.get("num_heads", 1)),
                dropout=float(m.dropout),
                bias=bool(m.get("bias", False)),
                compute_dtype=models.compute_dtype(config),
            )
            return
        self.cell = models.make_cell(config)
        self.stack = models.make_stack(config, self.cell)
        self.embed_size = m.get("embed_size", 0) or m.hidden_size
        self.tied = bool(m.get("tie_embeddings", False))
        # Tied with different widths: a linear map [H, D] before the tied softmax E^T.
        self.tied_projection = self.tied and self.embed_size != self.stack.output_size
        self.dropout = float(m.dropout)
        self.reg = {k: m.get(k, v) for k, v in REGULARIZATION.items()}
        for k in ("dropout_input", "dropout_output"):
            if self.reg[k] < 0:
                self.reg[k] = self.dropout
        # cells.scan options (run step by step, either backward); zoneout acts in evaluation
        # too (as its expectation), recurrent dropout only with an rng (training).
        self.recurrent_options = {
            k: float(self.reg[k]) for k in ("recurrent_dropout", "zoneout") if self.reg[k]
        }

    # -- checks --------------------------------------------------------------------------------
    @classmethod
    def validate(cls, config):
        m, d = config.model, config.data
        if m.get("objective", "window_sum") not in _OBJECTIVES:
            raise ConfigError(
                f"config.model.objective must be one of {_OBJECTIVES}, got {m.objective!r}."
            )
        if not float(m.get("init_scale", 0.0)) >= 0:  # also refuses NaN
            raise ConfigError(f"config.model.init_scale must be >= 0, got {m.init_scale!r}.")
        if d.get("level", "word") not in text.LEVELS:
            raise ConfigError(f"config.data.level must be one of {text.LEVELS}, got {d.level!r}.")
        if not d.path:
            raise ConfigError("config.data.path must name a text file or a corpus directory.")
        if not 0.0 <= m.get("zoneout", 0.0) <= 1.0:
            raise ConfigError(f"config.model.zoneout must lie in [0, 1], got {m.zoneout!r}.")
        for k in (
            "dropout_input",
            "dropout_output",
            "embed_dropout",
            "weight_drop",
            "recurrent_dropout",
        ):
            value, follows = m.get(k, REGULARIZATION[k]), k.startswith("dropout_")
            if not (0.0 <= value < 1.0 or (follows and value == -1.0)):  # also refuses NaN
                valid = "-1 (model.dropout) or [0, 1)" if follows else "[0, 1)"
                raise ConfigError(f"config.model.{k} must be {valid}, got {value!r}.")
        for k in ("ar_alpha", "tar_beta"):
            if not m.get(k, 0.0) >= 0:  # also refuses NaN
                raise ConfigError(f"config.model.{k} must be >= 0, got {m.get(k)!r}.")
        cls._validate_windows(config)
        if m.get("kind", "rnn") == "gpt":
            cls._validate_gpt(config)
        elif m.get("kind", "rnn") != "rnn":
            raise ConfigError(f"config.model.kind must be one of {KINDS}, got {m.kind!r}.")
        else:
            for k in ("num_heads", "block_size", "bias"):
                if m.get(k, GPT_FIELDS[k]) != GPT_FIELDS[k]:
                    raise ConfigError(
                        f"config.model.{k}={m.get(k)!r} applies to kind='gpt' only; leave it "
                        f"at {GPT_FIELDS[k]!r} for kind='rnn'."
                    )

    @staticmethod
    def _validate_windows(config):
        d = config.data
        windows = d.get("train_windows", "streams")
        if windows not in TRAIN_WINDOWS:
            raise ConfigError(
                f"config.data.train_windows must be one of {TRAIN_WINDOWS}, got {windows!r}."
            )
        n = d.get("eval_window", 0)
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ConfigError(
                f"config.data.eval_window must be an integer >= 0 (0: carry the state over "
                f"the split), got {n!r}."
            )

    @staticmethod
    def _validate_gpt(config):
        """The GPT's own limits, and the recurrent model's fields refused (never ignored)."""
        m, d, t = config.model, config.data, config.train
        for k, default in {**_RNN_ONLY, **REGULARIZATION}.items():
            value = m.get(k, default)
            value = value.to_dict() if hasattr(value, "to_dict") else value
            if value != default:
                raise ConfigError(
                    f"config.model.{k}={value!r} applies to kind='rnn' only; leave it at "
                    f"{default!r} for kind='gpt'."
                )
        if t.scan_backward != "autodiff":
            raise ConfigError(
                f"config.train.scan_backward={t.scan_backward!r} chooses a recurrent scan's "
                "backward pass; a GPT has no scan: leave it at 'autodiff'."
            )
        if t.scan_backend != "xla":
            raise ConfigError(
                f"config.train.scan_backend={t.scan_backend!r} chooses a recurrent scan's "
                "engine; a GPT has no scan: leave it at 'xla'."
            )
        if not m.get("tie_embeddings", False):
            raise ConfigError(
                "config.model.tie_embeddings must be True for kind='gpt' (its output layer is "
                "the input embedding, as nanoGPT's)."
            )
        heads = m.get("num_heads", 1)
        if isinstance(heads, bool) or not isinstance(heads, int) or heads < 1:
            raise ConfigError(f"config.model.num_heads must be an integer >= 1, got {heads!r}.")
        if m.hidden_size % heads:
            raise ConfigError(
                f"config.model.hidden_size={m.hidden_size} must be a multiple of "
                f"config.model.num_heads={heads} for kind='gpt'."
            )
        block = m.get("block_size", 0) or t.seq_len
        if t.seq_len > block:
            raise ConfigError(
                f"config.train.seq_len={t.seq_len} exceeds config.model.block_size={block}, the "
                "GPT's longest context; raise block_size or lower seq_len."
            )
        window = d.get("eval_window", 0)
        if not 0 < window <= block:
            raise ConfigError(
                f"config.data.eval_window={window}: a GPT cannot carry state over the split; set "
                f"it to a window of 1..{block} (config.model.block_size) targets."
            )

    # -- model ---------------------------------------------------------------------------------
    def init_params(self, rng):
        if self.gpt is not None:
            return lm_gpt.init(rng, self.gpt)
        k_embed, k_rnn, k_out, k_uniform = jax.random.split(rng, 4)
        v, d, h = self.vocab_size, self.embed_size, self.stack.output_size
        params = {
            "embed": jax.random.normal(k_embed, (v, d), jnp.float32) / math.sqrt(d),
            "rnn": self.stack.init(k_rnn, d),
            "softmax": {"b": jnp.zeros((v,), jnp.float32)},
        }
        if not self.tied:
            params["softmax"]["w"] = jax.nn.initializers.glorot_uniform()(k_out, (h, v))
        elif self.tied_projection:
            params["softmax"]["proj"] = models.dense_init(k_out, h, d)["w"]
        scale = float(self.config.model.get("init_scale", 0.0))
        if scale > 0:
            params = models.uniform_init(k_uniform, params, scale, keep=_is_norm)
        return params

    def init_carry(self, batch_size: int):
        if self.gpt is not None:  # nothing passes between a GPT's windows
            return None
        return self.stack.initial_carry(batch_size)

    def _drop(self, rng, rate, x):
        if self.reg["locked_dropout"]:
            return regularization.locked_dropout(rng, rate, x)
        return cells.dropout(rng, rate, x)

    def apply(self, params, carry, inputs_BxT, rng=None, return_outputs=False):
        """Logits [B, T, V] for every position, and the carry after the window (and with
        return_outputs the top layer's outputs before and after dropout, for AR/TAR)."""
        if self.gpt is not None:
            logits = lm_gpt.apply(params, inputs_BxT, self.gpt, rng)
            return (logits, None, (None, None)) if return_outputs else (logits, None)
        keys = (None,) * 5 if rng is None else jax.random.split(rng, 5)
        r_embed, r_in, r_stack, r_out, r_weights = keys
        embed = regularization.embedding_dropout(
            r_embed, self.reg["embed_dropout"], params["embed"]
        )
        x_BxTxD = self._drop(r_in, self.reg["dropout_input"], jnp.take(embed, inputs_BxT, axis=0))
        rnn = params["rnn"]
        if self.reg["weight_drop"] and r_weights is not None:  # one mask per batch and layer
            rnn = regularization.weight_drop_stack(r_weights, self.reg["weight_drop"], rnn)
        raw_BxTxH, carry = self.stack(
            rnn, x_BxTxD, carry=carry, rng=r_stack, **self.scan_kwargs, **self.recurrent_options
        )
        ys_BxTxH = self._drop(r_out, self.reg["dropout_output"], raw_BxTxH)
        b, t, h = ys_BxTxH.shape
        # A 2-D [B*T, H] x [H, V] product: XLA:CPU differentiates it ~2x faster than the 3-D one.
        logits = self._logits(params, ys_BxTxH.reshape(b * t, h)).reshape(b, t, -1)
        if return_outputs:
            return logits, carry, (raw_BxTxH, ys_BxTxH)
        return logits, carry

    def step(self, params, carry, token_B):
        """One time step for generation: (carry, logits [B, V]) of the next token, the function
        evaluation computes (no dropout; zoneout's expectation).

        `cells.Stack.step` over the embedded token; the carry is `init_carry(B)` or what
        `apply` returned after a prompt (`prime`). A GPT's carry is its context
        (`lm_gpt.Context`): the whole context runs through it again, as nanoGPT generates.
        """
        if self.gpt is not None:
            return lm_gpt.step(params, carry, token_B, self.gpt)
        x_BxD = jnp.take(params["embed"], token_B, axis=0)
        carry, h_BxH = self.stack.step(params["rnn"], carry, x_BxD, **self.recurrent_options)
        return carry, self._logits(params, h_BxH)

    def prime(self, params, prompt_BxP):
        """(carry, logits [B, V] of the token after the prompt): what `step` continues from."""
        if self.gpt is not None:
            return lm_gpt.prime(params, prompt_BxP, self.gpt)
        logits_BxPxV, carry = self.apply(params, self.init_carry(prompt_BxP.shape[0]), prompt_BxP)
        return carry, logits_BxPxV[:, -1]

    def _logits(self, params, h_NxH):
        """The softmax layer's logits [N, V] (float32) from top-layer outputs [N, H]."""
        if self.tied_projection:
            h_NxH = cells_base.matmul(h_NxH, params["softmax"]["proj"], self.cell.compute_dtype)
        w_HxV = params["embed"].T if self.tied else params["softmax"]["w"]
        logits_NxV = cells_base.add_bias(
            cells_base.matmul(h_NxH, w_HxV, self.cell.compute_dtype), params["softmax"]["b"]
        )
        return logits_NxV.astype(jnp.float32)

    def _nll(self, params, carry, inputs_BxT, targets_BxT, rng):
        """Per-position negative log-likelihood [B, T] (nats), the carry after the window and
        the AR + TAR penalty (0 in evaluation)."""
        logits_BxTxV, carry, (raw, dropped) = self.apply(
            params, carry, inputs_BxT, rng, return_outputs=True
        )
        b, t, v = logits_BxTxV.shape
        logits_NxV = logits_BxTxV.reshape(b * t, v)
        # One-hot rather than take_along_axis: its gradient is dense, not a scatter (faster on CPU).
        onehot_NxV = jax.nn.one_hot(targets_BxT.reshape(b * t), v, dtype=logits_NxV.dtype)
        nll_N = jax.nn.logsumexp(logits_NxV, axis=-1) - jnp.sum(logits_NxV * onehot_NxV, axis=-1)
        penalty = jnp.zeros((), jnp.float32)
        if (
            rng is not None and self.gpt is None
        ):  # AR on the dropped-out outputs, TAR on the raw ones (Merity et al.)
            penalty = regularization.activation_regularization(dropped, self.reg["ar_alpha"])
            penalty += regularization.temporal_activation_regularization(raw, self.reg["tar_beta"])
        return nll_N.reshape(b, t), carry, penalty

    def loss(self, params, carry, batch, rng, train):
        targets_BxT = batch["targets"]
        nll_BxT, carry, penalty = self._nll(
            params, carry, batch["inputs"], targets_BxT, rng if train else None
        )
        mask_BxT = batch.get("mask")
        if mask_BxT is None:
            mask_BxT = jnp.ones(nll_BxT.shape, jnp.float32)
        nll_sum = jnp.sum(nll_BxT * mask_BxT)
        tokens = jnp.sum(mask_BxT)
        b, t = targets_BxT.shape
        objective = nll_sum / b if self.objective == "window_sum" else nll_sum / (b * t)
        return objective + penalty, (carry, {"nll": nll_sum, "tokens": tokens})

    def summarize(self, sums):
        loss = float(sums["nll"]) / max(float(sums["tokens"]), 1.0)
        metrics = {"loss": loss, "perplexity": math.exp(min(loss, 700.0))}
        if self.corpus.level == "char":
            metrics["bits_per_char"] = loss / math.log(2.0)
        return metrics

    # -- data ----------------------------------------------------------------------------------
    def train_iterator(self):
        tc, ids = self.config.train, self.corpus.splits["train"]
        if self.train_windows == "random":
            return text.RandomWindowIterator(ids, tc.batch_size, tc.seq_len, self.config.seed)
        return text.WindowIterator(ids, tc.batch_size, tc.seq_len)

    @property
    def eval_splits(self):
        if self.eval_window and self.gpt is None:  # the recurrent model's natural use beside it
            return ("valid", "test", "valid" + CARRIED, "test" + CARRIED)
        return ("valid", "test")

    def eval_batches(self, split):
        batch_size = self.config.eval.batch_size
        if self.eval_window and not split.endswith(CARRIED):
            return text.fixed_windows(self.corpus.splits[split], batch_size, self.eval_window)
        ids = self.corpus.splits[split.removesuffix(CARRIED)]
        return text.eval_windows(ids, batch_size, self.config.train.seq_len)

    def model_summary(self) -> str:
        if self.gpt is None:
            return super().model_summary()
        g = self.gpt
        return (
            f"{g.num_layers} x GPT block(width {g.width}, {g.num_heads} heads, context "
            f"{g.block_size})"
        )

    @classmethod
    def width_unit(cls, config) -> int:
        if config.model.get("kind", "rnn") == "gpt":
            return int(config.model.get("num_heads", 1))
        return super().width_unit(config)

    def data_summary(self):
        sizes = "/".join(
            f"{len(self.corpus.splits.get(s, ())):,}" for s in ("train", "valid", "test")
        )
        return f"{sizes} {self.corpus.level}s (train/valid/test), vocabulary {self.vocab_size:,}"

    def objective_note(self):
        if self.objective == "window_sum":
            return (
                "'window_sum' = nll summed over the window, averaged over the batch "
                f"(seq_len {self.config.train.seq_len} x the per-token loss)"
            )
        return "'token_mean' = the per-token nll (the loss)"

    def steps_per_epoch(self):
        if self.train_windows == "random":  # offsets drawn with replacement: no epochs
            return None
        tc = self.config.train
        return text.windows_per_epoch(len(self.corpus.splits["train"]), tc.batch_size, tc.seq_len)
