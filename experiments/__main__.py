r"""One command line for every study (experiments/studies/<name>/, found by its folder).

    python -m experiments list                            # the studies and their groups
    python -m experiments run <study> [group ...] [--out=DIR] [--workdirs=DIR] [--jobs=N] [--force]
    python -m experiments report [<study> ...] [--results=DIR] [--check] [--figures]
    python -m experiments search <config> --space=NAME --trials=N [--set FIELD=VALUE ...]
        [--metric=M] [--storage=URL] [--jobs=N] [--out=DIR] [--name=NAME] [--record=FILE]

`run` trains the named groups (all of DEFAULT_GROUPS when none is named) into the study's
results/ (or --out), resumably: a run whose record exists is skipped; GROUP@x keeps the runs
whose name has x between underscores. Committed results are reference data: replacing one, or
recording into results/ from a tree with uncommitted changes, needs --force.

`report` rewrites each named study's generated tables (all studies and the front page's study
table when none is named) from the committed records; --check changes nothing and exits 1 when a
README is not what its records give; --results=DIR renders another run's records to stdout (the
committed README is left alone); --figures redraws the figures too.

`search` tunes a config on Optuna (experiments/lab/search.py): trials are training runs, pruned
on their validation curves, the best configuration rerun with --seeds and scored on test once;
an SQLite file in --out by default, `--storage=postgresql://...` on several machines to share
one search.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys

from experiments.lab import records, tables
from experiments.lab import study as study_lib

FRONT_PAGE = os.path.join(records.ROOT, "README.md")
FRONT_TABLE = "studies"


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        sys.exit(f"experiments: {message} (python -m experiments --help)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m experiments", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    commands.add_parser("list", help="the studies and their groups")
    run = commands.add_parser("run", help="run a study's groups")
    run.add_argument("study")
    run.add_argument("groups", nargs="*")
    run.add_argument("--out", help="directory of the records (default: the study's results/)")
    run.add_argument("--workdirs", help="directory of the workdirs (default: workdirs/<study>)")
    run.add_argument("--jobs", type=int, default=1, help="runs at a time (default 1)")
    run.add_argument("--force", action="store_true", help="replace records that exist")
    report = commands.add_parser("report", help="regenerate a study's README tables")
    report.add_argument("studies", nargs="*")
    report.add_argument("--results", help="render these records to stdout instead")
    report.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    report.add_argument("--figures", action="store_true", help="redraw the figures too")
    search = commands.add_parser("search", help="tune a config on Optuna")
    search.add_argument("config", help="<file>.py[:args], a file of experiments/configs/ or a path")
    search.add_argument("--space", required=True, help="a named search space")
    search.add_argument("--trials", type=int, required=True, help="trials in all workers")
    search.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="a fixed config field, e.g. model.cell=gru (repeatable)")  # fmt: skip
    search.add_argument("--metric", help="the validation metric to minimise (default: the "
                        "config's train.best_metric)")  # fmt: skip
    search.add_argument("--storage", help="database URL (default: sqlite in --out)")
    search.add_argument("--jobs", type=int, default=1, help="worker processes here (default 1)")
    search.add_argument("--out", help="trial workdirs and search.db (default "
                        "workdirs/searches/<name>)")  # fmt: skip
    search.add_argument("--name", help="the study's name (default from the arguments)")
    search.add_argument("--pruner", default="median", help="median | asha | none")
    search.add_argument("--sampler", default="tpe", help="tpe | random")
    search.add_argument("--seeds", default="0,1,2", help="seeds of the best's reruns")
    search.add_argument("--record", help="also write the search's record here")
    search.add_argument("--study", help="a study whose SEARCH_SPACES come first")
    search.add_argument("--worker", default="", help=argparse.SUPPRESS)
    return parser


def _search(args) -> int:
    from experiments.lab import search as search_lib

    if args.jobs < 1:
        raise search_lib.SearchError(f"--jobs={args.jobs}: give 1 or more")
    try:
        seeds = tuple(int(s) for s in args.seeds.split(","))
    except ValueError:
        raise search_lib.SearchError(f"--seeds={args.seeds!r}: give integers, e.g. 0,1,2") from None
    search = search_lib.Search(
        config=args.config,
        space=args.space,
        trials=args.trials,
        overrides=tuple(args.set),
        metric=args.metric,
        storage=args.storage,
        out=args.out,
        name=args.name,
        pruner=args.pruner,
        sampler=args.sampler,
        seeds=seeds,
        study_module=study_lib.load(args.study).module if args.study else None,
    )
    from train import trainer

    try:
        record = search.run(jobs=args.jobs, worker=args.worker)
    except trainer.Preempted as e:  # the trial is queued again for the next invocation
        print(f"search {search.name}: {e}", file=sys.stderr, flush=True)
        return 128 + e.signum
    if record is None:
        return 0
    for line in search_lib.summary_lines(record):
        print(line)
    if args.record:
        records.write(args.record, record, overwrite=True, allow_dirty=True)
        print(f"search: {records.portable_path(args.record)}")
    return 0


def _list(args) -> int:
    for name in study_lib.names():
        study = study_lib.load(name)
        groups = ", ".join(study.groups) or "(no runs: tables only)"
        print(f"{name:16s} {study.title}\n{'':16s} groups: {groups}")
    return 0


def _run(args) -> int:
    study = study_lib.load(args.study)
    if args.jobs < 1:
        raise study_lib.StudyError(f"--jobs={args.jobs}: give 1 or more")
    groups = args.groups or study.default_groups
    for group in groups:  # every name checked before anything runs
        study.check_group(group)
    out = args.out or study.results_dir
    workdirs = args.workdirs or study.workdirs
    if records.is_committed(out) and not args.force:
        from train import provenance

        if provenance.git_dirty():
            raise study_lib.StudyError(
                f"{records.portable_path(out)} holds committed results and tracked files have "
                "uncommitted changes: commit first, write elsewhere with --out, or pass --force"
            )
    from experiments.lab import runner

    outcomes = {}
    for group in groups:  # in order: a group may read what the one before wrote
        runs_of = functools.partial(study.runs, group, out)  # asked again as its records land
        outcomes.update(runner.run_group(runs_of, out, workdirs, jobs=args.jobs, force=args.force))
    failed = sorted(name for name, outcome in outcomes.items() if outcome == "failed")
    if failed:
        print(f"experiments: {len(failed)} runs failed (their logs say why): {failed}")
    return 1 if failed else 0


def front_page_table() -> str:
    """The front page's table of studies: each study's headline next to the published value,
    linked to its README."""
    rows = []
    for name in study_lib.names():
        study = study_lib.load(name)
        headline = study.headline(study.results_dir) or {}
        link = f"[{study.title}](experiments/studies/{name}/README.md)"
        rows.append([link, headline.get("ours", "see the study"), headline.get("published", "-")])
    return tables.markdown(["study", "our result", "published"], rows)


CONFIGS_DIR = os.path.join(records.ROOT, "experiments", "configs")


def _rewrite(path: str, bodies: dict[str, str], check: bool, config: bool = False) -> bool:
    """Fills `path`'s generated tables (a config's [results] block); True when it was (check:
    would be) changed."""
    with open(path) as f:
        text = f.read()
    where = records.portable_path(path)
    if config:
        new = tables.fill_results_block(text, bodies["results"], where=where)
    else:
        new = tables.fill(text, bodies, where=where)
    if new != text and not check:
        with open(path, "w") as f:
            f.write(new)
    return new != text


def _report(args) -> int:
    names = args.studies or study_lib.names()
    stale = []
    for name in names:
        study = study_lib.load(name)
        if args.results:
            for table, body in study.tables(args.results).items():
                print(f"<!-- table:{table} -->\n{body.strip()}\n<!-- /table:{table} -->\n")
            continue
        if args.figures and not args.check:
            for path in study.figures(study.results_dir, study.workdirs, study.figures_dir):
                print(f"report: {records.portable_path(path)}")
        if _rewrite(study.readme, study.tables(study.results_dir), args.check):
            stale.append(records.portable_path(study.readme))
        for config, body in study.config_results(study.results_dir).items():
            path = os.path.join(CONFIGS_DIR, config)
            if _rewrite(path, {"results": body}, args.check, config=True):
                stale.append(records.portable_path(path))
    if not args.studies and not args.results:
        if _rewrite(FRONT_PAGE, {FRONT_TABLE: front_page_table()}, args.check):
            stale.append("README.md")
    verb = "differs from its records" if args.check else "rewritten"
    for path in stale:
        print(f"report: {path} {verb}")
    return 1 if args.check and stale else 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        commands = {"list": _list, "run": _run, "report": _report, "search": _search}
        return commands[args.command](args)
    except (study_lib.StudyError, ValueError, FileExistsError, OSError) as e:
        sys.exit(f"experiments: {e}")


if __name__ == "__main__":
    sys.exit(main())
