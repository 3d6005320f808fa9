"""Connectionist temporal classification (Graves et al. 2006) helpers: decoding and scoring.

Classes: 0 is the blank, 1..K-1 the labels. A frame path maps to a label string by merging
repeated symbols and then dropping blanks.

  greedy_decode     best path: argmax per frame, then the merge (jittable, fixed shapes: a
                    mask over the frames says which argmaxes are kept)
  edit_distances    Levenshtein distance of each kept hypothesis to its reference (jittable,
                    a dynamic programme over the frames, one row of reference positions)
  prefix_beam_search  CTC prefix beam search over the per-frame log-probabilities (NumPy, one
                    sequence; Hannun et al. 2014's algorithm without a language model)
  levenshtein       the plain dynamic programme on Python sequences (the reference)

The loss itself is optax.ctc_loss.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

BLANK = 0


def greedy_decode(logits_BxTxK, lengths_B):
    """(tokens [B, T], keep [B, T] bool): the argmax per frame and which of them survive the
    merge of repeats and the removal of blanks (frames at t >= lengths[b] never)."""
    tokens = jnp.argmax(logits_BxTxK, axis=-1)
    previous = jnp.pad(tokens, ((0, 0), (1, 0)), constant_values=-1)[:, :-1]
    valid = jnp.arange(tokens.shape[1])[None, :] < lengths_B[:, None]
    return tokens, valid & (tokens != BLANK) & (tokens != previous)


def edit_distances(tokens_BxT, keep_BxT, refs_BxN, ref_lengths_B):
    """Levenshtein distances [B] between the kept tokens of each row and refs[b, :len[b]]."""
    batch, width = refs_BxN.shape
    row0 = jnp.broadcast_to(jnp.arange(width + 1, dtype=jnp.int32), (batch, width + 1))

    def step(row, inputs):
        token_B, keep_B = inputs
        new = [row[:, 0] + 1]
        for j in range(1, width + 1):
            substitute = row[:, j - 1] + (token_B != refs_BxN[:, j - 1]).astype(jnp.int32)
            new.append(jnp.minimum(jnp.minimum(row[:, j] + 1, new[j - 1] + 1), substitute))
        new = jnp.stack(new, axis=1)
        return jnp.where(keep_B[:, None], new, row), None

    row, _ = lax.scan(step, row0, (tokens_BxT.T, keep_BxT.T))
    return jnp.take_along_axis(row, ref_lengths_B[:, None].astype(jnp.int32), axis=1)[:, 0]


def levenshtein(hyp, ref) -> int:
    """Edit distance between two sequences (insertions, deletions, substitutions cost 1)."""
    row = list(range(len(ref) + 1))
    for i, h in enumerate(hyp, 1):
        new = [i]
        for j, r in enumerate(ref, 1):
            new.append(min(row[j] + 1, new[j - 1] + 1, row[j - 1] + (h != r)))
        row = new
    return row[-1]


def prefix_beam_search(log_probs_TxK: np.ndarray, beam: int = 8) -> tuple[int, ...]:
    """The most probable label string under CTC by prefix beam search (no language model).

    Each prefix keeps two log-probabilities: of its paths ending in a blank and in its last
    label; extending by the same label as the last needs a blank in between."""
    log_probs = np.asarray(log_probs_TxK, np.float64)
    beams = {(): (0.0, -np.inf)}  # prefix -> (log p ending in blank, log p ending in label)

    def add(beams_out, prefix, blank, label):
        old_blank, old_label = beams_out.get(prefix, (-np.inf, -np.inf))
        beams_out[prefix] = (np.logaddexp(old_blank, blank), np.logaddexp(old_label, label))

    for frame in log_probs:
        nxt: dict[tuple[int, ...], tuple[float, float]] = {}
        for prefix, (p_b, p_l) in beams.items():
            total = np.logaddexp(p_b, p_l)
            add(nxt, prefix, total + frame[BLANK], -np.inf)
            for k in range(1, len(frame)):
                if prefix and prefix[-1] == k:
                    add(nxt, prefix, -np.inf, p_l + frame[k])  # the same label, merged
                    add(nxt, prefix + (k,), -np.inf, p_b + frame[k])  # a new one after a blank
                else:
                    add(nxt, prefix + (k,), -np.inf, total + frame[k])
        ranked = sorted(nxt.items(), key=lambda kv: -np.logaddexp(*kv[1]))
        beams = dict(ranked[:beam])
    return max(beams.items(), key=lambda kv: np.logaddexp(*kv[1]))[0]


def decode_labels(tokens, keep) -> list[list[int]]:
    """Host-side: the kept tokens of each row as label lists (class k -> label k - 1)."""
    tokens, keep = np.asarray(tokens), np.asarray(keep)
    return [[int(t) - 1 for t in row[mask]] for row, mask in zip(tokens, keep, strict=True)]
