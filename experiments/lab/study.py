"""Studies: folders under experiments/studies/, found by looking, never listed anywhere.

A study is `experiments/studies/<name>/` with

    README.md   its question, protocol, tables (between <!-- table:NAME --> markers), figures,
                conclusions: Markdown, written by hand but for the generated tables
    study.py    GROUPS = {"group": runs_of_the_group}  # (results dir) -> [lab.Run]
                def readme_tables(results_dir) -> {"NAME": markdown body}
                optional: DEFAULT_GROUPS = ("group", ...)  # what `run <study>` alone runs
                optional: def figures(results_dir, workdirs, figures_dir) -> [paths written]
                          (from the records, or from the trained runs in workdirs/<study>)
                optional: def headline(results_dir) -> {"ours": str, "published": str}
                optional: def config_results(results_dir) -> {"ptb_small.py": text}  # the
                          [results] block of a config docstring in experiments/configs/
    results/    its records (one JSON per run) and figures: reference data
    __init__.py empty (the folder is a package: a study may keep helper modules beside study.py)

`python -m experiments run|report` (experiments/__main__.py) finds it by its folder.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import types
from collections.abc import Callable

from experiments.lab import records, runner
from experiments.lab.runner import Run

README = "README.md"


class StudyError(ValueError):
    """A study, group or study module that cannot be used; the message is one line."""


def names(studies_dir: str = records.STUDIES_DIR) -> list[str]:
    """The studies: the folders of `studies_dir` holding a study.py, sorted."""
    if not os.path.isdir(studies_dir):
        return []
    return sorted(
        entry
        for entry in os.listdir(studies_dir)
        if os.path.isfile(os.path.join(studies_dir, entry, "study.py"))
    )


@dataclasses.dataclass(frozen=True)
class Study:
    """A loaded study: its folder and its study.py module."""

    name: str
    directory: str
    module: types.ModuleType

    @property
    def readme(self) -> str:
        return os.path.join(self.directory, README)

    @property
    def results_dir(self) -> str:
        return os.path.join(self.directory, "results")

    @property
    def figures_dir(self) -> str:
        return os.path.join(self.results_dir, "figures")

    @property
    def title(self) -> str:
        """The README's first heading."""
        with open(self.readme) as f:
            for line in f:
                if line.startswith("# "):
                    return line[2:].strip()
        return self.name

    @property
    def groups(self) -> dict[str, Callable[[str], list[Run]]]:
        return dict(getattr(self.module, "GROUPS", {}))

    @property
    def default_groups(self) -> tuple[str, ...]:
        return tuple(getattr(self.module, "DEFAULT_GROUPS", tuple(self.groups)))

    def check_group(self, group: str) -> None:
        """StudyError naming the valid groups when `group` ('group@x' or 'group') is none."""
        name = group.partition("@")[0]
        if name not in self.groups:
            valid = ", ".join(self.groups) or "none: this study has nothing to run"
            raise StudyError(f"study {self.name}: unknown group {name!r}; valid: {valid}")

    def runs(self, group: str, results_dir: str) -> list[Run]:
        """The runs of `group` ('group@x' keeps the runs whose name has x between underscores);
        StudyError naming the valid groups for an unknown one."""
        self.check_group(group)
        group, _, only = group.partition("@")
        runs = self.groups[group](results_dir)
        return runner.select(runs, only) if only else runs

    def tables(self, results_dir: str) -> dict[str, str]:
        """The README's generated tables from the records in `results_dir`."""
        make = getattr(self.module, "readme_tables", None)
        return make(results_dir) if make else {}

    @property
    def workdirs(self) -> str:
        """Where `run` trains by default: workdirs/<study>/<run>."""
        return os.path.join(records.ROOT, "workdirs", self.name)

    def figures(self, results_dir: str, workdirs: str, figures_dir: str) -> list[str]:
        make = getattr(self.module, "figures", None)
        return make(results_dir, workdirs, figures_dir) if make else []

    def config_results(self, results_dir: str) -> dict[str, str]:
        make = getattr(self.module, "config_results", None)
        return make(results_dir) if make else {}

    def headline(self, results_dir: str) -> dict | None:
        make = getattr(self.module, "headline", None)
        return make(results_dir) if make else None


def load(name: str, studies_dir: str = records.STUDIES_DIR) -> Study:
    """The study `name`; StudyError naming the studies there are."""
    available = names(studies_dir)
    if name not in available:
        raise StudyError(f"unknown study {name!r}; studies: {', '.join(available) or 'none'}")
    directory = os.path.join(studies_dir, name)
    if not os.path.isfile(os.path.join(directory, README)):
        raise StudyError(f"study {name}: {os.path.join(directory, README)} is missing")
    package = os.path.relpath(studies_dir, records.ROOT).replace(os.sep, ".")
    module = importlib.import_module(f"{package}.{name}.study")
    return Study(name=name, directory=directory, module=module)
