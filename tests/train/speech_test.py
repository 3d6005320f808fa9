"""train/data/speech.py and train/tasks/speech.py: FSDD archives, log-mel features against a
float64 reference written from their definition, splits, padding independence, a tiny run."""

import hashlib
import io
import wave

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import spoken_digits
from train import errors, validate
from train.data import base, speech
from train.tasks import speech as speech_task


def test_archives_match_their_checksums_and_a_changed_byte_is_refused():
    sums = base._bundled_checksums()
    paths = speech.archives()
    assert len(paths) == 12
    for path in paths:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sums[f"fsdd/{path.name}"]
    raw = bytearray(paths[0].read_bytes())
    raw[100] ^= 1
    with pytest.raises(errors.ConfigError, match="does not match data/SHA256SUMS"):
        base.verify_checksum(paths[0], bytes(raw))


def _wav(samples, rate=8000, channels=1):
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples, "<i2").tobytes())
    return buffer.getvalue()


def test_decode_wav_and_its_errors():
    audio = speech.decode_wav(_wav([0, 16384, -32768, 32767]))
    np.testing.assert_array_equal(audio, np.array([0, 0.5, -1, 32767 / 32768], np.float32))
    with pytest.raises(errors.ConfigError, match="16000 Hz; expected mono 16-bit 8000 Hz"):
        speech.decode_wav(_wav([0, 1], rate=16000), "a.wav")
    with pytest.raises(errors.ConfigError, match="b.wav: not a readable PCM WAV"):
        speech.decode_wav(b"RIFF....", "b.wav")


def _reference_log_mel(x, n_fft=200, hop=80, n_mels=40, sr=8000, fmax=4000.0):
    """The definition, in float64 and loops: periodic Hann, explicit DFT, HTK triangles."""
    x = np.asarray(x, np.float64)
    n = np.arange(n_fft)
    window = 0.5 * (1.0 - np.cos(2.0 * np.pi * n / n_fft))
    bins = n_fft // 2 + 1
    dft = np.exp(-2j * np.pi * np.outer(np.arange(bins), n) / n_fft)
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    hz = lambda m: 700.0 * (10.0 ** (m / 2595.0) - 1.0)  # noqa: E731
    points = [hz(m) for m in np.linspace(mel(0.0), mel(fmax), n_mels + 2)]
    freqs = np.arange(bins) * sr / n_fft
    frames = []
    for start in range(0, len(x) - n_fft + 1, hop):
        power = np.abs(dft @ (window * x[start : start + n_fft])) ** 2
        row = []
        for m in range(1, n_mels + 1):
            lo, mid, hi = points[m - 1], points[m], points[m + 1]
            w = [
                (f - lo) / (mid - lo) if lo <= f <= mid else (hi - f) / (hi - mid) if mid < f <= hi
                else 0.0
                for f in freqs
            ]  # fmt: skip
            row.append(np.log(np.dot(w, power) + 1e-6))
        frames.append(row)
    return np.array(frames)


def test_log_mel_equals_its_definition():
    rng = np.random.default_rng(0)
    t = np.arange(1000) / 8000.0
    x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(1000)
    got = speech.log_mel(x)
    want = _reference_log_mel(x)
    assert got.shape == want.shape == (11, 40)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    assert speech.log_mel(np.zeros(50)).shape == (1, 40)  # shorter than a window: padded


