"""The documentation site's hooks (docs/hooks/): study READMEs become pages whose links work,
and the cells API reference covers every module and every export.

The last test builds the site strictly from a copy of the tree with a new study and a new cell
module added; it runs where the docs extra is installed (`make docs` installs it, and CI builds
the site with `make docs` in any case).
"""

import importlib.util
import logging
import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _load(name):
    path = os.path.join(REPO, "docs", "hooks", f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"docs_hooks_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


studies = _load("studies")
api_pages = _load("api_pages")


def _write(path, text=""):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


DEMO_README = """# Does a demo study render?

See [the other study](../other/README.md#other), a [record](results/a.json "one run"),
the [config](../../configs/x.py), the [results folder](results/) and the
[front page](../../../README.md).

![the curve](results/figures/curve.png)

<img src="results/figures/curve.png" width="200">

A [reference link][ref], [a site](https://example.org/a.json) and [an anchor](#protocol).

[ref]: results/a.json
"""


@pytest.fixture
def repo(tmp_path):
    demo = tmp_path / "experiments" / "studies" / "demo"
    _write(demo / "README.md", DEMO_README)
    _write(demo / "study.py")
    _write(demo / "results" / "a.json", "{}")
    _write(demo / "results" / "figures" / "curve.png", "png")
    _write(tmp_path / "experiments" / "studies" / "other" / "README.md", "# Other\n")
    _write(tmp_path / "experiments" / "configs" / "x.py")
    _write(tmp_path / "README.md", "# The front page\n")
    return tmp_path


def test_studies_are_the_folders_with_a_readme(repo):
    _write(repo / "experiments" / "studies" / "no_readme" / "study.py")
    assert studies.study_names(str(repo)) == ["demo", "other"]


def test_links_become_pages_copied_files_or_repository_paths(repo):
    text, copies = studies.rewrite(DEMO_README, str(repo), "demo", ["demo", "other"])
    record = "experiments/studies/demo/results/a.json"
    curve = "experiments/studies/demo/results/figures/curve.png"
    assert "[the other study](other.md#other)" in text
    assert f'[record](../files/{record} "one run")' in text
    assert "[config](../files/experiments/configs/x.py)" in text
    assert "results folder (`experiments/studies/demo/results`)" in text
    assert "front page (`README.md`)" in text
    assert f"![the curve](../files/{curve})" in text
    # Raw HTML is not rewritten by MkDocs: relative to the page's URL, studies/demo/.
    assert f'<img src="../../files/{curve}" width="200">' in text
    assert f"[ref]: ../files/{record}" in text
    assert "[a site](https://example.org/a.json)" in text and "[an anchor](#protocol)" in text
    assert copies == {record, curve, "experiments/configs/x.py"}


def test_code_is_left_alone(repo):
    text = "`[x](gone.json)`\n\n```markdown\n[y](gone.json)\n```\n"
    assert studies.rewrite(text, str(repo), "demo", ["demo"]) == (text, set())


def test_a_link_to_a_missing_or_outside_file_warns(repo, caplog):
    _write(repo.parent / "outside.txt")
    text = "[a](results/gone.json) [b](../../../../outside.txt)"
    with caplog.at_level(logging.WARNING, logger="mkdocs.plugins.studies"):
        studies.rewrite(text, str(repo), "demo", ["demo"])
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "results/gone.json" in messages[0] and "outside.txt" in messages[1]


def test_every_export_is_defined_in_a_module_of_the_package():
    exports = dict(api_pages.exports(REPO))
    assert exports["scan"] == "cells.sequence.scan" and exports["nnx"] == "cells.nnx"
    for name, path in exports.items():
        module = path if path == f"cells.{name}" else path.rsplit(".", 1)[0]
        assert os.path.isfile(os.path.join(REPO, *module.split(".")) + ".py"), (name, path)


def test_a_module_without_a_page_is_found(tmp_path):
    for path in ("__init__.py", "janet.py", "_private.py", "kernels/__init__.py", "kernels/k.py"):
        _write(tmp_path / "cells" / path)
    assert api_pages.modules(str(tmp_path)) == ["cells.janet", "cells.kernels.k"]
    _write(tmp_path / "docs" / "api" / "page.md", "# A page\n\n::: cells.janet\n")
    assert api_pages.rendered(str(tmp_path / "docs")) == {"cells.janet"}


JANET = '''"""A throwaway cell module: the docs give it a page of its own."""


def forget_only(x):
    """The JANET's one gate.

    Args:
      x: the input.

    Returns:
      x itself.
    """
    return x
'''


def test_site_builds_strictly_with_a_new_study_and_cell_module(tmp_path):
    for package in ("mkdocs", "material", "mkdocstrings_handlers.python"):
        pytest.importorskip(package)
    ignore = shutil.ignore_patterns("__pycache__", "site")
    shutil.copy(os.path.join(REPO, "mkdocs.yml"), tmp_path)
    for folder in ("docs", "cells", "train", "experiments/studies", "experiments/configs"):
        shutil.copytree(os.path.join(REPO, folder), tmp_path / folder, ignore=ignore)
    demo = tmp_path / "experiments" / "studies" / "demo"
    _write(demo / "README.md", DEMO_README.replace("../other/README.md#other", "../demo/README.md"))
    _write(demo / "results" / "a.json", "{}")
    _write(demo / "results" / "figures" / "curve.png", "png")
    _write(tmp_path / "experiments" / "configs" / "x.py")
    _write(tmp_path / "README.md", "# The front page\n")
    _write(tmp_path / "cells" / "janet.py", JANET)
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-f", "mkdocs.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert build.returncode == 0, build.stdout + build.stderr
    site = tmp_path / "site"
    assert (site / "studies" / "demo" / "index.html").is_file()
    assert (site / "files" / "experiments" / "studies" / "demo" / "results" / "a.json").is_file()
    assert "forget_only" in (site / "api" / "cells" / "janet" / "index.html").read_text()
