"""Every study (experiments/studies/<name>/, found by its folder): its README's generated tables
are what its committed records give, byte for byte; its runs are named once and their configs
build; the command line refuses what it cannot do in one line."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest

from experiments import __main__ as cli
from experiments.lab import records, tables
from experiments.lab import study as study_lib

STUDIES = study_lib.names()


def test_there_are_studies_and_each_has_its_folder():
    assert "init_schemes" in STUDIES
    for name in STUDIES:
        study = study_lib.load(name)
        assert os.path.isdir(study.results_dir), f"{name}: no results/ folder"
        assert study.title != name, f"{name}: its README has no '# title' line"


@pytest.mark.parametrize("name", STUDIES)
def test_report_regenerates_the_readme_byte_for_byte(name):
    study = study_lib.load(name)
    with open(study.readme) as f:
        text = f.read()
    regenerated = tables.fill(text, study.tables(study.results_dir), where=study.readme)
    assert regenerated == text, (
        f"{records.portable_path(study.readme)} differs from its records: run "
        f"`python -m experiments report {name}` and commit, or fix the study's readme_tables"
    )


@pytest.mark.parametrize("name", STUDIES)
def test_runs_are_named_once_and_their_configs_build(name):
    study = study_lib.load(name)
    for group in study.groups:
        runs = study.runs(group, study.results_dir)
        names = [r.name for r in runs]
        assert len(set(names)) == len(names), f"{name} {group}: a run name repeats"
        for run in runs:
            if run.config is None:
                continue
            path, _, fields = run.config_path().partition(":")
            assert os.path.isfile(os.path.join(records.ROOT, path)), f"{run.name}: {path}"
            module = path[: -len(".py")].replace(os.sep, ".")
            config_module = importlib.import_module(module)
            config_module.get_config(fields) if fields else config_module.get_config()


def test_the_front_page_table_links_every_study():
    with open(cli.FRONT_PAGE) as f:
        text = f.read()
    assert tables.fill(text, {cli.FRONT_TABLE: cli.front_page_table()}) == text, (
        "README.md's study table is stale: run `python -m experiments report`"
    )
    for name in STUDIES:
        assert f"(experiments/studies/{name}/README.md)" in text


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "experiments", *args],
        cwd=records.ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_command_line_refuses_in_one_line():
    for args, message in [
        (("run", "no_such_study"), "unknown study 'no_such_study'; studies: "),
        (("run", "init_schemes", "no_group"), "unknown group 'no_group'; valid: mnist1d"),
        (("run", "init_schemes", "--jobs=0", "--out=/tmp/x"), "--jobs=0: give 1 or more"),
        (("report", "no_such_study"), "unknown study"),
        (("frobnicate",), "invalid choice"),
    ]:
        result = _cli(*args)
        assert result.returncode != 0 and message in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr


def test_list_and_check_succeed():
    listed = _cli("list")
    assert listed.returncode == 0 and "init_schemes" in listed.stdout
    assert _cli("report", "--check").returncode == 0


def test_no_record_names_a_folder_of_the_machine_it_ran_on():
    """Committed records name workdirs relative to the repository (`workdirs/<study>/...`), not
    by this checkout's absolute location: a record must read the same on every machine."""
    parent = os.path.dirname(records.ROOT)
    if len(parent) <= 1:  # a checkout at the file system's root has no parent to look for
        pytest.skip("the checkout sits at /")
    found = []
    for name in STUDIES:
        results = os.path.join(records.STUDIES_DIR, name, "results")
        for file in sorted(os.listdir(results)) if os.path.isdir(results) else []:
            if file.endswith(".json"):
                with open(os.path.join(results, file)) as f:
                    if parent + os.sep in f.read():
                        found.append(f"{name}/results/{file}")
    assert not found, f"records naming {parent}{os.sep}...: {found[:5]}"