def test_mel_filters_against_librosa_when_installed():
    librosa = pytest.importorskip("librosa")
    want = librosa.filters.mel(sr=8000, n_fft=200, n_mels=40, fmin=0.0, fmax=4000.0, htk=True,
                               norm=None)  # fmt: skip
    np.testing.assert_allclose(speech.mel_filterbank(speech.FeatureSpec()).T, want, atol=1e-6)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One features cache for the module: the 3,000 recordings are decoded once."""
    return tmp_path_factory.mktemp("fsdd")


@pytest.fixture(scope="module")
def utterances(cache):
    return speech.load_utterances(cache_dir=str(cache))


def test_splits_are_disjoint_and_as_documented(utterances):
    dep = speech.split_masks(utterances, "speaker_dependent")
    assert [int(dep[s].sum()) for s in ("train", "valid", "test")] == [2400, 300, 300]
    assert set(utterances.take[dep["test"]]) == set(range(5))
    ind = speech.split_masks(utterances, "speaker_independent", "theo", "lucas")
    assert [int(ind[s].sum()) for s in ("train", "valid", "test")] == [2000, 500, 500]
    theo = speech.SPEAKERS.index("theo")
    assert not (utterances.speaker[ind["train"]] == theo).any()
    for masks in (dep, ind):
        assert (
            not (masks["train"] & masks["test"]).any()
            and not (masks["valid"] & masks["test"]).any()
        )
    with pytest.raises(errors.ConfigError, match="test_speaker='bob'; valid: george"):
        speech.split_masks(utterances, "speaker_independent", "bob", "lucas")
    with pytest.raises(errors.ConfigError, match="both 'theo'"):
        speech.split_masks(utterances, "speaker_independent", "theo", "theo")


def _config(tmp_path, **fields):
    arg = ",".join(f"{k}={v}" for k, v in fields.items())
    config = spoken_digits.get_config(arg or None)
    config.data.cache_dir = str(tmp_path)
    return config


@pytest.mark.parametrize("model", ["rnn", pytest.param("cnn", marks=pytest.mark.slow)])
def test_padding_never_reaches_the_model(utterances, cache, model):
    config = _config(cache, model=model, hidden_size=8)
    task = speech_task.SpokenDigitsTask(config)
    params = task.init_params(jax.random.key(0))
    batch = task.data.take("test", np.arange(4))
    logits = task.logits(params, jnp.asarray(batch["x"]), jnp.asarray(batch["lengths"]))
    noisy = batch["x"].copy()
    for row, n in enumerate(batch["lengths"]):
        noisy[row, n:] = 7.0  # garbage in the padding
    again = task.logits(params, jnp.asarray(noisy), jnp.asarray(batch["lengths"]))
    np.testing.assert_allclose(again, logits, rtol=1e-6, atol=1e-6)
    n = int(batch["lengths"][0])
    alone = task.logits(params, jnp.asarray(batch["x"][:1, :n]), jnp.asarray([n]))
    np.testing.assert_allclose(alone, logits[:1], rtol=1e-5, atol=1e-5)


def test_utterance_normalization_uses_each_recordings_own_statistics(utterances, cache):
    by_train = speech_task.SpokenDigitsTask(_config(cache, hidden_size=8)).data
    by_own = speech_task.SpokenDigitsTask(
        _config(cache, hidden_size=8, normalization="utterance")
    ).data
    batch, train = by_own.take("test", np.arange(3)), by_train.take("test", np.arange(3))
    for row, n in enumerate(batch["lengths"]):
        frames = batch["x"][row, :n].astype(np.float64)
        np.testing.assert_allclose(frames.mean(0), 0.0, atol=1e-4)
        np.testing.assert_allclose(frames.std(0), 1.0, atol=1e-3)
        raw = train["x"][row, :n] * by_train.std + by_train.mean  # undo the training statistics
        expected = (raw - raw.mean(0)) / raw.std(0)
        np.testing.assert_allclose(batch["x"][row, :n], expected, rtol=1e-3, atol=1e-3)
        assert not batch["x"][row, n:].any()  # padding stays zero
    # The training statistics are those of the training frames only, in either mode.
    np.testing.assert_array_equal(by_own.mean, by_train.mean)
    audio = utterances.audio[0]
    np.testing.assert_allclose(
        by_own.features(audio).mean(0), 0.0, atol=1e-4
    )  # a WAV to transcribe is normalised the same way


def test_config_errors_and_a_tiny_run(utterances, cache, tmp_path):
    from train import trainer

    with pytest.raises(errors.ConfigError, match="config.data.split='mixed'"):
        validate.validate(_config(cache, split="mixed"))
    with pytest.raises(errors.ConfigError, match="architecture='mlp'"):
        validate.validate(_config(cache, model="mlp"))
    with pytest.raises(errors.ConfigError, match="normalization='speaker'; valid: train, utt"):
        validate.validate(_config(cache, normalization="speaker"))
    with pytest.raises(errors.ConfigError, match="use 'train' with model.architecture='logis"):
        validate.validate(_config(cache, normalization="utterance", model="logistic"))
    config = _config(cache, hidden_size=8, epochs=1, bidirectional=False)
    config.train.num_epochs, config.train.num_steps = 0, 12
    config.train.eval_every = config.train.checkpoint_every = 12
    results = trainer.train_and_evaluate(config, str(tmp_path / "run"))
    assert set(results["test"]) >= {"loss", "accuracy"} and 0.0 <= results["test"]["accuracy"] <= 1

    from experiments.tools import transcribe

    wav = tmp_path / "seven.wav"
    wav.write_bytes(_wav(np.round(utterances.audio[7 * 50] * 32768).astype(np.int16)))
    out = transcribe.transcribe(str(tmp_path / "run"), str(wav))
    assert out["digits"][0] in range(10) and 0.0 < out["probability"] <= 1.0
    with pytest.raises(errors.ConfigError, match="--wav .*No such file"):
        transcribe.transcribe(str(tmp_path / "run"), str(tmp_path / "missing.wav"))

    # The confusion matrix counts every test recording once and its diagonal is the accuracy
    # the trainer reported (the same checkpoint: the run saves one, the best).
    from experiments.studies.speech import render as speech_results

    matrix = speech_results.confusion(str(tmp_path / "run"))
    assert matrix.shape == (10, 10) and matrix.sum() == 300
    assert np.trace(matrix) / 300 == pytest.approx(results["test"]["accuracy"], abs=1e-9)
    speech_results.plot_confusion(matrix, "tiny", str(tmp_path / "c.png"))
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
