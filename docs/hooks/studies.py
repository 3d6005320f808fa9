"""MkDocs hook: every study's README becomes a page of the site, found by looking.

A study is a folder `experiments/studies/<name>/` (experiments/lab/study.py); its README.md is
written for GitHub, beside its results. At build time each README becomes the page
`studies/<name>.md` under a "Studies" section of the navigation (with `studies/index.md`
listing them), so a new study appears in the docs without touching a shared file.

The READMEs' relative links are resolved against the study folder and rewritten for the site:

- another study's README (`../other/README.md#x`)  -> that study's page (`other.md#x`);
- any other existing file (a result JSON, a figure, `../../configs/x.py`)  -> a copy of the
  file served at `files/<its repository path>`, the link pointing there;
- a Markdown file outside the studies or a folder  -> the link's text followed by the
  repository path as code (a plain link would be a broken page on the site);
- a target that does not exist or lies outside the repository  -> a warning, which fails
  `mkdocs build --strict` (so a broken link in a study README fails CI).

Links inside code blocks and code spans, absolute URLs and in-page anchors are left alone.
"""

from __future__ import annotations

import logging
import os
import re
import urllib.parse

log = logging.getLogger("mkdocs.plugins.studies")

STUDIES = os.path.join("experiments", "studies")
README = "README.md"
SECTION = "Studies"
FILES = "files"  # where files a study links to are served, under their repository path

# One pass over the text: code (left as is) or a link target (rewritten).
_TOKENS = re.compile(
    r"(?P<fence>^[ \t]*(?P<f>`{3,}|~{3,}).*?^[ \t]*(?P=f)[ \t]*$)"
    r"|(?P<code>(?P<b>`+).+?(?P=b))"
    r"|(?P<inline>(?P<bang>!?)\[(?P<text>(?:[^\[\]\n]|\[[^\[\]\n]*\])*)\]"
    r"\((?P<t1><[^>\n]*>|[^)\s]+)(?P<title>[ \t]+\"[^\"\n]*\")?\))"
    r"|(?P<ref>^[ ]{0,3}\[[^\]\n]+\]:[ \t]*)(?P<t2>\S+)"
    r"|(?P<attr>\b(?:src|href)=\")(?P<t3>[^\"]+)\"",
    re.MULTILINE | re.DOTALL,
)


def _root(config) -> str:
    return os.path.dirname(os.path.abspath(config.config_file_path))


def study_names(root: str) -> list[str]:
    """The folders of experiments/studies holding a README.md, sorted."""
    studies = os.path.join(root, STUDIES)
    if not os.path.isdir(studies):
        return []
    return sorted(
        name
        for name in os.listdir(studies)
        if os.path.isfile(os.path.join(studies, name, README)) and not name.startswith((".", "_"))
    )


def _title(text: str, default: str) -> str:
    for line in text.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return default


