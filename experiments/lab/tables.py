"""Result tables: one statistic, one notation, one way to put a generated table in a README.

    mean, std = tables.mean_std([1.0, 2.0, 3.0])        # over seeds; sample std (ddof 1)
    tables.fmt_mean_std([0.5, 0.7, 0.9])                # '0.700 ± 0.200'
    tables.markdown(["cell", "ppl"], [["lstm", "82.1"]], align="lr")
    text = tables.fill(readme_text, {"main": body})     # between <!-- table:main --> markers

Every study's numbers go through `mean_std` and `fmt_mean_std` ('±'; a single run shows its
value alone), and every generated table sits between `<!-- table:NAME -->` and
`<!-- /table:NAME -->` in the study's README, where `python -m experiments report <study>`
rewrites it; text outside the markers is the study's own prose, never touched.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

PLUS_MINUS = "±"
_MARKER = re.compile(r"<!-- table:([A-Za-z0-9_.-]+) -->")


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for a single value) of runs over seeds:
    the one statistic every result table reports."""
    n = len(values)
    if n == 0:
        raise ValueError("mean_std of no values")
    mean = sum(values) / n
    return mean, ((sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5 if n > 1 else 0.0)


def fmt_mean_std(values: Sequence[float], digits: int = 3, show_n: bool = False) -> str:
    """'mean ± std' with `digits` decimals ('mean' alone for one run; non-finite values as
    'nan'/'inf' through Python's formatting); `show_n` appends ' (n=K)'."""
    mean, std = mean_std(values)
    text = f"{mean:.{digits}f}"
    if len(values) > 1 and math.isfinite(std):
        text += f" {PLUS_MINUS} {std:.{digits}f}"
    return text + (f" (n={len(values)})" if show_n else "")


def fmt_value(value: float | None, digits: int = 3) -> str:
    """A table cell's number with `digits` decimals; '–' where there is none."""
    return "–" if value is None else f"{value:.{digits}f}"


def markdown(header: Sequence[str], rows: Sequence[Sequence[object]], align: str = "") -> str:
    """A Markdown table; `align` has one letter per column, 'l' (default) or 'r'."""
    rules = ["---:" if k < len(align) and align[k] == "r" else "---" for k in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(rules) + "|"]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"row {list(row)} has {len(row)} cells for {len(header)} columns")
        lines.append("| " + " | ".join(str(cell) for cell in row) + " |")
    return "\n".join(lines)


def markers(name: str) -> tuple[str, str]:
    """The README markers around the generated table `name`."""
    return f"<!-- table:{name} -->", f"<!-- /table:{name} -->"


def marker_names(text: str) -> list[str]:
    """The names of the generated tables in `text`, in order."""
    return _MARKER.findall(text)


def fill(text: str, bodies: dict[str, str], where: str = "README") -> str:
    """`text` with the body between each table's markers replaced by `bodies[name]`.

    The markers in `text` and the names in `bodies` must be the same set, each marker pair once
    and in order; ValueError names what is missing, extra or broken (`where` names the file).
    """
    names = marker_names(text)
    duplicated = sorted({n for n in names if names.count(n) > 1})
    missing, extra = sorted(set(bodies) - set(names)), sorted(set(names) - set(bodies))
    if duplicated or missing or extra:
        problems = [f"{label} {items}" for label, items in (
            ("markers twice:", duplicated),
            ("no markers for the tables", missing),
            ("markers for no table:", extra),
        ) if items]  # fmt: skip
        raise ValueError(f"{where}: " + "; ".join(problems))
    for name in names:
        begin, end = markers(name)
        head, rest = text.split(begin, 1)
        if end not in rest:
            raise ValueError(f"{where}: {begin} has no closing {end}")
        _, tail = rest.split(end, 1)
        text = f"{head}{begin}\n{bodies[name].strip()}\n{end}{tail}"
    return text


def fill_results_block(text: str, body: str, where: str = "config") -> str:
    """`text` (a config's source) with its docstring's `[results] ... [/results]` block replaced
    by `body`: the result a config's docstring says it reaches, regenerated from the records."""
    if "[results]" not in text or "[/results]" not in text:
        raise ValueError(f"{where}: no [results] ... [/results] block to fill")
    block = f"[results]\n{body.rstrip()}\n[/results]"
    return re.sub(r"\[results\]\n.*?\[/results\]", lambda _: block, text, count=1, flags=re.S)
