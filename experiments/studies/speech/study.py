"""Spoken digits, isolated and connected (CTC): recurrent models against CNN and logistic
baselines on FSDD, speaker-dependent and speaker-independent, 3 seeds (README.md)."""

from __future__ import annotations

from experiments.lab import Run, records
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


GROUPS = {"speech": speech_runs}


def _results(results_dir: str) -> dict:
    return records.load_all(results_dir, prefixes=("spoken_digits_", "connected_digits_"))


def readme_tables(results_dir: str) -> dict[str, str]:
    return {"speech": render.table(_results(results_dir))}


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
    groups = render.group_runs(_results(results_dir))
    key = ("spoken_digits", "speaker_independent", "bilstm_cmvn")
    _, values, _ = render.summarize_runs("spoken_digits", groups[key])
    dep = ("spoken_digits", "speaker_dependent", "bilstm")
    _, dep_values, _ = render.summarize_runs("spoken_digits", groups[dep])
    return {
        "ours": f"FSDD test accuracy, BiLSTM: speaker-dependent {dep_values['accuracy']}, "
        f"unseen speaker (CMVN) {values['accuracy']}",
        "published": "-",
    }
