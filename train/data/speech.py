r"""Spoken digits: the Free Spoken Digit Dataset (FSDD), its splits, and log-mel features.

Data: data/fsdd/*.tar.xz (12 archives, 3,000 mono 8 kHz 16-bit WAV files named
`{digit}_{speaker}_{index}.wav`; 6 speakers x 10 digits x 50 takes; CC BY-SA 4.0, Z. Jackson et
al., provenance in data/SOURCES.md). Each archive is checked against
data/SHA256SUMS when read; the features are computed once and kept in a cache file
named by the archives' checksums and the feature settings (`cache_dir`, default
~/.cache/rnn_cells/fsdd), itself stored with its own sha256 and recomputed when it does not
match.

Features (log-mel filterbank, per frame):
    frames    25 ms windows (n_fft = 200 samples at 8 kHz) every 10 ms (hop 80), no centring
              padding; a recording shorter than one window is zero-padded to one
    spectrum  |FFT(w * frame)|^2 with w the periodic Hann window
    mel       40 triangular filters on the HTK mel scale m(f) = 2595 log10(1 + f / 700),
              centres equally spaced in mel between 0 Hz and 4 kHz, unnormalised (peak 1);
              the same matrix as librosa.filters.mel(sr=8000, n_fft=200, n_mels=40,
              fmin=0, fmax=4000, htk=True, norm=None)
    log       log(mel energy + 1e-6)
    normalised per feature with the mean and std over all frames of the training
              recordings (train-set normalisation; the test split never informs it)

Splits (`split`):
    'speaker_dependent'  the source's: takes 0-4 of every speaker and digit are the test set
                         (300); takes 5-9 are held out of the source's training set as
                         validation (300), 10-49 train (2,400).
    'speaker_independent'  one speaker is the test set (`test_speaker`, 500 recordings), another
                         the validation set (`valid_speaker`), the other four train (2,000):
                         the model never hears the test voice.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import pathlib
import re
import tarfile
import tempfile
import wave

import numpy as np

from train.data import base
from train.errors import ConfigError

SAMPLE_RATE = 8000
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
DIGITS = 10
TAKES = 50
FSDD_DIR = base.DATA_DIR / "fsdd"
SPLITS = ("speaker_dependent", "speaker_independent")
_NAME = re.compile(r"(?:.*/)?(\d)_([a-z]+)_(\d+)\.wav$")


@dataclasses.dataclass(frozen=True)
class Recording:
    digit: int
    speaker: str
    take: int
    audio: np.ndarray  # float32 [N] in [-1, 1)


def decode_wav(raw: bytes, name: str = "WAV") -> np.ndarray:
    """Mono 16-bit PCM WAV bytes at 8 kHz -> float32 samples in [-1, 1)."""
    try:
        with wave.open(io.BytesIO(raw)) as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            frames = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as e:
        raise ConfigError(f"{name}: not a readable PCM WAV file ({e}).") from None
    if channels != 1 or width != 2 or rate != SAMPLE_RATE:
        raise ConfigError(
            f"{name}: {channels} channel(s), {8 * width}-bit, {rate} Hz; expected mono 16-bit "
            f"{SAMPLE_RATE} Hz (resample it, e.g. `sox in.wav -r 8000 -c 1 -b 16 out.wav`)."
        )
    return np.frombuffer(frames, "<i2").astype(np.float32) / 32768.0


def archives(data_dir: pathlib.Path = FSDD_DIR) -> list[pathlib.Path]:
    paths = sorted(pathlib.Path(data_dir).glob("fsdd_*.tar.xz"))
    if len(paths) != 2 * len(SPEAKERS):
        raise ConfigError(
            f"{data_dir}: expected the 12 FSDD archives fsdd_<speaker>_<0-4|5-9>.tar.xz, found "
            f"{len(paths)}; restore them (git checkout data/fsdd)."
        )
    return paths


def read_recordings(data_dir: pathlib.Path = FSDD_DIR) -> list[Recording]:
    """Every recording of the archives (checksums verified), sorted by speaker, digit, take."""
    out = []
    for path in archives(data_dir):
        raw = path.read_bytes()
        base.verify_checksum(path, raw)
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:xz") as tar:
            for member in tar.getmembers():
                match = _NAME.match(member.name)
                if not member.isfile() or match is None:
                    continue
                audio = decode_wav(tar.extractfile(member).read(), member.name)
                digit, speaker, take = int(match[1]), match[2], int(match[3])
                out.append(Recording(digit, speaker, take, audio))
    out.sort(key=lambda r: (SPEAKERS.index(r.speaker), r.digit, r.take))
    if len(out) != len(SPEAKERS) * DIGITS * TAKES:
        raise ConfigError(f"{data_dir}: {len(out)} recordings, expected 3,000.")
    return out


# -- features -------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    n_fft: int = 200  # 25 ms at 8 kHz
    hop: int = 80  # 10 ms
    n_mels: int = 40
    fmin: float = 0.0
    fmax: float = 4000.0
    floor: float = 1e-6

    def key(self) -> str:
        return f"fft{self.n_fft}_hop{self.hop}_mel{self.n_mels}_{self.fmin:g}-{self.fmax:g}"


def hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, np.float64) / 2595.0) - 1.0)


def mel_filterbank(spec: FeatureSpec, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """[n_fft // 2 + 1, n_mels] triangular filters (HTK mel scale, peak 1, float64)."""
    fft_hz = np.linspace(0.0, sample_rate / 2.0, spec.n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(spec.fmin), hz_to_mel(spec.fmax), spec.n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    return np.maximum(0.0, np.minimum(lower, upper)).T


def log_mel(audio: np.ndarray, spec: FeatureSpec = FeatureSpec()) -> np.ndarray:
    """Log-mel frames [F, n_mels] (float32) of one recording; see the module docstring."""
    x = np.asarray(audio, np.float64)
    if len(x) < spec.n_fft:
        x = np.pad(x, (0, spec.n_fft - len(x)))
    count = 1 + (len(x) - spec.n_fft) // spec.hop
    idx = np.arange(spec.n_fft)[None, :] + spec.hop * np.arange(count)[:, None]
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(spec.n_fft) / spec.n_fft)  # periodic
    power = np.abs(np.fft.rfft(x[idx] * window, axis=-1)) ** 2
    return np.log(power @ mel_filterbank(spec) + spec.floor).astype(np.float32)


# -- the dataset ----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Utterances:
    """Features of every recording, in `read_recordings` order."""

    features: list[np.ndarray]  # [F_n, n_mels] each, unnormalised
    digit: np.ndarray  # int32 [3000]
    speaker: np.ndarray  # int32 [3000], index into SPEAKERS
    take: np.ndarray  # int32 [3000]
    audio: list[np.ndarray]  # float32 [N_n] each (for joining recordings into strings)


def _cache_path(cache_dir: str, spec: FeatureSpec) -> pathlib.Path:
    sums = base._bundled_checksums()
    ids = "".join(sums.get(f"fsdd/{p.name}", p.name) for p in archives())
    digest = hashlib.sha256(ids.encode()).hexdigest()[:16]
    return pathlib.Path(cache_dir) / f"fsdd_v2_{spec.key()}_{digest}.npz"


def default_cache_dir() -> str:
    return os.path.join(os.path.expanduser("~"), ".cache", "rnn_cells", "fsdd")


def load_utterances(spec: FeatureSpec = FeatureSpec(), cache_dir: str | None = None) -> Utterances:
    """The features of all 3,000 recordings, from the cache when it is intact."""
    cache = _cache_path(cache_dir or default_cache_dir(), spec)
    digest_file = cache.with_suffix(".sha256")
    if cache.exists() and digest_file.exists():
        raw = cache.read_bytes()
        if hashlib.sha256(raw).hexdigest() == digest_file.read_text().strip():
            with np.load(io.BytesIO(raw)) as z:
                feats = _unpack(z["frames"], z["offsets"])
                audio = [
                    a.astype(np.float32) / 32768.0 for a in _unpack(z["pcm"], z["pcm_offsets"])
                ]
                return Utterances(feats, z["digit"], z["speaker"], z["take"], audio)
    recordings = read_recordings()
    feats = [log_mel(r.audio, spec) for r in recordings]
    out = Utterances(
        feats,
        np.array([r.digit for r in recordings], np.int32),
        np.array([SPEAKERS.index(r.speaker) for r in recordings], np.int32),
        np.array([r.take for r in recordings], np.int32),
        [r.audio for r in recordings],
    )
    try:  # the cache is an optimisation: a read-only home directory only costs time
        cache.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        pcm = [np.round(a * 32768.0).astype(np.int16) for a in out.audio]  # exact: 16-bit
        np.savez(buffer, frames=np.concatenate(feats), offsets=_offsets(feats), digit=out.digit,
                 speaker=out.speaker, take=out.take, pcm=np.concatenate(pcm),
                 pcm_offsets=_offsets(pcm))  # fmt: skip
        raw = buffer.getvalue()
        with tempfile.NamedTemporaryFile(dir=cache.parent, delete=False) as tmp:
            tmp.write(raw)
        os.replace(tmp.name, cache)
        digest_file.write_text(hashlib.sha256(raw).hexdigest() + "\n")
    except OSError:
        pass
    return out


def _offsets(arrays) -> np.ndarray:
    return np.cumsum([0] + [len(a) for a in arrays])


def _unpack(flat, offsets) -> list[np.ndarray]:
    return [flat[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]


def check_split(split: str, test_speaker: str = "", valid_speaker: str = "") -> None:
    """Raises ConfigError, naming the field, for a split these recordings cannot give."""
    if split not in SPLITS:
        raise ConfigError(f"config.data.split={split!r}; valid: {', '.join(SPLITS)}.")
    if split != "speaker_independent":
        return
    for field, name in (("test_speaker", test_speaker), ("valid_speaker", valid_speaker)):
        if name not in SPEAKERS:
            raise ConfigError(f"config.data.{field}={name!r}; valid: {', '.join(SPEAKERS)}.")
    if test_speaker == valid_speaker:
        raise ConfigError(
            f"config.data.test_speaker and valid_speaker are both {test_speaker!r}; hold out "
            "two different speakers."
        )


def split_masks(
    utterances: Utterances, split: str, test_speaker: str = "", valid_speaker: str = ""
) -> dict[str, np.ndarray]:
    """{'train', 'valid', 'test'}: boolean masks over the utterances (see the docstring)."""
    check_split(split, test_speaker, valid_speaker)
    if split == "speaker_dependent":
        take = utterances.take
        return {"train": take >= 10, "valid": (take >= 5) & (take < 10), "test": take < 5}
    test = utterances.speaker == SPEAKERS.index(test_speaker)
    valid = utterances.speaker == SPEAKERS.index(valid_speaker)
    return {"train": ~(test | valid), "valid": valid, "test": test}


# -- connected digits -----------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class StringSpec:
    max_digits: int = 7  # a string has 1..max_digits digits, uniformly
    min_gap: float = 0.05  # seconds of silence before, between and after the recordings,
    max_gap: float = 0.30  # uniform in [min_gap, max_gap]
    max_seconds: float = 6.0  # longer draws are redrawn (keeps the padded length bounded)
    dither: float = 1e-4  # std of the noise in the silences (about -80 dB)


def digit_string(utterances: Utterances, pool: np.ndarray, rng, spec: StringSpec = StringSpec()):
    """One string: (audio float32 [N], digits int32 [n], the recordings' indices [n]). All its
    recordings are of one speaker
    (drawn uniformly among the speakers in `pool`, indices of allowed recordings), with random
    silences; deterministic given `rng`."""
    speakers = np.unique(utterances.speaker[pool])
    while True:
        speaker = rng.choice(speakers)
        mine = pool[utterances.speaker[pool] == speaker]
        picks = rng.choice(mine, size=int(rng.integers(1, spec.max_digits + 1)))
        gaps = rng.uniform(spec.min_gap, spec.max_gap, size=len(picks) + 1)
        pieces = []
        for gap, i in zip(gaps, [*picks, None], strict=True):
            pieces.append(spec.dither * rng.standard_normal(int(gap * SAMPLE_RATE)))
            if i is not None:
                pieces.append(utterances.audio[i])
        audio = np.concatenate(pieces).astype(np.float32)
        if len(audio) <= spec.max_seconds * SAMPLE_RATE:
            return audio, utterances.digit[picks].astype(np.int32), picks
