"""The speech study (experiments/studies/speech): its grid, and the table over seeds from run
records (the figures are drawn from trained runs in tests/train/speech_test.py and ctc_test.py)."""

from experiments.studies.speech import render as speech_results
from experiments.studies.speech import study


def _record(**test):
    return {"test": test, "wall_time_s": 100.0}


def test_table_groups_seeds_and_reports_each_task_its_metrics():
    results = {
        "spoken_digits_speaker_independent_bilstm_s0": _record(accuracy=0.90),
        "spoken_digits_speaker_independent_bilstm_s1": _record(accuracy=0.92),
        "spoken_digits_speaker_dependent_cnn_s0": _record(accuracy=0.97),
        "connected_digits_speaker_dependent_lstm_s2": _record(
            digit_error_rate=0.1, string_accuracy=0.6
        ),
        "connected_digits_speaker_dependent_lstm_s3": {"status": "diverged"},  # no test metrics
        "mnist1d_gru_s0": _record(accuracy=0.5),  # not a speech run
    }
    text = speech_results.table(results)
    assert "| spoken digits | speaker-independent | bilstm | 0, 1 | 0.910 ± 0.014 | – | – |" in text
    assert "| spoken digits | speaker-dependent | cnn | 0 | 0.970 | – | – | 100-100 s |" in text
    assert "| connected digits | speaker-dependent | lstm | 2 | – | 0.100 | 0.600 |" in text
    assert "mnist1d" not in text and len(text.strip().splitlines()) == 2 + 3
    assert "No speech run" in speech_results.table({"mnist1d_gru_s0": _record(accuracy=0.5)})

    block = speech_results.docstring_results(results, "spoken_digits")
    assert "  speaker_independent bilstm: 0.910 +- 0.014 (2 seeds; 100-100 s)" in block
    assert "connected" not in block and "Commits ?;" in block
    assert all(len(line) < 100 for line in block.splitlines())
    block = speech_results.docstring_results(results, "connected_digits")
    assert "  speaker_dependent lstm: 0.100 / 0.600 (1 seeds; 100-100 s)" in block
    assert all(len(line) < 100 for line in block.splitlines())
    assert speech_results.docstring_results({}, "connected_digits") is None


def test_the_grid_is_the_published_one():
    runs = study.speech_runs("unused")
    assert len(runs) == 36 + 15
    assert runs[0].name == "spoken_digits_speaker_dependent_bilstm_s0"
    assert runs[0].config == "spoken_digits.py:split=speaker_dependent,model=rnn,seed=0"
    connected = [r.name for r in runs if r.name.startswith("connected_digits_")]
    assert "connected_digits_speaker_dependent_bilstm_cmvn_s0" not in connected