class _Rewriter:
    """Rewrites one study README's links; collects the files the site must copy."""

    def __init__(self, root: str, name: str, studies: list[str], directory_urls: bool = True):
        self.root, self.name, self.studies = root, name, set(studies)
        self.directory_urls = directory_urls
        self.folder = os.path.join(root, STUDIES, name)
        self.copies: set[str] = set()  # repository paths of the linked files

    def target(self, target: str) -> str | None:
        """The site link for `target`, or None when it can only be shown as a path."""
        if target.startswith("<") and target.endswith(">"):
            target = target[1:-1]
        parsed = urllib.parse.urlsplit(target)
        if parsed.scheme or parsed.netloc or not parsed.path or target.startswith("/"):
            return target  # a URL, an in-page anchor, or a site-absolute path
        fragment = f"#{parsed.fragment}" if parsed.fragment else ""
        path = os.path.normpath(os.path.join(self.folder, urllib.parse.unquote(parsed.path)))
        repo_path = os.path.relpath(path, self.root).replace(os.sep, "/")
        if repo_path.startswith("../") or not os.path.exists(path):
            log.warning(
                f"study {self.name}: README.md links to {target}, not a file in this repository"
            )
            return target
        parts = repo_path.split("/")
        if len(parts) == 4 and "/".join(parts[:2]) == STUDIES.replace(os.sep, "/"):
            if parts[3] == README and parts[2] in self.studies:
                return f"{parts[2]}.md{fragment}"
        if os.path.isdir(path) or path.endswith(".md"):
            return None
        self.copies.add(repo_path)
        return f"../{FILES}/{urllib.parse.quote(repo_path)}{fragment}"

    def path(self, target: str) -> str:
        path = urllib.parse.unquote(urllib.parse.urlsplit(target.strip("<>")).path)
        path = os.path.join(self.folder, path)
        return os.path.relpath(os.path.normpath(path), self.root).replace(os.sep, "/")

    def __call__(self, match: re.Match) -> str:
        if match["fence"] or match["code"]:
            return match[0]
        if match["inline"]:
            new = self.target(match["t1"])
            if new is not None:
                return f"{match['bang']}[{match['text']}]({new}{match['title'] or ''})"
            if match["bang"]:
                log.warning(f"study {self.name}: README.md shows {match['t1']}: not an image")
                return match[0]
            return f"{match['text']} (`{self.path(match['t1'])}`)"
        prefix, target = (
            (match["ref"], match["t2"]) if match["ref"] else (match["attr"], match["t3"])
        )
        new = self.target(target)
        if new is None:
            log.warning(f"study {self.name}: link {target} names a folder or Markdown file outside "
                        "the studies: write it inline, [text](path), to show its path")  # fmt: skip
            new = target
        elif match["attr"] and new != target:
            new = self.url(new)
        return f"{prefix}{new}" + ('"' if match["attr"] else "")

    def url(self, link: str) -> str:
        """A link made for Markdown as raw HTML needs it: relative to the page's URL, which
        MkDocs does not rewrite in HTML (studies/<name>/ with directory URLs)."""
        path, hash_, fragment = link.partition("#")
        if path.endswith(".md"):
            path = f"../{path[:-3]}/" if self.directory_urls else f"{path[:-3]}.html"
        elif self.directory_urls:
            path = f"../{path}"
        return path + hash_ + fragment


def rewrite(
    text: str, root: str, name: str, studies: list[str], directory_urls: bool = True
) -> tuple[str, set[str]]:
    """`text` (study `name`'s README) with its links resolved for the site, and the repository
    paths of the files the links now point to (the site must serve them)."""
    rewriter = _Rewriter(root, name, studies, directory_urls)
    return _TOKENS.sub(rewriter, text), rewriter.copies


def _index(root: str, names: list[str]) -> str:
    lines = [
        "# Studies",
        "",
        "Each study is a folder `experiments/studies/<name>/`: this page shows its README.md",
        "(the question, protocol, tables, figures and conclusions). Run one with",
        "`python -m experiments run <name>` and regenerate its tables with",
        "`python -m experiments report <name>`.",
        "",
    ]
    if not names:
        return "\n".join([*lines, "No study is in this tree yet.", ""])
    lines += ["| study | question |", "|---|---|"]
    for name in names:
        with open(os.path.join(root, STUDIES, name, README), encoding="utf-8") as f:
            lines.append(f"| [{name}]({name}.md) | {_title(f.read(), name)} |")
    return "\n".join([*lines, ""])


def on_config(config):
    names = study_names(_root(config))
    section = [{"Overview": "studies/index.md"}] + [{name: f"studies/{name}.md"} for name in names]
    if config.nav is not None:
        config.nav = [entry for entry in config.nav if SECTION not in entry] + [{SECTION: section}]
    return config


def on_files(files, config):
    from mkdocs.structure.files import File  # here: the rest imports without MkDocs (tests)

    root = _root(config)
    names = study_names(root)
    files.append(File.generated(config, "studies/index.md", content=_index(root, names)))
    copies: set[str] = set()
    for name in names:
        with open(os.path.join(root, STUDIES, name, README), encoding="utf-8") as f:
            text, linked = rewrite(f.read(), root, name, names, config.use_directory_urls)
        files.append(File.generated(config, f"studies/{name}.md", content=text))
        copies |= linked
    for repo_path in sorted(copies):
        abs_path = os.path.join(root, repo_path)
        files.append(File.generated(config, f"{FILES}/{repo_path}", abs_src_path=abs_path))
    return files


def on_serve(server, config, builder):
    """`mkdocs serve` rebuilds when a study changes."""
    server.watch(os.path.join(_root(config), STUDIES))
    return server
