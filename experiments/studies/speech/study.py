"""Spoken digits, isolated and connected (CTC): recurrent models against CNN and logistic
baselines on FSDD, speaker-dependent and speaker-independent, 3 seeds (README.md)."""

from __future__ import annotations

from experiments.lab import Run, records, tables
from experiments.studies.speech import render

SEEDS = (0, 1, 2)
SPLITS = ("speaker_dependent", "speaker_independent")
# *_cmvn: each recording normalised with its own statistics (data.normalization)
ISOLATED = (("bilstm", "model=rnn"), ("lstm", "model=rnn,bidirectional=False"),
            ("cnn", "model=cnn"), ("logistic", "model=logistic"),
            ("bilstm_cmvn", "model=rnn,normalization=utterance"),
            ("cnn_cmvn", "model=cnn,normalization=utterance"))  # fmt: skip
CONNECTED = {"bilstm": "bidirectional=True", "lstm": "bidirectional=False",
             "bilstm_cmvn": "bidirectional=True,normalization=utterance"}  # fmt: skip


def speech_runs(results_dir: str) -> list[Run]:
    """Isolated digits (models x splits) and CTC strings, 3 seeds: 36 + 15 runs."""
    isolated = [
        Run(f"spoken_digits_{split}_{label}_s{seed}",
            config=f"spoken_digits.py:split={split},{arg},seed={seed}")
        for split in SPLITS
        for label, arg in ISOLATED
        for seed in SEEDS
    ]  # fmt: skip
    connected = [
        Run(f"connected_digits_{split}_{label}_s{seed}",
            config=f"connected_digits.py:split={split},{arg},seed={seed}")
        for split in SPLITS
        for label, arg in CONNECTED.items()
        if label != "bilstm_cmvn" or split == "speaker_independent"  # the speaker mismatch
        for seed in SEEDS
    ]  # fmt: skip
    return isolated + connected


# Leave one speaker out (issue 36): each of the six FSDD speakers is the test speaker once, the
# next one in the list the validation speaker, the other four train; seed 0 per fold. The
# models: the speaker-independent ones that normalise each recording (CMVN).
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")  # train/data/speech.py
LOSO_MODELS = (
    ("spoken_digits", "bilstm_cmvn", "model=rnn,normalization=utterance"),
    ("spoken_digits", "cnn_cmvn", "model=cnn,normalization=utterance"),
    ("connected_digits", "bilstm_cmvn", "bidirectional=True,normalization=utterance"),
)


def loso_valid_speaker(test_speaker: str) -> str:
    """The validation speaker of the fold that tests `test_speaker`: the next in SPEAKERS."""
    return SPEAKERS[(SPEAKERS.index(test_speaker) + 1) % len(SPEAKERS)]


def loso_runs(results_dir: str) -> list[Run]:
    """<task>_loso_<test speaker>_<model>_s0: 6 folds x 3 models."""
    return [
        Run(f"{task}_loso_{speaker}_{label}_s0",
            config=f"{task}.py:split=speaker_independent,test_speaker={speaker},"
            f"valid_speaker={loso_valid_speaker(speaker)},{arg},seed=0")
        for task, label, arg in LOSO_MODELS
        for speaker in SPEAKERS
    ]  # fmt: skip


GROUPS = {"speech": speech_runs, "speech_loso": loso_runs}


def _results(results_dir: str) -> dict:
    return records.load_all(results_dir, prefixes=("spoken_digits_", "connected_digits_"))


def loso_table(results_dir: str) -> str:
    """Per model: the test metrics' mean ± std over the six folds, then each test speaker's."""
    results = records.load_all(
        results_dir, prefixes=("spoken_digits_loso_", "connected_digits_loso_")
    )
    rows = []
    for task, label, _ in LOSO_MODELS:
        metrics = render.METRICS[task]
        folds = {s: results.get(f"{task}_loso_{s}_{label}_s0") for s in SPEAKERS}
        done = {s: r for s, r in folds.items() if r is not None and "test" in r}
        for metric in metrics:
            values = [done[s]["test"][metric] for s in SPEAKERS if s in done]
            summary = tables.fmt_mean_std(values) if values else "–"
            rows.append([
                f"{task.replace('_', ' ')}, {label}", metric.replace("_", " "),
                f"{summary} ({len(values)} folds)",
                *(f"{done[s]['test'][metric]:.3f}" if s in done else "–" for s in SPEAKERS),
            ])  # fmt: skip
    return tables.markdown(
        ["model", "test metric", "mean ± std over folds", *SPEAKERS], rows,
        align="llr" + "r" * len(SPEAKERS),
    )  # fmt: skip


def readme_tables(results_dir: str) -> dict[str, str]:
    return {"speech": render.table(_results(results_dir)), "loso": loso_table(results_dir)}


def config_results(results_dir: str) -> dict[str, str]:
    out = {}
    for task in ("spoken_digits", "connected_digits"):
        text = render.docstring_results(_results(results_dir), task)
        if text is not None:
            out[f"{task}.py"] = text
    return out


def figures(results_dir: str, workdirs: str, figures_dir: str) -> list[str]:
    return render.figures(results_dir, workdirs, figures_dir)


def headline(results_dir: str) -> dict:
    """Speaker-dependent BiLSTM over its seeds; the unseen speaker as the leave-one-speaker-out
    mean ± std over the folds (the BiLSTM with CMVN, isolated and connected digits)."""
    groups = render.group_runs(_results(results_dir))
    dep = ("spoken_digits", "speaker_dependent", "bilstm")
    _, dep_values, _ = render.summarize_runs("spoken_digits", groups[dep])
    folds = records.load_all(results_dir, prefixes=("spoken_digits_loso_",))
    values = [r["test"]["accuracy"] for n, r in folds.items() if n.endswith("_bilstm_cmvn_s0")]
    unseen = (
        f"unseen speaker (CMVN, {len(values)} leave-one-out folds) {tables.fmt_mean_std(values)}"
        if values
        else "unseen speaker: no fold run yet"
    )
    connected = records.load_all(results_dir, prefixes=("connected_digits_loso_",))
    errors = [r["test"]["digit_error_rate"] for r in connected.values()]
    if errors:
        unseen += f"; connected digits, digit error rate {tables.fmt_mean_std(errors)}"
    return {
        "ours": f"FSDD test accuracy, BiLSTM: speaker-dependent {dep_values['accuracy']}, {unseen}",
        "published": "-",
    }
