"""train/tasks/ctc.py and the connected_digits task: CTC on a hand-computed case, decoding,
edit distance, the string generator's determinism and split hygiene, a tiny run."""

import itertools

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from experiments.configs import connected_digits
from train.data import speech
from train.tasks import ctc


def test_ctc_loss_on_a_hand_computed_case():
    # Two frames, classes (blank, a), label "a": the paths a a, a -, - a.
    p = np.array([[0.3, 0.7], [0.6, 0.4]])  # p[t, k]
    want = -np.log(p[0, 1] * p[1, 1] + p[0, 1] * p[1, 0] + p[0, 0] * p[1, 1])
    logits = jnp.asarray(np.log(p))[None]
    got = optax.ctc_loss(logits, jnp.zeros((1, 2)), jnp.array([[1, 0]]), jnp.array([[0.0, 1.0]]))
    np.testing.assert_allclose(got[0], want, rtol=1e-5)


def test_greedy_decode_merges_repeats_then_drops_blanks():
    tokens = np.array([[0, 1, 1, 0, 1, 2, 2, 3]])
    logits = jnp.asarray(np.eye(4)[tokens])
    got, keep = ctc.greedy_decode(logits, jnp.array([7]))  # the last frame is padding
    assert ctc.decode_labels(got, keep) == [[0, 0, 1]]  # classes 1 1 2 -> digits 0 0 1


def test_edit_distances_equal_the_plain_dynamic_programme():
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 4, (32, 9))
    keep = rng.random((32, 9)) < 0.6
    refs = rng.integers(1, 4, (32, 5))
    lengths = rng.integers(0, 6, 32)
    got = ctc.edit_distances(jnp.asarray(tokens), jnp.asarray(keep), jnp.asarray(refs),
                             jnp.asarray(lengths))  # fmt: skip
    for b in range(32):
        want = ctc.levenshtein(list(tokens[b][keep[b]]), list(refs[b, : lengths[b]]))
        assert int(got[b]) == want
    assert ctc.levenshtein("kitten", "sitting") == 3


def test_prefix_beam_search_finds_the_most_probable_string():
    rng = np.random.default_rng(1)
    for _ in range(5):
        log_probs = np.log(rng.dirichlet(np.ones(3), size=4))  # T=4, blank + 2 labels
        totals = {}
        for path in itertools.product(range(3), repeat=4):
            merged = tuple(k for i, k in enumerate(path) if k and (i == 0 or path[i - 1] != k))
            p = np.exp(sum(log_probs[t, k] for t, k in enumerate(path)))
            totals[merged] = totals.get(merged, 0.0) + p
        assert ctc.prefix_beam_search(log_probs, beam=50) == max(totals, key=totals.get)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("fsdd")


@pytest.fixture(scope="module")
def utterances(cache):
    return speech.load_utterances(cache_dir=str(cache))


def test_strings_are_deterministic_and_use_only_their_split(utterances):
    masks = speech.split_masks(utterances, "speaker_dependent")
    pool = np.flatnonzero(masks["test"])
    a = [speech.digit_string(utterances, pool, np.random.default_rng([3, k])) for k in range(20)]
    b = [speech.digit_string(utterances, pool, np.random.default_rng([3, k])) for k in range(20)]
    for (audio, digits, picks), (audio2, digits2, picks2) in zip(a, b, strict=True):
        np.testing.assert_array_equal(audio, audio2)
        np.testing.assert_array_equal(digits, digits2)
        np.testing.assert_array_equal(picks, picks2)
        assert set(picks) <= set(pool) and len(set(utterances.speaker[picks])) == 1
        assert 1 <= len(digits) <= 7 and len(audio) <= 6 * speech.SAMPLE_RATE
        np.testing.assert_array_equal(digits, utterances.digit[picks])


@pytest.mark.slow
def test_a_tiny_connected_digits_run(utterances, cache, tmp_path):
    from train import trainer

    config = connected_digits.get_config("hidden_size=8,num_layers=1,num_steps=4")
    config.data.cache_dir = str(cache)
    config.data.num_valid, config.data.num_test = 8, 8
    config.train.eval_every = config.train.checkpoint_every = 4
    config.train.batch_size, config.eval.batch_size = 4, 8
    results = trainer.train_and_evaluate(config, str(tmp_path / "run"))
    assert set(results["test"]) >= {"loss", "digit_error_rate", "string_accuracy"}
    assert np.isfinite(results["test"]["loss"])

    from experiments.studies.speech import render as speech_results

    example = speech_results.transcribed_example(str(tmp_path / "run"), index=1, beam=4)
    assert example["features"].ndim == 2 and example["features"].shape[1] == 2 * 40
    assert 1 <= len(example["reference"]) <= 7 and set(example["reference"]) <= set(range(10))
    assert set(example["greedy"]) <= set(range(10)) and set(example["beam"]) <= set(range(10))
    speech_results.plot_spectrogram(example, "tiny", str(tmp_path / "s.png"))
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
