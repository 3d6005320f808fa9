"""The code on the front page and in the guides runs as written: README.md's cells example, and
every Python block of docs/guides/cells.md, interop.md and extending.md (each page's blocks in
one namespace, in order)."""

import pathlib
import re

import jax
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
GUIDES = ("cells.md", "interop.md", "extending.md")


def _blocks(path: pathlib.Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), re.S)


def test_readme_cells_example_runs_and_trains():
    (block,) = _blocks(ROOT / "README.md")
    ns = {}
    exec(compile(block, "README.md", "exec"), ns)
    assert ns["ys"].shape == (4, 10, 32) and ns["h_1"].shape == (4, 32)
    first = ns["cell"].init(jax.random.key(0), input_size=8)
    _, before = ns["train_step"](first)
    assert float(ns["loss"]) <= float(before)


@pytest.mark.parametrize("page", GUIDES)
def test_guide_code_runs(page):
    blocks = _blocks(ROOT / "docs" / "guides" / page)
    assert blocks, f"docs/guides/{page} has no python block"
    if page == "interop.md":
        pytest.importorskip("torch")
    ns = {}
    for k, block in enumerate(blocks):
        exec(compile(block, f"docs/guides/{page}[{k}]", "exec"), ns)
