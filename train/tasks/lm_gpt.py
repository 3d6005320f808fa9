"""A decoder-only Transformer (GPT) for the LM task, as nanoGPT writes it: the attention
baseline a recurrent language model is set against (`config.model.kind = 'gpt'`).

With tokens w_1..w_T (T <= block_size), L layers of width D, H heads of size d = D / H:

    x^0_t   = dropout(E[w_t] + P[t])                           E [V, D], P [block_size, D]
    a^l     = x^{l-1} + dropout(Attn(LN_1(x^{l-1})) W_o)        pre-LayerNorm residual blocks
    x^l     = a^l + dropout(GELU(LN_2(a^l) W_1) W_2)           W_1 [D, 4D], W_2 [4D, D]
    logits  = LN_f(x^L) E^T                                    the input embedding, tied

    Attn(z)_t = concat_h  sum_{s <= t} softmax_s(q_t^h . k_s^h / sqrt(d)) v_s^h
                [q | k | v] = z W_qkv                          W_qkv [D, 3D]; causal: s <= t

LN is LayerNorm (eps 1e-5) with a learned scale and, with `bias`, a learned shift; every
linear map has a bias too when `bias` is True (nanoGPT's `bias` switch). GELU is the exact
(erf) form, PyTorch's nn.GELU. Dropout acts on the embedding sum, on the attention
probabilities and on both residual branches (nanoGPT's `dropout`; off in evaluation).

Initialisation (nanoGPT's `_init_weights`): every weight matrix and both embeddings
N(0, 0.02^2); the two residual projections W_o and W_2 N(0, (0.02 / sqrt(2 L))^2), so the
residual stream's variance does not grow with depth (GPT-2); biases 0, LayerNorm scale 1.
nanoGPT's AdamW decays exactly the tensors of two or more dimensions (the matrices and both
embeddings), which `config.optim.decay_matrices_only` reproduces (`train/optim.py`).

Read for this: karpathy/nanoGPT, model.py and train.py (GPT, Block, CausalSelfAttention, MLP,
configure_optimizers); Radford et al. 2019 (GPT-2) for the pre-norm block and the init.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from cells import base as cells_base
from cells import layers

INIT_STD = 0.02  # nanoGPT's (and GPT-2's) weight standard deviation


@dataclasses.dataclass(frozen=True)
class GPTConfig:
    """The architecture: vocabulary, context, depth, width, heads, dropout, biases."""

    vocab_size: int
    block_size: int  # the longest context (learned positions)
    num_layers: int
    width: int  # D, nanoGPT's n_embd
    num_heads: int
    dropout: float = 0.0
    bias: bool = False
    compute_dtype: str | None = None  # matmul inputs (None: float32)

    def __post_init__(self):
        if self.num_heads < 1 or self.width % self.num_heads:
            raise ValueError(
                f"the GPT's width {self.width} must be a positive multiple of num_heads "
                f"{self.num_heads}."
            )


class Context(NamedTuple):
    """The generation carry: the last block_size tokens seen and how many of them are real."""

    tokens_BxK: jax.Array  # int32, left-aligned: positions >= length hold 0
    length: jax.Array  # int32 scalar, <= block_size


def _normal(key, shape, std):
    return std * jax.random.normal(key, shape, jnp.float32)


def _norm_init(cfg: GPTConfig) -> dict:
    p = {"scale": jnp.ones((cfg.width,), jnp.float32)}
    if cfg.bias:
        p["bias"] = jnp.zeros((cfg.width,), jnp.float32)
    return p


def _linear_init(key, cfg: GPTConfig, fan_in: int, fan_out: int, std: float) -> dict:
    p = {"w": _normal(key, (fan_in, fan_out), std)}
    if cfg.bias:
        p["b"] = jnp.zeros((fan_out,), jnp.float32)
    return p


def init(rng, cfg: GPTConfig) -> dict:
    """{'embed' [V, D], 'pos' [block_size, D], 'blocks': [one dict per layer], 'final_norm'}."""
    d, residual_std = cfg.width, INIT_STD / math.sqrt(2 * cfg.num_layers)
    k_embed, k_pos, *k_layers = jax.random.split(rng, 2 + cfg.num_layers)
    blocks = []
    for key in k_layers:
        k_qkv, k_o, k_1, k_2 = jax.random.split(key, 4)
        blocks.append(
            {
                "norm_1": _norm_init(cfg),
                "qkv": _linear_init(k_qkv, cfg, d, 3 * d, INIT_STD),
                "attn_out": _linear_init(k_o, cfg, d, d, residual_std),
                "norm_2": _norm_init(cfg),
                "mlp_in": _linear_init(k_1, cfg, d, 4 * d, INIT_STD),
                "mlp_out": _linear_init(k_2, cfg, 4 * d, d, residual_std),
            }
        )
    return {
        "embed": _normal(k_embed, (cfg.vocab_size, d), INIT_STD),
        "pos": _normal(k_pos, (cfg.block_size, d), INIT_STD),
        "blocks": blocks,
        "final_norm": _norm_init(cfg),
    }


def _norm(p: dict, x):
    bias = p.get("bias", jnp.zeros_like(p["scale"]))
    return cells_base.layer_norm(x, p["scale"], bias).astype(x.dtype)


def _linear(p: dict, x, compute_dtype):
    y = cells_base.matmul(x, p["w"], compute_dtype)  # float32 (or wider) accumulation
    return cells_base.add_bias(y, p["b"]) if "b" in p else y


def causal_attention(q_BxTxHxd, k_BxTxHxd, v_BxTxHxd, rng=None, dropout: float = 0.0):
    """sum_{s <= t} softmax_s(q_t . k_s / sqrt(d)) v_s per head, dropout on the probabilities;
    softmax in float32 (or wider)."""
    d = q_BxTxHxd.shape[-1]
    t = q_BxTxHxd.shape[1]
    wide = jnp.promote_types(jnp.float32, q_BxTxHxd.dtype)
    scores_BxHxTxT = jnp.einsum("bqhd,bkhd->bhqk", q_BxTxHxd, k_BxTxHxd).astype(wide)
    scores_BxHxTxT = scores_BxHxTxT / math.sqrt(d)
    causal_TxT = jnp.tril(jnp.ones((t, t), bool))
    scores_BxHxTxT = jnp.where(causal_TxT[None, None], scores_BxHxTxT, -jnp.inf)
    probs_BxHxTxT = jax.nn.softmax(scores_BxHxTxT, axis=-1)
    probs_BxHxTxT = layers.dropout(rng, dropout, probs_BxHxTxT)
    return jnp.einsum("bhqk,bkhd->bqhd", probs_BxHxTxT.astype(v_BxTxHxd.dtype), v_BxTxHxd)


def block(p: dict, x_BxTxD, cfg: GPTConfig, rng=None):
    """One pre-LayerNorm Transformer block (attention, then the GELU MLP), both residual."""
    b, t, d = x_BxTxD.shape
    h = cfg.num_heads
    keys = (None,) * 3 if rng is None else jax.random.split(rng, 3)
    qkv_BxTx3D = _linear(p["qkv"], _norm(p["norm_1"], x_BxTxD), cfg.compute_dtype)
    q, k, v = (z.reshape(b, t, h, d // h) for z in jnp.split(qkv_BxTx3D, 3, axis=-1))
    y_BxTxD = causal_attention(q, k, v, keys[0], cfg.dropout).reshape(b, t, d)
    attn_BxTxD = _linear(p["attn_out"], y_BxTxD, cfg.compute_dtype)
    x_BxTxD = x_BxTxD + layers.dropout(keys[1], cfg.dropout, attn_BxTxD)
    hidden = jax.nn.gelu(
        _linear(p["mlp_in"], _norm(p["norm_2"], x_BxTxD), cfg.compute_dtype), approximate=False
    )
    mlp_BxTxD = _linear(p["mlp_out"], hidden, cfg.compute_dtype)
    return x_BxTxD + layers.dropout(keys[2], cfg.dropout, mlp_BxTxD)


def hidden_states(params: dict, tokens_BxT, cfg: GPTConfig, rng=None):
    """LN_f(x^L) [B, T, D]: the final layer's normalised outputs (T <= block_size)."""
    t = tokens_BxT.shape[1]
    keys = (None,) * (cfg.num_layers + 1)
    if rng is not None:
        keys = tuple(jax.random.split(rng, cfg.num_layers + 1))
    x_BxTxD = jnp.take(params["embed"], tokens_BxT, axis=0) + params["pos"][None, :t]
    x_BxTxD = layers.dropout(keys[0], cfg.dropout, x_BxTxD)
    for p, key in zip(params["blocks"], keys[1:], strict=True):
        x_BxTxD = block(p, x_BxTxD, cfg, key)
    return _norm(params["final_norm"], x_BxTxD)


