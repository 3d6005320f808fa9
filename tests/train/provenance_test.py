"""train/provenance.py: the commit and whether tracked files had uncommitted changes."""

import subprocess

import pytest

from train import provenance


def _repo(path):
    def git(*args):
        subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@t")
    git("config", "user.name", "t")
    (path / "a.py").write_text("x = 1\n")
    git("add", "a.py")
    git("commit", "-qm", "one")


def test_git_dirty_sees_tracked_changes_only(tmp_path, monkeypatch):
    _repo(tmp_path)
    monkeypatch.setattr(provenance, "ROOT", str(tmp_path))
    assert provenance.git_dirty() is False and len(provenance.git_commit()) == 40
    (tmp_path / "results.json").write_text("{}")  # untracked: a result being written
    assert provenance.git_dirty() is False
    (tmp_path / "a.py").write_text("x = 2\n")
    assert provenance.git_dirty() is True


def test_a_studys_records_and_pages_being_rewritten_leave_the_tree_clean(tmp_path, monkeypatch):
    _repo(tmp_path)
    records = tmp_path / "experiments" / "studies" / "s" / "results"
    records.mkdir(parents=True)
    (records / "run.json").write_text("{}")
    (records.parent / "README.md").write_text("| table |\n")
    subprocess.run(["git", "add", "."], cwd=tmp_path, check=True)
    subprocess.run(["git", "commit", "-qm", "a record"], cwd=tmp_path, check=True)
    monkeypatch.setattr(provenance, "ROOT", str(tmp_path))
    (records / "run.json").write_text('{"replaced": true}')  # a grid rerun with --force
    assert provenance.git_dirty() is False
    (records.parent / "README.md").write_text("| new table |\n")  # a report while it runs
    assert provenance.git_dirty() is False
    (tmp_path / "experiments" / "studies" / "s" / "study.py").write_text("")  # untracked code
    assert provenance.git_dirty() is False
    (tmp_path / "a.py").write_text("x = 2\n")
    assert provenance.git_dirty() is True


@pytest.mark.parametrize("broken", ["not a repository", "no git"])
def test_git_dirty_is_unknown_without_a_checkout(tmp_path, monkeypatch, broken):
    monkeypatch.setattr(provenance, "ROOT", str(tmp_path))
    if broken == "no git":
        monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert provenance.git_dirty() is None
    assert provenance.git_commit() == "unknown"


@pytest.mark.parametrize(
    "script, expected",
    [
        ("train/main.py", "python -m train.main --x=1"),
        ("experiments/studies/moving_digits/copy_last.py", "python -m "
         "experiments.studies.moving_digits.copy_last --x=1"),
        ("experiments/__main__.py", "python -m experiments --x=1"),
    ],
)  # fmt: skip
def test_a_module_of_the_repository_is_recorded_as_python_dash_m(monkeypatch, script, expected):
    """Python puts a module's absolute file path in argv[0]; the record names no folder."""
    import os

    monkeypatch.setattr("sys.argv", [os.path.join(provenance.ROOT, script), "--x=1"])
    assert provenance.command() == expected
    monkeypatch.setattr("sys.argv", ["/elsewhere/tool.py", "--x=1"])
    assert provenance.command() == "python /elsewhere/tool.py --x=1"
