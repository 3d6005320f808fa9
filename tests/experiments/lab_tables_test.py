"""experiments/lab/tables.py: one statistic, one notation, generated tables between markers."""

import pytest

from experiments.lab import tables


def test_mean_std_is_the_sample_std_and_one_run_shows_its_value():
    assert tables.mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert tables.mean_std([4.0]) == (4.0, 0.0)
    assert tables.fmt_mean_std([0.5, 0.7, 0.9]) == "0.700 ± 0.200"
    assert tables.fmt_mean_std([0.5], digits=2, show_n=True) == "0.50 (n=1)"
    with pytest.raises(ValueError, match="no values"):
        tables.mean_std([])


def test_markdown_aligns_and_refuses_ragged_rows():
    text = tables.markdown(["a", "b"], [[1, "x"]], align="lr")
    assert text == "| a | b |\n|---|---:|\n| 1 | x |"
    with pytest.raises(ValueError, match="2 columns"):
        tables.markdown(["a", "b"], [[1]])


def test_fill_replaces_only_between_markers_and_names_what_does_not_match():
    text = "intro\n<!-- table:t -->\nold\n<!-- /table:t -->\nprose +- kept\n"
    assert tables.fill(text, {"t": "new\n"}) == (
        "intro\n<!-- table:t -->\nnew\n<!-- /table:t -->\nprose +- kept\n"
    )
    with pytest.raises(ValueError, match=r"README: no markers for the tables \['u'\]"):
        tables.fill(text, {"t": "", "u": ""})
    with pytest.raises(ValueError, match=r"markers for no table: \['t'\]"):
        tables.fill(text, {})
    with pytest.raises(ValueError, match="has no closing"):
        tables.fill("<!-- table:t -->\n", {"t": ""})