def logits_from_hidden(params: dict, h_NxD, cfg: GPTConfig):
    """h E^T [N, V] (float32): the tied output layer."""
    return cells_base.matmul(h_NxD, params["embed"].T, cfg.compute_dtype).astype(jnp.float32)


def apply(params: dict, tokens_BxT, cfg: GPTConfig, rng=None):
    """Logits [B, T, V] of the next token at every position (dropout only with an rng)."""
    b, t = tokens_BxT.shape
    h_BxTxD = hidden_states(params, tokens_BxT, cfg, rng)
    return logits_from_hidden(params, h_BxTxD.reshape(b * t, -1), cfg).reshape(b, t, -1)


def prime(params: dict, tokens_BxP, cfg: GPTConfig):
    """(context, logits [B, V] of the token after the prompt): the prompt's last block_size
    tokens, as nanoGPT's `generate` crops it."""
    kept_BxK = tokens_BxP[:, -cfg.block_size :]
    k = kept_BxK.shape[1]
    logits_BxV = apply(params, kept_BxK, cfg)[:, -1]
    tokens_BxK = jnp.zeros((kept_BxK.shape[0], cfg.block_size), jnp.int32)
    tokens_BxK = tokens_BxK.at[:, :k].set(kept_BxK.astype(jnp.int32))
    return Context(tokens_BxK, jnp.asarray(k, jnp.int32)), logits_BxV


def step(params: dict, context: Context, token_B, cfg: GPTConfig):
    """(context, logits [B, V]) after appending `token_B`: the whole (cropped) context runs
    through the model again, as nanoGPT's `generate` does (no key/value cache)."""
    full = context.length >= cfg.block_size
    shifted_BxK = jnp.where(full, jnp.roll(context.tokens_BxK, -1, axis=1), context.tokens_BxK)
    position = jnp.minimum(context.length, cfg.block_size - 1)
    tokens_BxK = jax.lax.dynamic_update_slice_in_dim(
        shifted_BxK, token_B.astype(jnp.int32)[:, None], position, axis=1
    )
    logits_BxKxV = apply(params, tokens_BxK, cfg)
    logits_BxV = jax.lax.dynamic_index_in_dim(logits_BxKxV, position, axis=1, keepdims=False)
    return Context(tokens_BxK, jnp.minimum(context.length + 1, cfg.block_size)), logits_BxV
