"""The recipe for a new study, followed in a copy of the repository: one new folder (README.md
and study.py) that touches no shared file, then `python -m experiments run` and `report`.

STUDY_RECIPE_FILES is what the docs (docs/extending.md) cite as what a new study touches."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from experiments.lab import records

STUDY_RECIPE_FILES = ("experiments/studies/toy/README.md", "experiments/studies/toy/study.py")

README = """# Does the toy command count to three?

The question, the protocol and the conclusions are the study's own prose.

<!-- table:counts -->
<!-- /table:counts -->
"""

STUDY = '''"""A throwaway study: three command runs, one table."""

from experiments.lab import Run, records, tables

WRITE = "import json, sys; json.dump({'value': int(sys.argv[2])}, open(sys.argv[1], 'w'))"

GROUPS = {"count": lambda results_dir: [
    Run(f"count_{k}", command=("-c", WRITE, "{out}", str(k))) for k in (1, 2, 3)
]}


def readme_tables(results_dir):
    values = [r["value"] for r in records.load_all(results_dir).values()]
    row = [len(values), tables.fmt_mean_std(values)]
    return {"counts": tables.markdown(["runs", "value"], [row])}


def headline(results_dir):
    return {"ours": "counts to three", "published": "-"}
'''


def _copy_repository(dest: str) -> None:
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=records.ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    for name in filter(None, files):
        source = os.path.join(records.ROOT, name)
        if os.path.isfile(source) and not name.startswith("data/"):
            os.makedirs(os.path.dirname(os.path.join(dest, name)), exist_ok=True)
            shutil.copy2(source, os.path.join(dest, name))


def _experiments(copy: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "experiments", *args],
        cwd=copy, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_a_new_study_is_one_folder_that_run_and_report_find(tmp_path):
    copy = str(tmp_path / "repo")
    _copy_repository(copy)
    before = {p for p in _tree(copy)}
    for name, text in zip(STUDY_RECIPE_FILES, (README, STUDY), strict=True):
        os.makedirs(os.path.dirname(os.path.join(copy, name)), exist_ok=True)
        with open(os.path.join(copy, name), "w") as f:
            f.write(text)
    assert _tree(copy) - before == set(STUDY_RECIPE_FILES)  # nothing shared was edited

    listed = _experiments(copy, "list")
    assert listed.returncode == 0 and "toy" in listed.stdout, listed.stderr
    ran = _experiments(copy, "run", "toy", "--jobs=2")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    results = os.path.join(copy, "experiments", "studies", "toy", "results")
    assert sorted(os.listdir(results)) == ["count_1.json", "count_2.json", "count_3.json"]
    assert _experiments(copy, "report", "toy", "--check").returncode == 1  # the table is empty
    assert _experiments(copy, "report", "toy").returncode == 0
    with open(os.path.join(copy, STUDY_RECIPE_FILES[0])) as f:
        assert "| 3 | 2.000 ± 1.000 |" in f.read()
    assert _experiments(copy, "report", "toy", "--check").returncode == 0
    again = _experiments(copy, "run", "toy")
    assert again.stdout.count("exists, not run again") == 3


def _tree(root: str) -> set[str]:
    return {
        os.path.relpath(os.path.join(d, f), root)
        for d, _, files in os.walk(root)
        if "__pycache__" not in d
        for f in files
    }
